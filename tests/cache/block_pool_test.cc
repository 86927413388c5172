#include "cache/block_pool.h"

#include <algorithm>
#include <set>

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

}  // namespace
}  // namespace strata::cache
