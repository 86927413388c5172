// Helpers for the end-to-end KV tier tests: a serving engine on the embedded
// aidreams260K model with chosen tiers, and running requests to completion
// through the real scheduler and CPU backend.
#ifndef STRATA_TESTS_SERVER_TIERED_CACHE_UTIL_H_
#define STRATA_TESTS_SERVER_TIERED_CACHE_UTIL_H_

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/engine_loop.h"
#include "scheduler/scheduler.h"
#include "server/engine_setup.h"

namespace strata::server::testing {

inline const std::filesystem::path kModel =
    std::filesystem::path(STRATA_SOURCE_DIR) / "models/aidreams260K";
inline constexpr int64_t kBlockSize = 4;
// aidreams260K's bf16 K and V of 4 layers * 4 kv heads * 16 head_dim.
inline constexpr uint64_t kBlockBytes = 2 * 4 * 4 * kBlockSize * 16 * 2;

// What a request produced: its tokens and each one's logprobs (chosen and
// top 4), which carry the logits' values.
struct Output {
  std::vector<engine::TokenId> tokens;
  std::vector<float> logprobs;
  friend bool operator==(const Output&, const Output&) = default;
};

inline ServingOptions Options(int64_t device_blocks, uint64_t host_blocks,
                              const std::string& disk_path = "", uint64_t disk_bytes = 0) {
  ServingOptions options;
  options.backend_options.threads = 1;
  options.cache.block_size = kBlockSize;
  options.cache.device_blocks = device_blocks;
  options.cache.disk_path = disk_path;
  options.cache.disk_bytes = disk_bytes;
  options.cache.host_bytes = host_blocks * kBlockBytes;
  return options;
}

inline scheduler::Request MakeRequest(scheduler::RequestId id, std::vector<engine::TokenId> prompt,
                                      int max_tokens = 4) {
  scheduler::Request request{.id = id, .prompt_ids = std::move(prompt)};
  request.sampling.temperature = 0;
  request.sampling.max_tokens = max_tokens;
  request.sampling.ignore_eos = true;
  request.sampling.return_logprob = true;
  request.sampling.top_logprobs = 4;
  return request;
}

// Runs `requests` one after another (each to completion) and returns their
// outputs by id.
inline std::map<scheduler::RequestId, Output> RunEach(
    scheduler::Scheduler& scheduler, engine::Backend& backend,
    const std::vector<scheduler::Request>& requests) {
  std::map<scheduler::RequestId, Output> outputs;
  for (const scheduler::Request& request : requests) {
    EXPECT_TRUE(scheduler.AddRequest(request).ok());
    for (int step = 0; scheduler.HasWork() && step < 1000000; ++step) {
      for (const scheduler::TokenEvent& event : scheduler::RunStep(scheduler, backend)) {
        EXPECT_TRUE(event.error.ok()) << event.error;
        if (!event.token_id) continue;
        Output& out = outputs[event.request_id];
        out.tokens.push_back(*event.token_id);
        if (!event.sampled) continue;
        out.logprobs.push_back(event.sampled->logprob);
        for (const auto& top : event.sampled->top_logprobs) out.logprobs.push_back(top.logprob);
      }
    }
  }
  return outputs;
}

// The same requests, each alone on a fresh engine without lower tiers: the
// cold reference.
inline std::map<scheduler::RequestId, Output> ColdOutputs(
    const std::vector<scheduler::Request>& requests) {
  std::map<scheduler::RequestId, Output> outputs;
  absl::StatusOr<ServingEngine> serving = LoadServingEngine(kModel, Options(64, 0));
  EXPECT_TRUE(serving.ok()) << serving.status();
  if (!serving.ok()) return outputs;
  for (const scheduler::Request& request : requests) {
    scheduler::Scheduler scheduler(serving->scheduler_options);
    auto one = RunEach(scheduler, *serving->backend, {request});
    outputs[request.id] = one[request.id];
  }
  return outputs;
}

inline std::vector<engine::TokenId> Tokens(int count, uint32_t seed) {
  std::vector<engine::TokenId> ids;
  uint32_t state = seed * 2654435761u + 1;
  for (int i = 0; i < count; ++i) {
    state = state * 1664525u + 1013904223u;
    ids.push_back(static_cast<engine::TokenId>(3 + (state >> 8) % 500));
  }
  return ids;
}

}  // namespace strata::server::testing

#endif  // STRATA_TESTS_SERVER_TIERED_CACHE_UTIL_H_
