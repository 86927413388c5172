#include "scheduler/plan_builder.h"

#include <array>
#include <cstddef>

#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

engine::SequenceStep StepOf(engine::SequenceId id, size_t tokens) {
  engine::SequenceStep step;
  step.seq_id = id;
  step.token_ids.assign(tokens, 7);
  return step;
}

TEST(PlanBuilderTest, StepsAreChargedToTheBudgetAndRefundedWhenRemoved) {
  PlanBuilder builder(/*token_budget=*/10, /*finished_ids=*/{4, 5});
  builder.AddStep(StepOf(1, 6));
  EXPECT_EQ(builder.budget(), 4);
  builder.AddStep(StepOf(2, 9));  // a blend span may exceed what is left
  EXPECT_EQ(builder.budget(), 0);
  EXPECT_FALSE(builder.has_budget());
  builder.RemoveStep(1);
  EXPECT_EQ(builder.budget(), 6);
  builder.RemoveStep(99);  // not in the plan: nothing changes
  EXPECT_EQ(builder.budget(), 6);
  engine::StepPlan plan = builder.TakePlan();
  ASSERT_EQ(plan.sequences.size(), 1u);
  EXPECT_EQ(plan.sequences[0].seq_id, 2);
  EXPECT_EQ(plan.finished_ids, (std::vector<engine::SequenceId>{4, 5}));
}

TEST(PlanBuilderTest, MovesKeepTheirRecordedOrderAndTheInflightRecord) {
  std::array<std::byte, 8> staging{};
  std::array<std::byte, 8> swap{};
  PlanBuilder builder(16, {});
  builder.Demote(3, absl::MakeSpan(staging));
  builder.SwapOutBlock(4, absl::MakeSpan(swap));
  builder.RecordSwapOut(42);
  builder.Promote(3, absl::MakeConstSpan(staging));  // block 3 reused after its demotion read it
  builder.SwapInBlock(5, absl::MakeConstSpan(swap));
  builder.FreeSwapSlotAfter(2);
  InflightMoves inflight = builder.TakeInflight();
  engine::StepPlan plan = builder.TakePlan();
  ASSERT_EQ(plan.block_moves.size(), 4u);
  EXPECT_EQ(plan.block_moves[0].kind, engine::BlockMoveKind::kDeviceToHost);
  EXPECT_EQ(plan.block_moves[0].src, 3);
  EXPECT_EQ(plan.block_moves[1].src, 4);
  EXPECT_EQ(plan.block_moves[2].kind, engine::BlockMoveKind::kHostToDevice);
  EXPECT_EQ(plan.block_moves[2].dst, 3);
  EXPECT_EQ(plan.block_moves[3].dst, 5);
  EXPECT_EQ(inflight.swapped_out, (std::vector<RequestId>{42}));
  EXPECT_EQ(inflight.swap_in_slots, (std::vector<int32_t>{2}));
  EXPECT_TRUE(inflight.promotions.empty());
}

}  // namespace
}  // namespace strata::scheduler
