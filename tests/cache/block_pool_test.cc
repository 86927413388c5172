#include "cache/block_pool.h"

#include <algorithm>
#include <set>

#include "common/check.h"
#include "gtest/gtest.h"

namespace strata::cache {
namespace {

TEST(BlockPoolTest, AllocatesDistinctBlocksUntilFull) {
  BlockPool pool(5);
  auto first = pool.Allocate(3);
  ASSERT_TRUE(first.has_value());
  auto second = pool.Allocate(2);
  ASSERT_TRUE(second.has_value());
  std::set<BlockId> ids(first->begin(), first->end());
  ids.insert(second->begin(), second->end());
  EXPECT_EQ(ids.size(), 5u);
  EXPECT_EQ(*ids.begin(), 0);
  EXPECT_EQ(*ids.rbegin(), 4);
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(BlockPoolTest, RefusesWhatDoesNotFitAndTakesNothing) {
  BlockPool pool(4);
  ASSERT_TRUE(pool.Allocate(3).has_value());
  EXPECT_FALSE(pool.Allocate(2).has_value());
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_TRUE(pool.Allocate(1).has_value());
}

TEST(BlockPoolTest, SharedBlockIsFreedOnlyByItsLastReference) {
  BlockPool pool(2);
  auto ids = pool.Allocate(1);
  ASSERT_TRUE(ids.has_value());
  BlockId shared = ids->front();
  pool.AddRef(shared);
  EXPECT_EQ(pool.ref_count(shared), 2);
  pool.Release({shared});
  EXPECT_EQ(pool.ref_count(shared), 1);
  EXPECT_EQ(pool.num_free(), 1);
  pool.Release({shared});
  EXPECT_EQ(pool.ref_count(shared), 0);
  EXPECT_EQ(pool.num_free(), 2);
}

TEST(BlockPoolTest, FreedBlocksAreReused) {
  BlockPool pool(3);
  auto all = pool.Allocate(3);
  ASSERT_TRUE(all.has_value());
  pool.Release(*all);
  auto again = pool.Allocate(3);
  ASSERT_TRUE(again.has_value());
  std::vector<BlockId> sorted = *again;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<BlockId>{0, 1, 2}));
}

TEST(BlockPoolDeathTest, DoubleFreeIsABug) {
  BlockPool pool(1);
  auto ids = pool.Allocate(1);
  ASSERT_TRUE(ids.has_value());
  pool.Release(*ids);
  EXPECT_DEATH(pool.Release(*ids), "CHECK failed");
}

BlockKey Key(uint64_t n) { return BlockKey{n, ~n}; }

// Allocates `n` blocks, keys block i with Key(100 + id), releases them in
// order: all cached, released in id order.
std::vector<BlockId> CacheBlocks(BlockPool& pool, int64_t n) {
  auto ids = pool.Allocate(n);
  CHECK(ids.has_value());
  for (BlockId id : *ids) pool.SetKey(id, Key(100 + id));
  for (BlockId id : *ids) pool.Release({id});
  return *ids;
}

TEST(BlockPoolTest, KeyedBlocksStayCachedAfterReleaseAndFreeOnesGoFirst) {
  BlockPool pool(4);
  std::vector<BlockId> cached = CacheBlocks(pool, 2);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.num_cached(), 2);
  EXPECT_EQ(pool.num_available(), 4);
  EXPECT_EQ(pool.state(cached[0]), BlockState::kCached);
  std::vector<EvictedBlock> evicted;
  auto fresh = pool.Allocate(2, &evicted);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_TRUE(evicted.empty());
  for (BlockId id : *fresh) EXPECT_FALSE(pool.key(id).has_value());
  EXPECT_EQ(pool.num_cached(), 2);
  EXPECT_TRUE(pool.Validate().ok()) << pool.Validate();
}

TEST(BlockPoolTest, EvictsLeastRecentlyReleasedFirstAndReportsKeys) {
  BlockPool pool(3);
  std::vector<BlockId> ids = CacheBlocks(pool, 3);  // released in order ids[0], ids[1], ids[2]
  pool.Acquire(ids[0]);                             // used again: now the most recent
  pool.Release({ids[0]});
  std::vector<EvictedBlock> evicted;
  auto got = pool.Allocate(2, &evicted);
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(evicted[0].id, ids[1]);
  EXPECT_EQ(evicted[0].key, Key(100 + ids[1]));
  EXPECT_EQ(evicted[1].id, ids[2]);
  EXPECT_EQ(pool.state(ids[0]), BlockState::kCached);
  EXPECT_FALSE(pool.key(ids[1]).has_value());  // reused blocks forget their content
  EXPECT_TRUE(pool.Validate().ok()) << pool.Validate();
}

TEST(BlockPoolTest, LowerPriorityIsEvictedBeforeLessRecentHigherPriority) {
  BlockPool pool(4);
  std::vector<BlockId> ids = CacheBlocks(pool, 4);
  pool.SetPriority(ids[0], Priority::kSessionPinned);  // oldest, but pinned
  pool.SetPriority(ids[1], Priority::kWorkflowSoon);
  std::vector<EvictedBlock> evicted;
  ASSERT_TRUE(pool.Allocate(4, &evicted).has_value());
  ASSERT_EQ(evicted.size(), 4u);
  EXPECT_EQ(evicted[0].id, ids[2]);
  EXPECT_EQ(evicted[1].id, ids[3]);
  EXPECT_EQ(evicted[2].id, ids[1]);
  EXPECT_EQ(evicted[2].priority, Priority::kWorkflowSoon);
  EXPECT_EQ(evicted[3].id, ids[0]);  // pinned goes last, rather than failing the allocation
  EXPECT_EQ(pool.priority(ids[0]), Priority::kNormal);
}

TEST(BlockPoolTest, PriorityOfAnInUseBlockAppliesWhenReleased) {
  BlockPool pool(2);
  auto ids = pool.Allocate(2);
  ASSERT_TRUE(ids.has_value());
  pool.SetKey((*ids)[0], Key(1));
  pool.SetKey((*ids)[1], Key(2));
  pool.SetPriority((*ids)[0], Priority::kWorkflowSoon);
  pool.Release(*ids);
  std::vector<EvictedBlock> evicted;
  ASSERT_TRUE(pool.Allocate(1, &evicted).has_value());
  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0].id, (*ids)[1]);
}

TEST(BlockPoolTest, InUseBlocksAreNeverEvicted) {
  BlockPool pool(3);
  std::vector<BlockId> ids = CacheBlocks(pool, 3);
  pool.Acquire(ids[0]);  // a prefix hit holds it
  std::vector<EvictedBlock> evicted;
  EXPECT_FALSE(pool.Allocate(3, &evicted).has_value());
  EXPECT_TRUE(evicted.empty());  // a refused allocation evicts nothing
  EXPECT_EQ(pool.num_cached(), 2);
  auto got = pool.Allocate(2, &evicted);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(evicted.size(), 2u);
  EXPECT_EQ(pool.state(ids[0]), BlockState::kInUse);
  EXPECT_EQ(pool.key(ids[0]), Key(100 + ids[0]));
  EXPECT_TRUE(pool.Validate().ok()) << pool.Validate();
}

TEST(BlockPoolTest, EvictMakesFreeBlocksAheadOfDemand) {
  BlockPool pool(3);
  CacheBlocks(pool, 3);
  std::vector<EvictedBlock> evicted;
  EXPECT_EQ(pool.Evict(2, &evicted), 2);
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.Evict(5, &evicted), 1);
  EXPECT_EQ(evicted.size(), 3u);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_TRUE(pool.Validate().ok()) << pool.Validate();
}

TEST(BlockPoolDeathTest, AcquiringAFreeBlockIsABug) {
  BlockPool pool(1);
  EXPECT_DEATH(pool.Acquire(0), "CHECK failed");
}

}  // namespace
}  // namespace strata::cache
