#include "scheduler/inflight_prefixes.h"

#include <vector>

#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

std::vector<cache::BlockKey> Keys(std::initializer_list<uint64_t> lows) {
  std::vector<cache::BlockKey> keys;
  for (uint64_t low : lows) keys.push_back(cache::BlockKey{7, low});
  return keys;
}

TEST(InflightPrefixesTest, WaitsOnlyWhenItsNextUncachedBlockIsBeingComputedByAnother) {
  InflightPrefixes inflight;
  // Sequence 1 computes blocks 2..4 of a shared chain (0 and 1 are cached).
  const std::vector<cache::BlockKey> a = Keys({10, 11, 12, 13, 14});
  inflight.Add(1, absl::MakeConstSpan(a).subspan(2));
  EXPECT_EQ(inflight.size(), 3);
  // Request 2 shares the chain up to block 3, then diverges.
  const std::vector<cache::BlockKey> b = Keys({10, 11, 12, 13, 99});
  EXPECT_EQ(inflight.ShouldWait(2, b, 2), std::optional<RequestId>(1));
  EXPECT_EQ(inflight.ShouldWait(2, b, 3), std::optional<RequestId>(1));
  // Once block 3 is cached its next block (99) is its own: it goes.
  EXPECT_EQ(inflight.ShouldWait(2, b, 4), std::nullopt);
  // Everything it needs cached (or nothing left to compute): never waits.
  EXPECT_EQ(inflight.ShouldWait(2, b, 5), std::nullopt);
  // A block nobody computes, and a sequence never waits on itself.
  EXPECT_EQ(inflight.ShouldWait(3, Keys({50, 51}), 0), std::nullopt);
  EXPECT_EQ(inflight.ShouldWait(1, a, 2), std::nullopt);
}

TEST(InflightPrefixesTest, FirstClaimKeepsAKeyAndClearForgetsAll) {
  InflightPrefixes inflight;
  const std::vector<cache::BlockKey> keys = Keys({1, 2});
  inflight.Add(5, keys);
  inflight.Add(6, keys);
  EXPECT_EQ(inflight.ShouldWait(7, keys, 0), std::optional<RequestId>(5));
  // The second claimant waits on the first rather than on itself.
  EXPECT_EQ(inflight.ShouldWait(6, keys, 0), std::optional<RequestId>(5));
  inflight.Clear();
  EXPECT_EQ(inflight.size(), 0);
  EXPECT_EQ(inflight.ShouldWait(7, keys, 0), std::nullopt);
}

}  // namespace
}  // namespace strata::scheduler
