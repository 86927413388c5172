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

TEST(PreemptionPolicyTest, RunningOrderPutsTheVictimLast) {
  // Higher priority first; among equals the earlier admission.
  EXPECT_TRUE(RunsBefore(1, 10, 0, 1));
  EXPECT_FALSE(RunsBefore(0, 1, 1, 10));
  EXPECT_TRUE(RunsBefore(0, 1, 0, 2));
  EXPECT_FALSE(RunsBefore(0, 2, 0, 1));
}

}  // namespace
}  // namespace strata::scheduler
