// What the CUDA backend refuses before running anything
// (engine/cuda/plan_support.h): CacheBlend steps, with UNIMPLEMENTED naming
// the sequence. Host-only logic, run with the gpu tests.
#include "engine/cuda/plan_support.h"

#include "gtest/gtest.h"

namespace strata::engine::cuda {
namespace {

SequenceStep Seq(SequenceId id) {
  SequenceStep s;
  s.seq_id = id;
  s.token_ids = {1, 2, 3};
  s.block_table = {0};
  return s;
}

TEST(PlanSupportTest, PlainStepsAreSupported) {
  StepPlan plan;
  EXPECT_TRUE(CheckPlanSupported(plan).ok());
  plan.sequences = {Seq(1), Seq(2)};
  EXPECT_TRUE(CheckPlanSupported(plan).ok());
}

TEST(PlanSupportTest, BlendStepsAreRefusedNamingTheSequence) {
  StepPlan plan;
  plan.sequences = {Seq(1), Seq(42)};
  BlendSpec spec;
  spec.chunks.push_back({{3}, 2, 0});
  spec.check_layers = {1};
  plan.sequences[1].blend = spec;
  const absl::Status status = CheckPlanSupported(plan);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(status.message(), "sequence 42: CacheBlend steps run on the CPU backend only for now");
}

}  // namespace
}  // namespace strata::engine::cuda
