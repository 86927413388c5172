#include "scheduler/workflow_tracker.h"

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

}  // namespace
}  // namespace strata::scheduler
