// The scheduler tests' fixture: a Scheduler over the fake backend
// (tests/mocks/fake_backend.h), the aidreams260K tokenizer, and helpers that
// step it, check its cache after every step and collect what each request
// produced.
#ifndef STRATA_TESTS_SCHEDULER_SCHEDULER_FIXTURE_H_
#define STRATA_TESTS_SCHEDULER_SCHEDULER_FIXTURE_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "scheduler/engine_loop.h"
#include "scheduler/scheduler.h"
#include "tests/mocks/fake_backend.h"

namespace strata::scheduler::testing {

using strata::testing::FakeBackend;
inline constexpr int64_t kVocab = FakeBackend::kVocab;
inline constexpr TokenId kEos = FakeBackend::kEos;

// What RunAll collects per request.
struct Outcome {
  std::vector<TokenId> tokens;
  std::string finish_reason;
  absl::Status error;
  std::vector<TokenEvent> events;
};

class SchedulerFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokenizer = engine::Tokenizer::Load(STRATA_SOURCE_DIR "/models/aidreams260K");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
  }

  SchedulerOptions Options(int64_t num_blocks, int64_t max_batch_tokens) const {
    return SchedulerOptions{.block_size = FakeBackend::kBlockSize,
                            .num_blocks = num_blocks,
                            .max_batch_tokens = max_batch_tokens,
                            .max_running = 8,
                            .max_model_len = 128,
                            .vocab_size = kVocab,
                            .eos_token_ids = {kEos},
                            .kv_spec = FakeBackend::Spec()};
  }

  static Request MakeRequest(RequestId id, int prompt_len, int max_tokens) {
    Request request{.id = id};
    for (int i = 0; i < prompt_len; ++i) request.prompt_ids.push_back(3 + (id * 31 + i) % 500);
    request.sampling.temperature = 0;
    request.sampling.max_tokens = max_tokens;
    return request;
  }

  // One step; the cache's bookkeeping must hold after it.
  static std::vector<TokenEvent> Step(Scheduler& scheduler, engine::Backend& backend) {
    std::vector<TokenEvent> events = RunStep(scheduler, backend);
    absl::Status valid = scheduler.ValidateCache();
    EXPECT_TRUE(valid.ok()) << valid;
    return events;
  }

  // Runs until idle; returns what each request produced.
  static std::map<RequestId, Outcome> RunAll(Scheduler& scheduler, engine::Backend& backend) {
    std::map<RequestId, Outcome> out;
    for (int step = 0; scheduler.HasWork() && step < 10000; ++step) {
      for (TokenEvent& event : Step(scheduler, backend)) {
        Outcome& outcome = out[event.request_id];
        if (event.token_id) outcome.tokens.push_back(*event.token_id);
        if (event.finished) {
          outcome.finish_reason = FinishReasonName(event.finish_reason);
          outcome.error = event.error;
        }
        outcome.events.push_back(std::move(event));
      }
    }
    EXPECT_FALSE(scheduler.HasWork());
    absl::Status valid = scheduler.ValidateCache();
    EXPECT_TRUE(valid.ok()) << valid;
    return out;
  }

  // Each request alone on a fresh scheduler: the reference outputs.
  std::map<RequestId, std::vector<TokenId>> Alone(const std::vector<Request>& requests) const {
    std::map<RequestId, std::vector<TokenId>> alone;
    for (const Request& request : requests) {
      Scheduler scheduler(Options(64, 64));
      FakeBackend backend;
      EXPECT_TRUE(scheduler.AddRequest(request).ok());
      alone[request.id] = RunAll(scheduler, backend)[request.id].tokens;
    }
    return alone;
  }

  std::unique_ptr<engine::Tokenizer> tokenizer_;
};

}  // namespace strata::scheduler::testing

#endif  // STRATA_TESTS_SCHEDULER_SCHEDULER_FIXTURE_H_
