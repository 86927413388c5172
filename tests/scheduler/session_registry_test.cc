#include "scheduler/session_registry.h"

#include <chrono>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

using cache::Priority;

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);
constexpr Clock::duration kTtl = std::chrono::seconds(10);

std::vector<cache::BlockKey> Keys(std::initializer_list<uint64_t> lows) {
  std::vector<cache::BlockKey> keys;
  for (uint64_t low : lows) keys.push_back(cache::BlockKey{3, low});
  return keys;
}

class SessionRegistryTest : public ::testing::Test {
 protected:
  Priority Of(uint64_t low) const { return holds_.Effective(cache::BlockKey{3, low}); }

  KeyHolds holds_;
  SessionRegistry sessions_{holds_, kTtl};
};

TEST_F(SessionRegistryTest, ContextIsPinnedForTheTtlAfterEachTurnAndReplacedByTheNext) {
  sessions_.BeginTurn("t", "s");
  sessions_.EndTurn("t", "s", Keys({1, 2}), kStart);
  EXPECT_EQ(Of(1), Priority::kSessionPinned);
  // Turn 2 extends the context: the shared blocks stay pinned, the old-only
  // one is let go.
  sessions_.BeginTurn("t", "s");
  sessions_.Expire(kStart + 2 * kTtl);  // a turn in flight: never expires
  EXPECT_EQ(Of(1), Priority::kSessionPinned);
  sessions_.EndTurn("t", "s", Keys({1, 3, 4}), kStart + 2 * kTtl);
  EXPECT_EQ(Of(1), Priority::kSessionPinned);
  EXPECT_EQ(Of(2), Priority::kNormal);
  EXPECT_EQ(Of(4), Priority::kSessionPinned);
  sessions_.Expire(kStart + 3 * kTtl - std::chrono::milliseconds(1));
  EXPECT_EQ(Of(4), Priority::kSessionPinned);
  sessions_.Expire(kStart + 3 * kTtl);
  EXPECT_EQ(Of(1), Priority::kNormal);
  EXPECT_EQ(Of(4), Priority::kNormal);
  EXPECT_FALSE(sessions_.Contains("t", "s"));  // nothing left: forgotten
  EXPECT_EQ(holds_.num_keys(), 0);
}

TEST_F(SessionRegistryTest, ATurnThatComputedNothingKeepsThePreviousContext) {
  sessions_.BeginTurn("t", "s");
  sessions_.EndTurn("t", "s", Keys({1}), kStart);
  sessions_.BeginTurn("t", "s");
  sessions_.EndTurn("t", "s", {}, kStart + kTtl / 2);  // aborted while waiting
  sessions_.Expire(kStart + kTtl);
  EXPECT_EQ(Of(1), Priority::kSessionPinned);  // the ttl counts from the last turn
}

TEST_F(SessionRegistryTest, SessionsAreKeyedBySaltAndSessionId) {
  sessions_.BeginTurn("a", "s");
  sessions_.EndTurn("a", "s", Keys({1}), kStart);
  EXPECT_TRUE(sessions_.Contains("a", "s"));
  EXPECT_FALSE(sessions_.Contains("b", "s"));
  EXPECT_EQ(sessions_.Release("b", "s").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Of(1), Priority::kSessionPinned);
  EXPECT_TRUE(sessions_.Release("a", "s").ok());
  EXPECT_EQ(Of(1), Priority::kNormal);
  EXPECT_EQ(sessions_.Release("a", "s").code(), absl::StatusCode::kNotFound);
}

TEST_F(SessionRegistryTest, PinsOutliveTheTtlUntilRelease) {
  sessions_.BeginTurn("t", "s");
  sessions_.Pin("t", "s", Keys({7, 8}));
  sessions_.EndTurn("t", "s", Keys({7, 8}), kStart);
  sessions_.Expire(kStart + 5 * kTtl);
  EXPECT_EQ(Of(7), Priority::kSessionPinned);  // the context expired, the pin did not
  EXPECT_TRUE(sessions_.Contains("t", "s"));
  ASSERT_TRUE(sessions_.Release("t", "s").ok());
  EXPECT_EQ(Of(7), Priority::kNormal);
  EXPECT_EQ(holds_.num_keys(), 0);
}

TEST_F(SessionRegistryTest, PinsWithoutASessionLastUntilTheBlockIsEvicted) {
  sessions_.PinUntilEvicted(Keys({5, 6}));
  sessions_.PinUntilEvicted(Keys({5}));  // pinned once, however often asked
  sessions_.Expire(kStart + 100 * kTtl);
  EXPECT_EQ(Of(5), Priority::kSessionPinned);
  sessions_.OnEvicted(cache::BlockKey{3, 5});
  EXPECT_EQ(Of(5), Priority::kNormal);
  EXPECT_EQ(Of(6), Priority::kSessionPinned);
  sessions_.OnEvicted(cache::BlockKey{3, 99});  // never pinned: no-op
  EXPECT_EQ(holds_.num_keys(), 1);
}

TEST_F(SessionRegistryTest, ReleaseDuringATurnLetsTheTurnStartAFreshContext) {
  sessions_.BeginTurn("t", "s");
  sessions_.EndTurn("t", "s", Keys({1}), kStart);
  sessions_.BeginTurn("t", "s");
  ASSERT_TRUE(sessions_.Release("t", "s").ok());
  EXPECT_EQ(Of(1), Priority::kNormal);
  EXPECT_TRUE(sessions_.Contains("t", "s"));  // its turn is still running
  sessions_.EndTurn("t", "s", Keys({2}), kStart + kTtl);
  EXPECT_EQ(Of(2), Priority::kSessionPinned);
}

}  // namespace
}  // namespace strata::scheduler
