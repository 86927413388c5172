#include "scheduler/waiting_order.h"

#include <chrono>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

using ::testing::ElementsAre;

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);

WaitingEntry Entry(RequestId id, int64_t cached_tokens, int32_t priority = 0,
                   Clock::duration arrived_after = {}) {
  return WaitingEntry{.id = id,
                      .priority = priority,
                      .arrival = static_cast<uint64_t>(id),
                      .arrived = kStart + arrived_after,
                      .cached_tokens = cached_tokens};
}

std::vector<RequestId> Ids(const std::vector<WaitingEntry>& entries) {
  std::vector<RequestId> ids;
  for (const WaitingEntry& entry : entries) ids.push_back(entry.id);
  return ids;
}

TEST(WaitingOrderTest, FcfsKeepsArrivalOrderWhateverIsCached) {
  WaitingOrder order(SchedulingPolicy::kFcfs, std::chrono::seconds(2));
  std::vector<WaitingEntry> entries = {Entry(3, 64), Entry(1, 0), Entry(2, 128)};
  order.Sort(entries, kStart);
  EXPECT_THAT(Ids(entries), ElementsAre(1, 2, 3));
  for (const WaitingEntry& entry : entries) EXPECT_FALSE(order.MayOvertake(entry));
}

TEST(WaitingOrderTest, CacheAwarePutsTheLongestCachedPrefixFirstTiesByArrival) {
  WaitingOrder order(SchedulingPolicy::kCacheAware, std::chrono::seconds(2));
  std::vector<WaitingEntry> entries = {Entry(1, 0), Entry(2, 64), Entry(3, 128), Entry(4, 64)};
  order.Sort(entries, kStart + std::chrono::seconds(1));
  EXPECT_THAT(Ids(entries), ElementsAre(3, 2, 4, 1));
  for (const WaitingEntry& entry : entries) {
    EXPECT_FALSE(entry.aged);
    EXPECT_TRUE(order.MayOvertake(entry));  // a request that does not fit is passed over
  }
}

TEST(WaitingOrderTest, FirstTokensFirstPutsRequestsWithNoTokenBeforePreemptedOnes) {
  // 1 and 3 were preempted (their K/V mostly cached); 2 and 4 have no token.
  std::vector<WaitingEntry> entries = {Entry(1, 256), Entry(2, 0), Entry(3, 128), Entry(4, 64)};
  entries[1].awaits_first_token = entries[3].awaits_first_token = true;
  std::vector<WaitingEntry> plain = entries;
  WaitingOrder(SchedulingPolicy::kCacheAware, std::chrono::seconds(2), /*first_tokens_first=*/true)
      .Sort(entries, kStart);
  EXPECT_THAT(Ids(entries), ElementsAre(4, 2, 1, 3));
  WaitingOrder(SchedulingPolicy::kCacheAware, std::chrono::seconds(2)).Sort(plain, kStart);
  EXPECT_THAT(Ids(plain), ElementsAre(1, 3, 4, 2));
  // The ageing bound still comes first: an aged preempted request leads.
  std::vector<WaitingEntry> aged = {Entry(1, 256), Entry(2, 0, 0, std::chrono::seconds(3))};
  aged[1].awaits_first_token = true;
  WaitingOrder(SchedulingPolicy::kCacheAware, std::chrono::seconds(2), true)
      .Sort(aged, kStart + std::chrono::seconds(3));
  EXPECT_THAT(Ids(aged), ElementsAre(1, 2));
}

TEST(WaitingOrderTest, RequestsPastTheAgeingBoundComeFirstInArrivalOrderAndAreNotOvertaken) {
  WaitingOrder order(SchedulingPolicy::kCacheAware, std::chrono::seconds(2));
  // 1 and 2 arrived at the start, 3 and 4 three seconds later.
  std::vector<WaitingEntry> entries = {Entry(4, 128, 0, std::chrono::seconds(3)), Entry(2, 0),
                                       Entry(1, 16), Entry(3, 256, 0, std::chrono::seconds(3))};
  order.Sort(entries, kStart + std::chrono::seconds(3));
  EXPECT_THAT(Ids(entries), ElementsAre(1, 2, 3, 4));
  EXPECT_TRUE(entries[0].aged);
  EXPECT_TRUE(entries[1].aged);
  EXPECT_FALSE(entries[2].aged);
  EXPECT_FALSE(order.MayOvertake(entries[0]));
  EXPECT_TRUE(order.MayOvertake(entries[2]));
  // Exactly at the bound counts as aged.
  std::vector<WaitingEntry> edge = {Entry(2, 64), Entry(1, 0)};
  order.Sort(edge, kStart + std::chrono::seconds(2));
  EXPECT_THAT(Ids(edge), ElementsAre(1, 2));
}

TEST(WaitingOrderTest, PriorityComesBeforeAgeAndCacheHits) {
  for (SchedulingPolicy policy : {SchedulingPolicy::kFcfs, SchedulingPolicy::kCacheAware}) {
    WaitingOrder order(policy, std::chrono::seconds(2));
    std::vector<WaitingEntry> entries = {Entry(1, 512), Entry(2, 0, /*priority=*/1),
                                         Entry(3, 0, /*priority=*/-1), Entry(4, 0, 1)};
    order.Sort(entries, kStart + std::chrono::seconds(10));  // all aged
    EXPECT_THAT(Ids(entries), ElementsAre(2, 4, 1, 3));
  }
}

}  // namespace
}  // namespace strata::scheduler
