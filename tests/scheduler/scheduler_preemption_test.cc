// Preemption by swap and by recomputation: under block pressure every
// request must produce exactly what it produces alone. On the fake backend
// (whose K/V reads check the prefix they were computed under) and on the
// real CPU backend with greedy and seeded sampling (batch-invariant, so
// tokens and logprobs match bit for bit).
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/model_weights.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "storage/host_tier_store.h"
#include "tests/scheduler/scheduler_fixture.h"

namespace strata::scheduler {
namespace {

using testing::FakeBackend;

class SchedulerPreemptionTest : public testing::SchedulerFixture {
 protected:
  static std::vector<Request> Workload() {
    std::vector<Request> requests;
    for (RequestId id = 1; id <= 6; ++id) requests.push_back(MakeRequest(id, 9 + id, 20));
    return requests;
  }
  // Every prompt token and every output token but the last computed once.
  static int64_t TokensComputedOnce(const std::vector<Request>& requests) {
    int64_t total = 0;
    for (const Request& r : requests) {
      total += static_cast<int64_t>(r.prompt_ids.size()) + r.sampling.max_tokens - 1;
    }
    return total;
  }
};

// 14 blocks of 4 tokens cannot hold six sequences of ~35 tokens each.
TEST_F(SchedulerPreemptionTest, SwapRestoresEveryBlockAndNothingIsRecomputed) {
  storage::HostTierStore host(storage::HostTierOptions{
      .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
  SchedulerOptions options = Options(14, 64);
  options.host_tier = &host;
  options.preemption = PreemptionMode::kSwap;
  // Room for every swapped sequence at once (the default, num_blocks, can
  // run out when several are swapped out together).
  options.max_swap_blocks = 64;
  Scheduler scheduler(options);
  FakeBackend backend;
  const std::vector<Request> requests = Workload();
  for (const Request& request : requests) ASSERT_TRUE(scheduler.AddRequest(request).ok());
  auto out = RunAll(scheduler, backend);
  auto alone = Alone(requests);
  for (const Request& request : requests) {
    EXPECT_EQ(out[request.id].tokens, alone[request.id]) << "request " << request.id;
  }
  const SchedulerCounters& counters = scheduler.counters();
  EXPECT_GT(counters.preemptions_swap, 0);
  EXPECT_EQ(counters.preemptions_recompute, 0);
  EXPECT_GT(counters.swapped_out_blocks, 0);
  EXPECT_GT(counters.swapped_in_blocks, 0);
  EXPECT_GT(backend.moves_[engine::BlockMoveKind::kDeviceToHost], 0);
  EXPECT_GT(backend.moves_[engine::BlockMoveKind::kHostToDevice], 0);
  // The partial blocks came back too: not a single token was computed twice.
  EXPECT_EQ(backend.total_step_tokens_, TokensComputedOnce(requests));
  EXPECT_EQ(scheduler.num_free_blocks(), 14);
}

TEST_F(SchedulerPreemptionTest, RecomputeModeIgnoresTheHostTierAndStaysExact) {
  storage::HostTierStore host(storage::HostTierOptions{
      .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
  SchedulerOptions options = Options(14, 64);
  options.host_tier = &host;
  options.preemption = PreemptionMode::kRecompute;
  Scheduler scheduler(options);
  FakeBackend backend;
  const std::vector<Request> requests = Workload();
  for (const Request& request : requests) ASSERT_TRUE(scheduler.AddRequest(request).ok());
  auto out = RunAll(scheduler, backend);
  auto alone = Alone(requests);
  for (const Request& request : requests) {
    EXPECT_EQ(out[request.id].tokens, alone[request.id]) << "request " << request.id;
  }
  EXPECT_GT(scheduler.counters().preemptions_recompute, 0);
  EXPECT_EQ(scheduler.counters().preemptions_swap, 0);
  EXPECT_EQ(scheduler.counters().swapped_out_blocks, 0);
  EXPECT_GT(backend.total_step_tokens_, TokensComputedOnce(requests));  // the tails again
}

TEST_F(SchedulerPreemptionTest, AutoSwapsWithAHostTierAndRecomputesWithout) {
  for (bool with_host : {true, false}) {
    storage::HostTierStore host(storage::HostTierOptions{
        .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
    SchedulerOptions options = Options(14, 64);
    if (with_host) options.host_tier = &host;
    options.preemption = PreemptionMode::kAuto;
    Scheduler scheduler(options);
    FakeBackend backend;
    const std::vector<Request> requests = Workload();
    for (const Request& request : requests) ASSERT_TRUE(scheduler.AddRequest(request).ok());
    auto out = RunAll(scheduler, backend);
    auto alone = Alone(requests);
    for (const Request& request : requests) EXPECT_EQ(out[request.id].tokens, alone[request.id]);
    const SchedulerCounters& counters = scheduler.counters();
    EXPECT_GT(counters.preemptions_swap + counters.preemptions_recompute, 0);
    if (with_host) {
      EXPECT_GT(counters.preemptions_swap, 0);
    } else {
      EXPECT_EQ(counters.preemptions_swap, 0);
    }
  }
}

TEST_F(SchedulerPreemptionTest, SwapSpaceLimitFallsBackToRecompute) {
  storage::HostTierStore host(storage::HostTierOptions{
      .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
  SchedulerOptions options = Options(14, 64);
  options.host_tier = &host;
  options.preemption = PreemptionMode::kSwap;
  options.max_swap_blocks = 4;  // one sequence's worth at most
  Scheduler scheduler(options);
  FakeBackend backend;
  const std::vector<Request> requests = Workload();
  for (const Request& request : requests) ASSERT_TRUE(scheduler.AddRequest(request).ok());
  auto out = RunAll(scheduler, backend);
  auto alone = Alone(requests);
  for (const Request& request : requests) EXPECT_EQ(out[request.id].tokens, alone[request.id]);
  EXPECT_GT(scheduler.counters().preemptions_recompute, 0);
}

// A swap whose copies never ran (the step failed) must not be swapped back
// in: the sequence recomputes instead.
TEST_F(SchedulerPreemptionTest, FailedStepDropsItsSwapOutsAndTheVictimRecomputes) {
  storage::HostTierStore host(storage::HostTierOptions{
      .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
  SchedulerOptions options = Options(6, 64);
  options.host_tier = &host;
  options.preemption = PreemptionMode::kSwap;
  Scheduler scheduler(options);
  FakeBackend backend;
  Request older = MakeRequest(1, 8, 12);  // grows to 5 blocks
  Request newer = MakeRequest(2, 3, 8);
  ASSERT_TRUE(scheduler.AddRequest(older).ok());
  ASSERT_TRUE(scheduler.AddRequest(newer).ok());
  std::map<RequestId, std::vector<TokenId>> tokens;
  std::map<RequestId, std::string> reasons;
  bool failed = false;
  for (int step = 0; scheduler.HasWork() && step < 1000; ++step) {
    // Fail the first step that swaps something out.
    const bool fail = !failed && scheduler.counters().preemptions_swap == 0;
    engine::StepPlan plan = scheduler.Schedule();
    std::vector<TokenEvent> events;
    if (fail && scheduler.counters().preemptions_swap > 0) {
      failed = true;
      events = scheduler.FailStep(plan, absl::InternalError("injected"));
    } else {
      auto result = backend.Execute(plan);
      ASSERT_TRUE(result.ok());
      events = scheduler.Update(plan, *result);
    }
    ASSERT_TRUE(scheduler.ValidateCache().ok()) << scheduler.ValidateCache();
    for (const TokenEvent& event : events) {
      if (event.token_id) tokens[event.request_id].push_back(*event.token_id);
      if (event.finished) reasons[event.request_id] = FinishReasonName(event.finish_reason);
    }
  }
  ASSERT_TRUE(failed);
  // The running one failed with the step; the swapped one resumed exactly.
  int errors = 0;
  for (RequestId id : {1, 2}) {
    if (reasons[id] == "error") {
      ++errors;
      continue;
    }
    EXPECT_EQ(reasons[id], "length");
    EXPECT_EQ(tokens[id], Alone({id == 1 ? older : newer})[id]);
  }
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(scheduler.num_free_blocks(), 6);
}

// Yields to new requests (SchedulerOptions::yield_to_new_after_tokens). 6
// blocks of 4 tokens: the decode (8-token prompt, 12 tokens out) holds 3
// blocks once it has made 4 tokens, when a request with a 13-token prompt
// (4 blocks) arrives; the two never fit side by side.
class YieldToNewTest : public SchedulerPreemptionTest {
 protected:
  struct Timeline {
    int new_first_token_step = -1;  // the step that gave the new request its first token
    int decode_finished_step = -1;
    size_t decode_tokens_before_new = 0;  // the decode's tokens when the new one's first came
    std::map<RequestId, std::vector<TokenId>> tokens;
    SchedulerCounters counters;
    int64_t demoted_blocks = 0;
  };

  Timeline Run(int64_t yield_after, PreemptionMode mode, bool host_tier = true) {
    storage::HostTierStore host(storage::HostTierOptions{
        .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
    SchedulerOptions options = Options(6, 64);
    if (host_tier) options.host_tier = &host;
    options.preemption = mode;
    options.yield_to_new_after_tokens = yield_after;
    Scheduler scheduler(options);
    FakeBackend backend;
    EXPECT_TRUE(scheduler.AddRequest(decode_).ok());
    Timeline timeline;
    bool added = false;
    for (int step = 0; scheduler.HasWork() && step < 1000; ++step) {
      if (!added && timeline.tokens[decode_.id].size() == 4) {
        EXPECT_TRUE(scheduler.AddRequest(fresh_).ok());
        added = true;
      }
      for (const TokenEvent& event : Step(scheduler, backend)) {
        if (event.request_id == fresh_.id && event.token_id &&
            timeline.new_first_token_step < 0) {
          timeline.new_first_token_step = step;
          timeline.decode_tokens_before_new = timeline.tokens[decode_.id].size();
        }
        if (event.token_id) timeline.tokens[event.request_id].push_back(*event.token_id);
        if (event.request_id == decode_.id && event.finished) timeline.decode_finished_step = step;
      }
    }
    timeline.counters = scheduler.counters();
    timeline.demoted_blocks = scheduler.cache_stats().demoted_blocks;
    EXPECT_EQ(scheduler.num_free_blocks(), 6);
    return timeline;
  }

  // Both run as they would alone, whatever the order they ran in.
  void ExpectExact(const Timeline& timeline) {
    auto alone = Alone({decode_, fresh_});
    ASSERT_EQ(alone[decode_.id].size(), 12u);
    EXPECT_EQ(timeline.tokens.at(decode_.id), alone[decode_.id]);
    EXPECT_EQ(timeline.tokens.at(fresh_.id), alone[fresh_.id]);
  }

  const Request decode_ = MakeRequest(1, 8, 12);
  const Request fresh_ = MakeRequest(2, 13, 4);
};

TEST_F(YieldToNewTest, ADecodeThatHasHadItsTurnIsSwappedOutForAFirstToken) {
  const Timeline timeline = Run(/*yield_after=*/4, PreemptionMode::kSwap);
  ASSERT_GE(timeline.new_first_token_step, 0);
  EXPECT_LT(timeline.new_first_token_step, timeline.decode_finished_step);
  EXPECT_EQ(timeline.decode_tokens_before_new, 4u);  // at once
  EXPECT_EQ(timeline.counters.yields_to_new, 1);
  EXPECT_EQ(timeline.counters.preemptions_swap, 1);
  EXPECT_EQ(timeline.counters.preemptions_recompute, 0);
  ExpectExact(timeline);
}

TEST_F(YieldToNewTest, WithoutYieldsTheNewRequestWaitsForTheDecodeToEnd) {
  const Timeline timeline = Run(/*yield_after=*/0, PreemptionMode::kSwap);
  EXPECT_GT(timeline.new_first_token_step, timeline.decode_finished_step);
  EXPECT_EQ(timeline.counters.yields_to_new, 0);
  EXPECT_EQ(timeline.counters.preemptions_swap, 0);
  ExpectExact(timeline);
}

TEST_F(YieldToNewTest, ADecodeYieldsOnlyOnceItHasHadItsTurn) {
  // The new request arrives after 4 of the decode's tokens; 8 are asked.
  const Timeline timeline = Run(/*yield_after=*/8, PreemptionMode::kSwap);
  EXPECT_LT(timeline.new_first_token_step, timeline.decode_finished_step);
  EXPECT_GE(timeline.decode_tokens_before_new, 8u);
  EXPECT_EQ(timeline.counters.yields_to_new, 1);
  ExpectExact(timeline);
}

TEST_F(YieldToNewTest, AYieldNeverThrowsWorkAway) {
  // No swap and no tier below the device: the new request's blocks would
  // evict the decode's, and recomputing them to save a wait is no trade.
  const Timeline timeline = Run(/*yield_after=*/4, PreemptionMode::kRecompute, false);
  EXPECT_GT(timeline.new_first_token_step, timeline.decode_finished_step);
  EXPECT_EQ(timeline.counters.yields_to_new, 0);
  EXPECT_EQ(timeline.counters.preemptions_recompute, 0);
  ExpectExact(timeline);
}

TEST_F(YieldToNewTest, WithoutSwapTheHostTierKeepsWhatAYieldGivesUp) {
  // Recompute mode, but the decode's full blocks go down to the host tier
  // when the new request evicts them (whether they come back from it or are
  // recomputed is the load-versus-recompute policy's call).
  const Timeline timeline = Run(/*yield_after=*/4, PreemptionMode::kRecompute);
  EXPECT_LT(timeline.new_first_token_step, timeline.decode_finished_step);
  EXPECT_EQ(timeline.counters.yields_to_new, 1);
  EXPECT_EQ(timeline.counters.preemptions_recompute, 1);
  EXPECT_GT(timeline.demoted_blocks, 0);
  ExpectExact(timeline);
}

// The real CPU backend: the same workload alone, under swap, and under
// recomputation gives the same tokens and logprobs, greedy and seeded.
class CpuPreemptionTest : public ::testing::Test {
 protected:
  struct Output {
    std::vector<TokenId> tokens;
    std::vector<float> logprobs;
    friend bool operator==(const Output&, const Output&) = default;
  };

  void SetUp() override {
    const std::filesystem::path dir =
        std::filesystem::path(STRATA_SOURCE_DIR) / "models/aidreams260K";
    auto model = engine::LoadModel(dir);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::make_unique<engine::LoadedModel>(*std::move(model));
    auto tokenizer = engine::Tokenizer::Load(dir);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
  }

  std::vector<Request> Workload() const {
    std::mt19937 rng(11);
    std::vector<Request> requests;
    for (RequestId id = 1; id <= 5; ++id) {
      Request request{.id = id};
      for (int i = 0; i < 10 + 3 * static_cast<int>(id); ++i) {
        request.prompt_ids.push_back(static_cast<TokenId>(3 + rng() % 500));
      }
      request.sampling.max_tokens = 24;
      request.sampling.ignore_eos = true;
      request.sampling.return_logprob = true;
      if (id % 2 == 0) {
        request.sampling.temperature = 0.9f;
        request.sampling.top_p = 0.95f;
        request.sampling.seed = 1000 + static_cast<uint64_t>(id);
      } else {
        request.sampling.temperature = 0;
      }
      requests.push_back(std::move(request));
    }
    return requests;
  }

  std::map<RequestId, Output> Run(const std::vector<Request>& requests, int64_t num_blocks,
                                  PreemptionMode mode, bool host_tier,
                                  SchedulerCounters* counters) {
    engine::BackendOptions backend_options;
    backend_options.block_size = 4;
    backend_options.num_kv_blocks = num_blocks;
    backend_options.threads = 1;
    auto backend = engine::cpu::CpuBackend::Create(*model_, backend_options);
    EXPECT_TRUE(backend.ok()) << backend.status();
    if (!backend.ok()) return {};
    const engine::KvArenaInfo arena = (*backend)->kv_arena_info();
    storage::HostTierStore host(storage::HostTierOptions{
        .block_bytes = static_cast<size_t>(arena.bytes_per_block),
        .capacity_bytes = static_cast<uint64_t>(64 * arena.bytes_per_block)});
    SchedulerOptions options{.block_size = 4,
                             .num_blocks = num_blocks,
                             .max_batch_tokens = 32,
                             .max_running = 8,
                             .max_model_len = model_->config.max_position_embeddings,
                             .vocab_size = model_->config.vocab_size,
                             .kv_spec = arena.spec};
    if (host_tier) options.host_tier = &host;
    options.preemption = mode;
    std::map<RequestId, Output> outputs;
    {
      Scheduler scheduler(options);
      for (const Request& request : requests) EXPECT_TRUE(scheduler.AddRequest(request).ok());
      for (int step = 0; scheduler.HasWork() && step < 100000; ++step) {
        for (const TokenEvent& event : RunStep(scheduler, **backend)) {
          EXPECT_TRUE(event.error.ok()) << event.error;
          if (!event.token_id) continue;
          outputs[event.request_id].tokens.push_back(*event.token_id);
          outputs[event.request_id].logprobs.push_back(event.sampled->logprob);
        }
        EXPECT_TRUE(scheduler.ValidateCache().ok()) << scheduler.ValidateCache();
      }
      if (counters != nullptr) *counters = scheduler.counters();
    }
    return outputs;
  }

  std::unique_ptr<engine::LoadedModel> model_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
};

TEST_F(CpuPreemptionTest, SwapAndRecomputeBothReproduceTheUninterruptedRun) {
  const std::vector<Request> requests = Workload();
  std::map<RequestId, Output> alone;
  for (const Request& request : requests) {
    alone[request.id] = Run({request}, 64, PreemptionMode::kRecompute, false, nullptr)[request.id];
    ASSERT_EQ(alone[request.id].tokens.size(), 24u);
  }
  // 20 blocks of 4 tokens for five sequences of 37..63 tokens.
  SchedulerCounters swap;
  auto swapped = Run(requests, 20, PreemptionMode::kSwap, true, &swap);
  SchedulerCounters recompute;
  auto recomputed = Run(requests, 20, PreemptionMode::kRecompute, false, &recompute);
  EXPECT_GT(swap.preemptions_swap, 0);
  EXPECT_GT(swap.swapped_in_blocks, 0);
  EXPECT_GT(recompute.preemptions_recompute, 0);
  for (const Request& request : requests) {
    EXPECT_EQ(swapped[request.id], alone[request.id]) << "swap, request " << request.id;
    EXPECT_EQ(recomputed[request.id], alone[request.id]) << "recompute, request " << request.id;
  }
}

}  // namespace
}  // namespace strata::scheduler
