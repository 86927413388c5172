// Shared by the engine service and stress tests: the aidreams260K fixture
// (a real trained model small enough to decode thousands of tokens a second
// on the CPU backend), an event collector that checks every request's event
// stream, and the reference run of one request alone.
#ifndef STRATA_TESTS_SCHEDULER_ENGINE_TEST_UTIL_H_
#define STRATA_TESTS_SCHEDULER_ENGINE_TEST_UTIL_H_

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/model_weights.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "scheduler/engine_loop.h"
#include "scheduler/output_stream.h"
#include "scheduler/engine_service.h"
#include "scheduler/scheduler.h"

namespace strata::scheduler::testing {

inline constexpr int64_t kVocab = 512;     // aidreams260K's
inline constexpr int64_t kModelLen = 128;  // its max_position_embeddings
inline constexpr TokenId kEos = 2;

// The model and tokenizer, loaded once per test binary.
struct Fixture {
  engine::LoadedModel model;
  std::unique_ptr<engine::Tokenizer> tokenizer;
};

inline const Fixture& LoadFixture() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    const std::string dir = STRATA_SOURCE_DIR "/models/aidreams260K";
    absl::StatusOr<engine::LoadedModel> model = engine::LoadModel(dir);
    absl::StatusOr<std::unique_ptr<engine::Tokenizer>> tokenizer = engine::Tokenizer::Load(dir);
    if (!model.ok() || !tokenizer.ok()) {
      ADD_FAILURE() << "loading " << dir << ": " << model.status() << " / " << tokenizer.status();
      return f;
    }
    f->model = std::move(*model);
    f->tokenizer = std::move(*tokenizer);
    return f;
  }();
  return *fixture;
}

// One thread: the tests run several engines side by side on two cores.
inline std::unique_ptr<engine::cpu::CpuBackend> MakeCpuBackend(int64_t block_size,
                                                               int64_t num_blocks) {
  engine::BackendOptions options{
      .block_size = block_size, .num_kv_blocks = num_blocks, .threads = 1};
  auto backend = engine::cpu::CpuBackend::Create(LoadFixture().model, options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *std::move(backend) : nullptr;
}

inline SchedulerOptions MakeSchedulerOptions(const engine::Backend& backend, int64_t block_size,
                                             int64_t max_batch_tokens, int64_t max_running) {
  SchedulerOptions options;
  options.block_size = block_size;
  options.num_blocks = backend.kv_arena_info().num_blocks;
  options.max_batch_tokens = max_batch_tokens;
  options.max_running = max_running;
  options.max_model_len = kModelLen;
  options.vocab_size = kVocab;
  options.eos_token_ids = {kEos};
  options.kv_spec = backend.kv_arena_info().spec;
  return options;
}

// What one request received.
struct Outcome {
  std::vector<TokenId> tokens;
  std::string text;
  std::string finish_reason;  // empty until finished
  absl::Status error;
  int64_t finished_events = 0;
  int64_t events_after_finish = 0;
  std::optional<PromptUsage> usage;  // from the finished event
};

// Collects events from the event dispatch thread; any thread reads. Checks the sink
// contract as it goes: nothing after a finished event.
class Collector {
 public:
  EventSink Sink() {
    return [this](const TokenEvent& event) { OnEvent(event); };
  }

  void OnEvent(const TokenEvent& event) {
    std::lock_guard<std::mutex> lock(mu_);
    Outcome& outcome = outcomes_[event.request_id];
    if (outcome.finished_events > 0) {
      ++outcome.events_after_finish;
      return;
    }
    if (event.token_id) outcome.tokens.push_back(*event.token_id);
    outcome.text += event.text;
    if (event.finished) {
      ++outcome.finished_events;
      outcome.finish_reason = FinishReasonName(event.finish_reason);
      outcome.error = event.error;
      outcome.usage = event.usage;
      ++num_finished_;
      finished_.notify_all();
    }
  }

  std::map<RequestId, Outcome> outcomes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outcomes_;
  }
  Outcome outcome(RequestId id) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = outcomes_.find(id);
    return it == outcomes_.end() ? Outcome{} : it->second;
  }
  int64_t num_finished() const {
    std::lock_guard<std::mutex> lock(mu_);
    return num_finished_;
  }
  // Waits until `n` requests have finished or `timeout` passes.
  bool WaitForFinished(int64_t n, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mu_);
    return finished_.wait_for(lock, timeout, [&] { return num_finished_ >= n; });
  }
  // Tokens received so far by `id`.
  size_t num_tokens(RequestId id) const { return outcome(id).tokens.size(); }

  // Every request got exactly one finished event and nothing after it.
  void ExpectEachFinishedOnce() const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, outcome] : outcomes_) {
      EXPECT_EQ(outcome.finished_events, 1) << "request " << id;
      EXPECT_EQ(outcome.events_after_finish, 0) << "request " << id;
    }
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable finished_;
  std::map<RequestId, Outcome> outcomes_;
  int64_t num_finished_ = 0;
};

// Runs `request` alone through a fresh scheduler on `backend`, driving the
// step contract directly; the reference every service output is held to.
inline Outcome RunAlone(const Request& request, engine::Backend& backend,
                        const SchedulerOptions& options) {
  SchedulerOptions alone = options;
  alone.host_tier = nullptr;
  alone.disk_tier = nullptr;
  Scheduler scheduler(alone);
  Request copy = request;
  copy.id = 1;
  copy.deadline.reset();
  Outcome outcome;
  OutputStreams streams(*LoadFixture().tokenizer, alone.eos_token_ids);
  streams.Add(copy);
  absl::Status added = scheduler.AddRequest(std::move(copy));
  EXPECT_TRUE(added.ok()) << added;
  for (int step = 0; scheduler.HasWork() && step < 100000; ++step) {
    for (const TokenEvent& event : streams.Apply(scheduler, RunStep(scheduler, backend))) {
      if (event.token_id) outcome.tokens.push_back(*event.token_id);
      outcome.text += event.text;
      if (event.finished) {
        ++outcome.finished_events;
        outcome.finish_reason = FinishReasonName(event.finish_reason);
        outcome.error = event.error;
        outcome.usage = event.usage;
      }
    }
  }
  EXPECT_FALSE(scheduler.HasWork());
  return outcome;
}

}  // namespace strata::scheduler::testing

#endif  // STRATA_TESTS_SCHEDULER_ENGINE_TEST_UTIL_H_
