#include "scheduler/workflow_tracker.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

using cache::Priority;
using ::testing::ElementsAre;

const Clock::time_point kStart = Clock::time_point() + std::chrono::hours(1);
constexpr Clock::duration kTtl = std::chrono::seconds(30);

AgentTurn Turn(std::initializer_list<uint64_t> lows) {
  AgentTurn turn;
  for (uint64_t low : lows) {
    turn.keys.push_back(cache::BlockKey{9, low});
    for (int i = 0; i < 4; ++i) turn.tokens.push_back(static_cast<TokenId>(low));
  }
  return turn;
}

class WorkflowTrackerTest : public ::testing::Test {
 protected:
  Priority Of(uint64_t low) const { return holds_.Effective(cache::BlockKey{9, low}); }

  KeyHolds holds_;
  WorkflowTracker workflows_{holds_, kTtl};
};

TEST_F(WorkflowTrackerTest, NamingAnAgentHoldsItsLastBlocksUntilItsRequestIsAdmitted) {
  const AgentKey planner{"t", "w", "planner"};
  workflows_.RecordTurn(planner, Turn({1, 2}), kStart);
  EXPECT_EQ(Of(1), Priority::kNormal);
  const std::vector<std::string> next = {"planner", "coder"};  // coder has never run
  EXPECT_THAT(workflows_.MarkNext("t", "w", next, kStart), ElementsAre(planner));
  EXPECT_EQ(Of(1), Priority::kWorkflowSoon);
  EXPECT_EQ(Of(2), Priority::kWorkflowSoon);
  EXPECT_TRUE(workflows_.IsSoon(planner));
  ASSERT_NE(workflows_.Find(planner), nullptr);
  EXPECT_EQ(workflows_.Find(planner)->tokens.size(), 8u);
  workflows_.OnAdmitted(planner);
  EXPECT_EQ(Of(1), Priority::kNormal);
  EXPECT_FALSE(workflows_.IsSoon(planner));
}

TEST_F(WorkflowTrackerTest, AgentsAreKeyedBySaltAndWorkflow) {
  workflows_.RecordTurn({"t", "w", "a"}, Turn({1}), kStart);
  const std::vector<std::string> next = {"a"};
  EXPECT_TRUE(workflows_.MarkNext("other-tenant", "w", next, kStart).empty());
  EXPECT_TRUE(workflows_.MarkNext("t", "other-workflow", next, kStart).empty());
  EXPECT_EQ(Of(1), Priority::kNormal);
}

TEST_F(WorkflowTrackerTest, HoldEndsAfterTheTtlAndIdleAgentsAreForgotten) {
  const AgentKey agent{"t", "w", "a"};
  workflows_.RecordTurn(agent, Turn({1}), kStart);
  const std::vector<std::string> next = {"a"};
  workflows_.MarkNext("t", "w", next, kStart + kTtl / 2);
  workflows_.Expire(kStart + kTtl);  // idle since the turn, but named since: kept
  EXPECT_EQ(Of(1), Priority::kWorkflowSoon);
  workflows_.Expire(kStart + kTtl / 2 + kTtl);
  EXPECT_EQ(Of(1), Priority::kNormal);
  EXPECT_EQ(workflows_.num_agents(), 0);
  EXPECT_EQ(holds_.num_keys(), 0);
}

TEST_F(WorkflowTrackerTest, ANewTurnMovesAPendingHoldToItsNewBlocks) {
  const AgentKey agent{"t", "w", "a"};
  workflows_.RecordTurn(agent, Turn({1, 2}), kStart);
  const std::vector<std::string> next = {"a"};
  workflows_.MarkNext("t", "w", next, kStart);
  workflows_.RecordTurn(agent, Turn({1, 3}), kStart + std::chrono::seconds(1));
  EXPECT_EQ(Of(1), Priority::kWorkflowSoon);
  EXPECT_EQ(Of(2), Priority::kNormal);
  EXPECT_EQ(Of(3), Priority::kWorkflowSoon);
  workflows_.OnAdmitted(agent);
  EXPECT_EQ(holds_.num_keys(), 0);
}

TEST_F(WorkflowTrackerTest, HeldBlocksAreOrderedFurthestFromRunningFirst) {
  // Agents a, b, c ran; the request now running names c, a, b in turn order.
  workflows_.RecordTurn({"t", "w", "a"}, Turn({1, 2}), kStart);
  workflows_.RecordTurn({"t", "w", "b"}, Turn({3, 4}), kStart);
  workflows_.RecordTurn({"t", "w", "c"}, Turn({5, 6}), kStart);
  holds_.TakeChanged();
  const std::vector<std::string> order = {"c", "a", "b", "c"};  // c again: its first place counts
  workflows_.MarkNext("t", "w", order, kStart);
  EXPECT_EQ(workflows_.Find({"t", "w", "c"})->steps_to_execution, 1);
  EXPECT_EQ(workflows_.Find({"t", "w", "a"})->steps_to_execution, 2);
  EXPECT_EQ(workflows_.Find({"t", "w", "b"})->steps_to_execution, 3);
  // b runs last: its blocks are evicted first, each agent's last block first.
  const std::vector<cache::BlockKey> expected = {cache::BlockKey{9, 4}, cache::BlockKey{9, 3},
                                                 cache::BlockKey{9, 2}, cache::BlockKey{9, 1},
                                                 cache::BlockKey{9, 6}, cache::BlockKey{9, 5}};
  EXPECT_EQ(workflows_.EvictionOrder("t", "w"), expected);
  // The holds changed, then the order was re-applied: the last application
  // of each key is in eviction order, so the pool ends up ordered.
  const std::vector<cache::BlockKey> changed = holds_.TakeChanged();
  ASSERT_GE(changed.size(), expected.size());
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), changed.end() - 6));
  // Only agents running after c give way to its prefetch.
  EXPECT_THAT(workflows_.KeysRunningAfter({"t", "w", "c"}),
              ::testing::UnorderedElementsAre(cache::BlockKey{9, 1}, cache::BlockKey{9, 2},
                                              cache::BlockKey{9, 3}, cache::BlockKey{9, 4}));
  EXPECT_TRUE(workflows_.KeysRunningAfter({"t", "w", "b"}).empty());
}

TEST_F(WorkflowTrackerTest, AHeldAgentTheNextRequestDoesNotNameIsDueNow) {
  workflows_.RecordTurn({"t", "w", "a"}, Turn({1}), kStart);
  workflows_.RecordTurn({"t", "w", "b"}, Turn({2}), kStart);
  const std::vector<std::string> first = {"a", "b"};
  workflows_.MarkNext("t", "w", first, kStart);
  // a's request is queued; it names b.
  const std::vector<std::string> second = {"b"};
  workflows_.MarkNext("t", "w", second, kStart);
  EXPECT_EQ(workflows_.Find({"t", "w", "a"})->steps_to_execution, 0);
  EXPECT_EQ(workflows_.Find({"t", "w", "b"})->steps_to_execution, 1);
  EXPECT_EQ(workflows_.EvictionOrder("t", "w"),
            (std::vector<cache::BlockKey>{cache::BlockKey{9, 2}, cache::BlockKey{9, 1}}));
}

TEST_F(WorkflowTrackerTest, OnlyTheFirstNamedAgentsAreReturnedForPrefetch) {
  std::vector<std::string> order;
  for (int i = 0; i < kPrefetchDepth + 2; ++i) {
    const std::string id = "agent-" + std::to_string(i);
    workflows_.RecordTurn({"t", "w", id}, Turn({static_cast<uint64_t>(10 + i)}), kStart);
    order.push_back(id);
  }
  const std::vector<AgentKey> prefetch = workflows_.MarkNext("t", "w", order, kStart);
  ASSERT_EQ(static_cast<int64_t>(prefetch.size()), kPrefetchDepth);
  for (int i = 0; i < kPrefetchDepth; ++i) {
    EXPECT_EQ(std::get<2>(prefetch[static_cast<size_t>(i)]), order[static_cast<size_t>(i)]);
  }
  // Every named agent is held, the far ones too.
  EXPECT_EQ(Of(10 + kPrefetchDepth + 1), Priority::kWorkflowSoon);
}

}  // namespace
}  // namespace strata::scheduler
