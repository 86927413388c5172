#include "scheduler/preemption_policy.h"

#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

constexpr int64_t kBlock = 16;

TEST(PreemptionPolicyTest, RecomputeModeAndNoHostTierAlwaysRecompute) {
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kRecompute, true, 1000, kBlock, 1000),
            PreemptAction::kRecompute);
  for (PreemptionMode mode : {PreemptionMode::kSwap, PreemptionMode::kAuto}) {
    EXPECT_EQ(ChoosePreemption(mode, /*swap_available=*/false, 1000, kBlock, 1000),
              PreemptAction::kRecompute);
  }
}

TEST(PreemptionPolicyTest, SwapNeedsRoomForEveryComputedBlockPartialOneIncluded) {
  // 33 tokens: two full blocks and one partial.
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kSwap, true, 33, kBlock, 3), PreemptAction::kSwap);
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kSwap, true, 33, kBlock, 2),
            PreemptAction::kRecompute);
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kSwap, true, 0, kBlock, 3),
            PreemptAction::kRecompute);  // nothing computed, nothing to keep
}

TEST(PreemptionPolicyTest, AutoRecomputesLessThanOneBlockAndSwapsTheRest) {
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kAuto, true, kBlock - 1, kBlock, 10),
            PreemptAction::kRecompute);
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kSwap, true, kBlock - 1, kBlock, 10),
            PreemptAction::kSwap);
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kAuto, true, kBlock, kBlock, 10),
            PreemptAction::kSwap);
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kAuto, true, 10 * kBlock, kBlock, 9),
            PreemptAction::kRecompute);
}

TEST(PreemptionPolicyTest, AutoWithMeasuredCostsSwapsOnlyWhenCopiesAreCheaper) {
  // 64 tokens (4 blocks): a swap copies 4 blocks out and back (8 copies).
  const PreemptionCosts cheap_copies{.compute_s_per_token = 1e-3, .copy_s_per_block = 1e-5};
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kAuto, true, 64, kBlock, 10, cheap_copies),
            PreemptAction::kSwap);
  // Even a partial block is worth swapping when copies are nearly free.
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kAuto, true, kBlock - 1, kBlock, 10, cheap_copies),
            PreemptAction::kSwap);
  // Slow copies (a slow link, fast compute): 8 x 0.1 s > 64 x 1 ms.
  const PreemptionCosts slow_copies{.compute_s_per_token = 1e-3, .copy_s_per_block = 0.1};
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kAuto, true, 64, kBlock, 10, slow_copies),
            PreemptAction::kRecompute);
  // kSwap and kRecompute ignore the costs; room still bounds a swap.
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kSwap, true, 64, kBlock, 10, slow_copies),
            PreemptAction::kSwap);
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kRecompute, true, 64, kBlock, 10, cheap_copies),
            PreemptAction::kRecompute);
  EXPECT_EQ(ChoosePreemption(PreemptionMode::kAuto, true, 64, kBlock, 3, cheap_copies),
            PreemptAction::kRecompute);
}

TEST(PreemptionCostModelTest, FitsComputeAndCopyCostsFromStepTimes) {
  PreemptionCostModel model;
  EXPECT_FALSE(model.costs().known());
  // Steps of a machine where a token costs 2 ms, a sequence 1 ms, a copy
  // 50 us and a step 3 ms of overhead; mixes of prefill, decode and moves.
  const auto step_s = [](int64_t tokens, int64_t seqs, int64_t moves) {
    return 2e-3 * static_cast<double>(tokens) + 1e-3 * static_cast<double>(seqs) +
           5e-5 * static_cast<double>(moves) + 3e-3;
  };
  for (int i = 0; i < 20; ++i) {
    const int64_t tokens = 64 + 37 * (i % 5);
    const int64_t seqs = 1 + i % 7;
    const int64_t moves = i % 2 == 0 ? 0 : 8 * (1 + i % 3);
    model.Observe(tokens, seqs, moves, step_s(tokens, seqs, moves));
    if (i < 2 * PreemptionCostModel::kMinMoveSteps - 1) {
      EXPECT_FALSE(model.costs().known());
    }
  }
  ASSERT_TRUE(model.costs().known());
  EXPECT_NEAR(model.costs().compute_s_per_token, 2e-3, 1e-6);
  EXPECT_NEAR(model.costs().copy_s_per_block, 5e-5, 1e-6);
  // Frozen clocks and empty steps teach nothing.
  const PreemptionCosts before = model.costs();
  model.Observe(1000, 1, 0, 0.0);
  model.Observe(0, 0, 0, 1.0);
  EXPECT_EQ(model.costs().compute_s_per_token, before.compute_s_per_token);
}

TEST(PreemptionCostModelTest, ObservesAPlansTokensSequencesAndMoves) {
  PreemptionCostModel model;
  engine::StepPlan plan;
  plan.sequences.resize(2);
  plan.sequences[0].token_ids.assign(100, 5);
  plan.sequences[1].token_ids.assign(1, 5);
  for (int i = 0; i < 12; ++i) {
    plan.block_moves.resize(static_cast<size_t>(i % 2 == 0 ? 0 : 4 + i));
    plan.sequences[0].token_ids.assign(static_cast<size_t>(50 + 10 * i), 5);
    const double tokens = 51 + 10 * i;
    model.ObserveStep(plan,
                      1e-3 * tokens + 1e-4 * static_cast<double>(plan.block_moves.size()) + 1e-3);
  }
  ASSERT_TRUE(model.costs().known());
  EXPECT_NEAR(model.costs().compute_s_per_token, 1e-3, 1e-6);
  EXPECT_NEAR(model.costs().copy_s_per_block, 1e-4, 1e-6);
}

TEST(PreemptionPolicyTest, RunningOrderPutsTheVictimLast) {
  // Higher priority first; among equals the earlier admission.
  EXPECT_TRUE(RunsBefore(1, 10, 0, 1));
  EXPECT_FALSE(RunsBefore(0, 1, 1, 10));
  EXPECT_TRUE(RunsBefore(0, 1, 0, 2));
  EXPECT_FALSE(RunsBefore(0, 2, 0, 1));
}

}  // namespace
}  // namespace strata::scheduler
