// Write-behind: the cached blocks of ended requests are copied down to the
// lower tier by later plans, a bounded number per step, so that evicting
// them afterwards copies nothing, and what comes back from the tier is
// exactly what was computed.
#include "scheduler/write_behind.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"
#include "storage/host_tier_store.h"
#include "tests/scheduler/scheduler_fixture.h"

namespace strata::scheduler {
namespace {

using testing::FakeBackend;

const cache::ModelFingerprint kModel{0x12, 0x34};

storage::HostTierStore MakeHostTier(int64_t blocks) {
  return storage::HostTierStore(storage::HostTierOptions{
      .block_bytes = FakeBackend::kBlockBytes,
      .capacity_bytes = static_cast<uint64_t>(blocks) * FakeBackend::kBlockBytes});
}

// A device cache holding one ended sequence of `blocks` full blocks.
struct EndedSequence {
  explicit EndedSequence(int64_t blocks) : cache(FakeBackend::Spec(), 16, kModel) {
    const int64_t n = blocks * FakeBackend::kBlockSize;
    for (int64_t i = 0; i < n; ++i) tokens.push_back(static_cast<TokenId>(5 + i));
    table = *cache.AddSequence(1, "", cache::CachedPrefix{}, n, n);
    cache.CommitFullBlocks(1, tokens, n);
    keys = cache.IndexedKeys(1);
    cache.Free(1);
  }
  cache::KvCacheManager cache;
  std::vector<TokenId> tokens;
  cache::BlockTable table;
  std::vector<cache::BlockKey> keys;
};

std::vector<cache::BlockId> DemotedBlocks(const engine::StepPlan& plan) {
  std::vector<cache::BlockId> blocks;
  for (const engine::BlockMove& move : plan.block_moves) {
    EXPECT_EQ(move.kind, engine::BlockMoveKind::kDeviceToHost);
    blocks.push_back(move.src);
  }
  return blocks;
}

TEST(WriteBehindTest, CopiesAFewBlocksPerBusyStepAndMoreWhenIdle) {
  EndedSequence ended(/*blocks=*/12);
  ASSERT_EQ(ended.keys.size(), 12u);
  storage::HostTierStore host = MakeHostTier(64);
  cache::StagingPool staging(FakeBackend::kBlockBytes, 64, storage::HeapHostAllocator());
  cache::Demotions demotions(staging, host, cache::Tier::kHost);
  WriteBehind write_behind(/*blocks_per_step=*/1, /*max_queued=*/64);
  write_behind.Enqueue(ended.keys);
  write_behind.Enqueue(ended.keys);  // already queued: no second copy
  EXPECT_EQ(write_behind.num_queued(), 12);

  PlanBuilder busy(64, {});
  EXPECT_EQ(write_behind.AddTo(busy, ended.cache, demotions, /*idle=*/false), 1);
  EXPECT_EQ(DemotedBlocks(busy.TakePlan()), std::vector<cache::BlockId>{ended.table[0]});
  EXPECT_EQ(demotions.Finish(/*performed=*/true), 1);

  PlanBuilder idle(64, {});
  EXPECT_EQ(write_behind.AddTo(idle, ended.cache, demotions, /*idle=*/true),
            WriteBehind::kIdleFactor);
  const std::vector<cache::BlockId> expected(ended.table.begin() + 1,
                                             ended.table.begin() + 1 + WriteBehind::kIdleFactor);
  EXPECT_EQ(DemotedBlocks(idle.TakePlan()), expected);
  EXPECT_EQ(demotions.Finish(/*performed=*/true), WriteBehind::kIdleFactor);
  EXPECT_EQ(write_behind.num_queued(), 12 - 1 - WriteBehind::kIdleFactor);
  // The device keeps every block: a write-behind copy evicts nothing.
  EXPECT_EQ(ended.cache.FindCachedPrefix("", ended.tokens).blocks.size(), 11u);
}

TEST(WriteBehindTest, SkipsBlocksTheTierHoldsOrTheDeviceNoLongerHas) {
  EndedSequence ended(/*blocks=*/4);
  storage::HostTierStore host = MakeHostTier(64);
  cache::StagingPool staging(FakeBackend::kBlockBytes, 64, storage::HeapHostAllocator());
  cache::Demotions demotions(staging, host, cache::Tier::kHost);
  WriteBehind write_behind(/*blocks_per_step=*/8, /*max_queued=*/64);
  write_behind.Enqueue(ended.keys);
  PlanBuilder first(64, {});
  EXPECT_EQ(write_behind.AddTo(first, ended.cache, demotions, /*idle=*/false), 4);
  EXPECT_EQ(demotions.Finish(/*performed=*/true), 4);

  // Queued again (the prefix served a second request): the tier holds them.
  write_behind.Enqueue(ended.keys);
  // And one key the device never indexed (evicted since it was queued).
  write_behind.Enqueue({cache::BlockKey{.high = 1, .low = 2}});
  PlanBuilder second(64, {});
  EXPECT_EQ(write_behind.AddTo(second, ended.cache, demotions, /*idle=*/false), 0);
  EXPECT_TRUE(second.TakePlan().block_moves.empty());
  EXPECT_EQ(write_behind.num_queued(), 0);
}

TEST(WriteBehindTest, ALongQueueDropsItsOldestAndOffQueuesNothing) {
  EndedSequence ended(/*blocks=*/3);
  WriteBehind bounded(/*blocks_per_step=*/1, /*max_queued=*/2);
  bounded.Enqueue(ended.keys);
  EXPECT_EQ(bounded.num_queued(), 2);
  WriteBehind off(/*blocks_per_step=*/0, /*max_queued=*/64);
  EXPECT_FALSE(off.enabled());
  off.Enqueue(ended.keys);
  EXPECT_EQ(off.num_queued(), 0);
}

class WriteBehindSchedulerTest : public testing::SchedulerFixture {};

// A request's blocks reach the host tier in the steps after it ends; the
// request that then evicts them copies nothing; and the prefix comes back
// from the host tier exactly.
TEST_F(WriteBehindSchedulerTest, EvictingBlocksWrittenBehindCopiesNothing) {
  storage::HostTierStore host = MakeHostTier(64);
  SchedulerOptions options = Options(11, 64);
  options.host_tier = &host;
  options.write_behind_blocks_per_step = 4;
  Scheduler scheduler(options);
  FakeBackend backend;
  Request a = MakeRequest(1, 41, 2);  // ten full blocks before its last token
  ASSERT_TRUE(scheduler.AddRequest(a).ok());
  RunAll(scheduler, backend);  // runs while write-behind has work
  EXPECT_FALSE(scheduler.HasWork());
  const cache::CacheStats written = scheduler.cache_stats();
  EXPECT_EQ(written.written_behind_blocks, 10);
  EXPECT_EQ(written.demoted_blocks, 10);
  EXPECT_EQ(written.evicted_blocks, 0);
  EXPECT_EQ(backend.moves_[engine::BlockMoveKind::kDeviceToHost], 10);

  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 41, 1)).ok());  // needs all 11 blocks
  RunAll(scheduler, backend);
  EXPECT_GE(scheduler.cache_stats().evicted_blocks, 10);
  // Request 2's own ten blocks were written behind; request 1's were not
  // copied again when evicted.
  EXPECT_EQ(scheduler.cache_stats().demoted_blocks, 20);
  EXPECT_EQ(scheduler.cache_stats().written_behind_blocks, 20);

  Request again = a;
  again.id = 3;
  ASSERT_TRUE(scheduler.AddRequest(again).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kHost)], 40);
  EXPECT_EQ(out[3].tokens, Alone({a})[1]);
}

}  // namespace
}  // namespace strata::scheduler
