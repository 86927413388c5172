// CacheBlend through the scheduler and the real CPU backend on aidreams260K:
// chunks are filled once and reused in any order and position, blended K/V
// never enters the prefix index, a blend prefetch caches chunks on their own,
// and bad blend requests are refused naming the field.
#include <set>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/engine_loop.h"
#include "scheduler/scheduler.h"
#include "tests/scheduler/engine_test_util.h"

namespace strata::scheduler {
namespace {

using ::testing::HasSubstr;
using testing::LoadFixture;
using testing::MakeCpuBackend;
using testing::MakeSchedulerOptions;

constexpr int64_t kBlockSize = 4;

std::vector<TokenId> Tokens(int count, uint32_t seed) {
  std::vector<TokenId> ids;
  uint32_t state = seed * 2654435761u + 1;
  for (int i = 0; i < count; ++i) {
    state = state * 1664525u + 1013904223u;
    ids.push_back(static_cast<TokenId>(3 + (state >> 8) % 500));
  }
  return ids;
}

// BOS, the chunks in order, then the question.
Request BlendRequest(RequestId id, const std::vector<std::vector<TokenId>>& chunks,
                     const std::vector<TokenId>& question, float ratio = 0.15f) {
  Request request{.id = id, .prompt_ids = {1}};
  for (const std::vector<TokenId>& chunk : chunks) {
    request.chunks.push_back({.begin = static_cast<int64_t>(request.prompt_ids.size()),
                              .length = static_cast<int64_t>(chunk.size())});
    request.prompt_ids.insert(request.prompt_ids.end(), chunk.begin(), chunk.end());
  }
  request.prompt_ids.insert(request.prompt_ids.end(), question.begin(), question.end());
  request.blend = BlendOptions{.recompute_ratio = ratio, .check_layers = {1}};
  request.sampling.temperature = 0;
  request.sampling.max_tokens = 6;
  request.sampling.ignore_eos = true;
  return request;
}

struct RunResult {
  std::vector<TokenId> tokens;
  std::optional<PromptUsage> usage;
  std::string finish_reason;
  // The block tables of the blend steps, as planned.
  std::vector<std::vector<engine::BlockId>> blend_tables;
};

RunResult RunToEnd(Scheduler& scheduler, engine::Backend& backend, Request request) {
  RunResult run;
  const RequestId id = request.id;
  absl::Status added = scheduler.AddRequest(std::move(request));
  EXPECT_TRUE(added.ok()) << added;
  for (int step = 0; scheduler.HasWork() && step < 10000; ++step) {
    engine::StepPlan plan = scheduler.Schedule();
    for (const engine::SequenceStep& seq : plan.sequences) {
      if (seq.blend) run.blend_tables.push_back(seq.block_table);
    }
    for (const TokenEvent& event : ExecutePlan(scheduler, backend, plan)) {
      EXPECT_EQ(event.request_id, id) << "internal fills emit no events";
      EXPECT_TRUE(event.error.ok()) << event.error;
      if (event.token_id) run.tokens.push_back(*event.token_id);
      if (event.finished) {
        run.usage = event.usage;
        run.finish_reason = FinishReasonName(event.finish_reason);
      }
    }
  }
  EXPECT_TRUE(scheduler.ValidateCache().ok()) << scheduler.ValidateCache();
  return run;
}

class SchedulerBlendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = MakeCpuBackend(kBlockSize, 120);
    ASSERT_NE(backend_, nullptr);
    options_ = MakeSchedulerOptions(*backend_, kBlockSize, 64, 8);
  }
  std::unique_ptr<engine::cpu::CpuBackend> backend_;
  SchedulerOptions options_;
  const std::vector<TokenId> a_ = Tokens(21, 1), b_ = Tokens(14, 2), c_ = Tokens(9, 3);
};

TEST_F(SchedulerBlendTest, FillsEachChunkOnceAndReusesItAnywhere) {
  Scheduler scheduler(options_);
  const RunResult first = RunToEnd(scheduler, *backend_, BlendRequest(1, {a_, b_}, Tokens(5, 9)));
  EXPECT_EQ(first.tokens.size(), 6u);
  EXPECT_EQ(scheduler.counters().chunk_fills, 2);
  EXPECT_EQ(scheduler.counters().blend_steps, 1);
  ASSERT_TRUE(first.usage.has_value());
  EXPECT_EQ(first.usage->blend_reused_tokens + first.usage->blend_recomputed_tokens, 35);
  EXPECT_GT(first.usage->blend_reused_tokens, 0);

  // The same chunks in another order and position, with a new one.
  const Request second = BlendRequest(2, {c_, b_, a_}, Tokens(4, 10));
  const RunResult warm = RunToEnd(scheduler, *backend_, second);
  EXPECT_EQ(scheduler.counters().chunk_fills, 3) << "only the new chunk is computed";
  ASSERT_TRUE(warm.usage.has_value());
  EXPECT_EQ(warm.usage->blend_reused_tokens + warm.usage->blend_recomputed_tokens, 44);
  // Chunk tokens recomputed: ceil(0.15 * 44) = 7.
  EXPECT_EQ(warm.usage->blend_recomputed_tokens, 7);

  // What was cached does not change the output: a cold scheduler fills all
  // three chunks first and gives the same tokens.
  auto cold_backend = MakeCpuBackend(kBlockSize, 120);
  Scheduler cold(options_);
  EXPECT_EQ(RunToEnd(cold, *cold_backend, second).tokens, warm.tokens);
}

TEST_F(SchedulerBlendTest, BlendedBlocksNeverEnterThePrefixIndex) {
  Scheduler scheduler(options_);
  const Request request = BlendRequest(1, {a_, b_}, Tokens(5, 9));
  const RunResult run = RunToEnd(scheduler, *backend_, request);
  ASSERT_EQ(run.blend_tables.size(), 1u);
  // Block 0 holds BOS and the first chunk's start: blended from position 1.
  for (size_t b = 0; b < run.blend_tables[0].size(); ++b) {
    EXPECT_FALSE(scheduler.kv_cache().pool().key(run.blend_tables[0][b]).has_value())
        << "blended block " << b << " is keyed";
  }
  // The same prompt without blending is computed in full, never served the
  // blended K/V as exact.
  Request exact = request;
  exact.id = 2;
  exact.blend.reset();
  exact.chunks.clear();
  const RunResult plain = RunToEnd(scheduler, *backend_, exact);
  ASSERT_TRUE(plain.usage.has_value());
  EXPECT_EQ(plain.usage->cached_tokens(), 0);
}

TEST_F(SchedulerBlendTest, APrefetchCachesEachChunkOnItsOwn) {
  Scheduler scheduler(options_);
  Request prefetch = BlendRequest(1, {a_, b_}, {});
  prefetch.kind = RequestKind::kPrefill;
  const RunResult prefetched = RunToEnd(scheduler, *backend_, prefetch);
  EXPECT_EQ(prefetched.finish_reason, "prefilled");
  EXPECT_EQ(scheduler.counters().chunk_fills, 2);
  EXPECT_EQ(scheduler.counters().blend_steps, 0);
  // Both chunks are now there, at any position: no fill needed.
  RunToEnd(scheduler, *backend_, BlendRequest(2, {b_, a_}, Tokens(3, 4)));
  EXPECT_EQ(scheduler.counters().chunk_fills, 2);
  EXPECT_EQ(scheduler.counters().blend_steps, 1);
  // A second prefetch of cached chunks ends at once, reporting them cached.
  Request again = BlendRequest(3, {a_}, {});
  again.kind = RequestKind::kPrefill;
  const RunResult cached = RunToEnd(scheduler, *backend_, again);
  EXPECT_EQ(cached.finish_reason, "prefilled");
  ASSERT_TRUE(cached.usage.has_value());
  EXPECT_EQ(cached.usage->cached_tokens(), 21);
}

TEST_F(SchedulerBlendTest, RefusesBadBlendRequestsNamingTheField) {
  Scheduler scheduler(options_);
  Request ratio = BlendRequest(1, {a_}, Tokens(3, 4), 1.5f);
  EXPECT_THAT(std::string(scheduler.AddRequest(ratio).message()),
              HasSubstr("blend.recompute_ratio"));
  Request layer = BlendRequest(2, {a_}, Tokens(3, 4));
  layer.blend->check_layers = {1, 4};
  absl::Status status = scheduler.AddRequest(layer);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("blend.check_layers[1]"));
  Request span = BlendRequest(3, {a_}, Tokens(3, 4));
  span.chunks[0].length = 100;
  EXPECT_THAT(std::string(scheduler.AddRequest(span).message()), HasSubstr("chunks[0]"));
  EXPECT_FALSE(scheduler.HasWork());
}

TEST_F(SchedulerBlendTest, WithoutThePrefixCacheABlendIsAnExactPrefill) {
  SchedulerOptions off = options_;
  off.enable_prefix_cache = false;
  Scheduler scheduler(off);
  Request request = BlendRequest(1, {a_, b_}, Tokens(5, 9));
  const RunResult blended = RunToEnd(scheduler, *backend_, request);
  EXPECT_EQ(scheduler.counters().chunk_fills, 0);
  request.blend.reset();
  request.chunks.clear();
  auto other_backend = MakeCpuBackend(kBlockSize, 120);
  Scheduler plain(off);
  EXPECT_EQ(RunToEnd(plain, *other_backend, request).tokens, blended.tokens);
}

}  // namespace
}  // namespace strata::scheduler
