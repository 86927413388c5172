#include "engine/step_validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::engine {
namespace {

using ::testing::HasSubstr;

constexpr StepLimits kLimits{.vocab_size = 50,
                             .max_position_embeddings = 64,
                             .num_layers = 2,
                             .block_size = 4,
                             .num_blocks = 8};

SequenceStep Step(SequenceId id, int64_t start, std::vector<TokenId> tokens,
                  std::vector<BlockId> table) {
  SequenceStep step;
  step.seq_id = id;
  step.start_position = start;
  step.token_ids = std::move(tokens);
  step.block_table = std::move(table);
  return step;
}

std::string Error(const StepPlan& plan) {
  return std::string(ValidateStepPlan(plan, kLimits).message());
}

TEST(StepValidationTest, AcceptsAWellFormedPlan) {
  StepPlan plan;
  plan.sequences.push_back(Step(1, 0, {3, 4, 5, 6, 7}, {0, 1}));
  plan.sequences.push_back(Step(2, 9, {8}, {2, 3, 4}));
  EXPECT_TRUE(ValidateStepPlan(plan, kLimits).ok());
}

TEST(StepValidationTest, NamesTheSequenceAndTheFault) {
  StepPlan twice;
  twice.sequences = {Step(1, 0, {3}, {0}), Step(1, 1, {4}, {0})};
  EXPECT_EQ(Error(twice), "sequence 1: appears more than once in the plan");
  StepPlan empty;
  empty.sequences = {Step(2, 0, {}, {0})};
  EXPECT_THAT(Error(empty), HasSubstr("sequence 2: no tokens to compute"));
  StepPlan vocab;
  vocab.sequences = {Step(3, 0, {3, 50}, {0})};
  EXPECT_THAT(Error(vocab), HasSubstr("token id 50 at index 1 is outside the vocabulary of 50"));
  StepPlan context;
  context.sequences = {Step(4, 63, {3, 4}, {0, 1, 2, 3, 4, 5, 6, 7})};
  EXPECT_THAT(Error(context), HasSubstr("position 64 is beyond the model's maximum context"));
  StepPlan table;
  table.sequences = {Step(5, 0, {3, 4, 5, 6, 7}, {0})};
  EXPECT_THAT(Error(table), HasSubstr("needs 2 blocks of 4 tokens but the block table has 1"));
  StepPlan arena;
  arena.sequences = {Step(6, 0, {3}, {8})};
  EXPECT_THAT(Error(arena), HasSubstr("block id 8 at table index 0 is outside the arena"));
  StepPlan sampling;
  sampling.sequences = {Step(7, 0, {3}, {0})};
  sampling.sequences[0].sample = true;
  sampling.sequences[0].sampling.temperature = -1;
  EXPECT_FALSE(ValidateStepPlan(sampling, kLimits).ok());
}

}  // namespace
}  // namespace strata::engine
