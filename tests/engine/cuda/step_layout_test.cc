// How a StepPlan becomes kernel arrays (engine/cuda/step_layout.h): rows,
// slots through block tables, decode queries before prefill sequences in
// the tables, logit rows, graph padding into the scratch block, and the
// packed layout's alignment. Host-only logic, run with the gpu tests.
#include "engine/cuda/step_layout.h"

#include <cstring>

#include "gtest/gtest.h"

namespace strata::engine::cuda {
namespace {

SequenceStep Seq(SequenceId id, std::vector<TokenId> tokens, int64_t start,
                 std::vector<BlockId> table, bool sample, bool logits) {
  SequenceStep s;
  s.seq_id = id;
  s.token_ids = std::move(tokens);
  s.start_position = start;
  s.block_table = std::move(table);
  s.sample = sample;
  s.return_logits = logits;
  return s;
}

TEST(StepLayoutTest, MixedStep) {
  StepPlan plan;
  plan.sequences.push_back(Seq(1, {5, 6, 7}, 3, {9}, true, false));  // prefill, positions 3..5
  plan.sequences.push_back(Seq(2, {8}, 20, {4, 2}, true, true));     // decode at 20
  plan.sequences.push_back(Seq(3, {1, 2}, 0, {7}, false, true));     // prefill, logits only
  const StepShape shape{16, 4, 99};
  const HostStep step = BuildHostStep(plan, shape);
  EXPECT_EQ(step.rows, 6);
  EXPECT_EQ(step.token_ids, (std::vector<int32_t>{5, 6, 7, 8, 1, 2}));
  EXPECT_EQ(step.positions, (std::vector<int32_t>{3, 4, 5, 20, 0, 1}));
  EXPECT_EQ(step.slots, (std::vector<int32_t>{9 * 16 + 3, 9 * 16 + 4, 9 * 16 + 5, 2 * 16 + 4,
                                              7 * 16, 7 * 16 + 1}));
  EXPECT_EQ(step.decode_rows, (std::vector<int32_t>{3}));
  EXPECT_EQ(step.decode_context, (std::vector<int32_t>{21}));
  EXPECT_EQ(step.max_context, 21);
  ASSERT_EQ(step.prefill.size(), 2u);
  EXPECT_EQ(step.prefill[0].first_row, 0);
  EXPECT_EQ(step.prefill[0].start_position, 3);
  EXPECT_EQ(step.prefill[0].table, 1);  // after the one decode query
  EXPECT_EQ(step.prefill[1].first_row, 4);
  EXPECT_EQ(step.prefill[1].table, 2);
  EXPECT_EQ(step.table_stride, 2);
  EXPECT_EQ(step.tables, (std::vector<int32_t>{4, 2, 9, 99, 7, 99}));
  // Sampled-only sequences give their last row; return_logits gives all.
  EXPECT_EQ(step.logit_rows, (std::vector<int32_t>{2, 3, 4, 5}));
  EXPECT_EQ(step.first_logit, (std::vector<int>{0, 1, 2}));
  const PackedLayout layout = LayoutOf(step);
  for (size_t offset :
       {layout.positions, layout.slots, layout.decode_rows, layout.tables, layout.logit_rows}) {
    EXPECT_EQ(offset % 256, 0u);
  }
  std::vector<std::byte> packed(layout.bytes);
  PackHostStep(step, layout, packed.data());
  int32_t slot = 0;
  std::memcpy(&slot, packed.data() + layout.slots + 3 * 4, 4);
  EXPECT_EQ(slot, 2 * 16 + 4);
}

TEST(StepLayoutTest, GraphStepIsPaddedIntoTheScratchBlock) {
  StepPlan plan;
  plan.sequences.push_back(Seq(1, {5}, 17, {3, 8}, true, false));
  plan.sequences.push_back(Seq(2, {6}, 0, {1}, false, false));
  plan.sequences.push_back(Seq(3, {7}, 40, {2, 4, 6}, true, true));
  ASSERT_TRUE(IsDecodeOnly(plan));
  const HostStep step = BuildHostStep(plan, {16, 1, 50}, 4, 4);
  EXPECT_EQ(step.rows, 4);
  EXPECT_EQ(step.token_ids, (std::vector<int32_t>{5, 6, 7, 0}));
  EXPECT_EQ(step.slots.back(), 50 * 16);
  EXPECT_EQ(step.decode_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(step.decode_context, (std::vector<int32_t>{18, 1, 41, 1}));
  EXPECT_EQ(step.table_stride, 4);
  EXPECT_EQ(step.tables,
            (std::vector<int32_t>{3, 8, 50, 50, 1, 50, 50, 50, 2, 4, 6, 50, 50, 50, 50, 50}));
  EXPECT_EQ(step.logit_rows, (std::vector<int32_t>{0, 1, 2, 3}));
  EXPECT_EQ(step.first_logit, (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(step.tiles.empty());
  // The layout depends only on the bucket and the table width.
  StepPlan other;
  other.sequences.push_back(Seq(9, {1}, 3, {0}, true, false));
  const PackedLayout a = LayoutOf(step);
  const PackedLayout b = LayoutOf(BuildHostStep(other, {16, 1, 50}, 4, 4));
  EXPECT_EQ(a.bytes, b.bytes);
  EXPECT_EQ(a.tables, b.tables);
  EXPECT_EQ(a.logit_rows, b.logit_rows);
}

// A blend sequence after a selection kept positions 1, 5, 6 and 9 of its
// span [0, 10), batched with a plain prefill that wants every row's logits.
TEST(StepLayoutTest, RowsStepCarriesPerRowPositions) {
  StepPlan plan;
  plan.sequences.push_back(Seq(1, {10, 11, 12, 13, 14, 15, 16, 17, 18, 19}, 0, {3, 1}, true, true));
  plan.sequences[0].blend.emplace();
  plan.sequences.push_back(Seq(2, {5, 6}, 16, {7, 8, 4}, false, true));  // positions 16, 17
  const std::vector<StepRow> rows = {{0, 1}, {0, 5}, {0, 6}, {0, 9}, {1, 16}, {1, 17}};
  const StepShape shape{8, 2, 99};
  const HostStep step = BuildRowsStep(plan, rows, shape);
  EXPECT_TRUE(step.row_positions);
  EXPECT_EQ(step.rows, 6);
  EXPECT_EQ(step.token_ids, (std::vector<int32_t>{11, 15, 16, 19, 5, 6}));
  EXPECT_EQ(step.positions, (std::vector<int32_t>{1, 5, 6, 9, 16, 17}));
  EXPECT_EQ(step.slots,
            (std::vector<int32_t>{3 * 8 + 1, 3 * 8 + 5, 3 * 8 + 6, 1 * 8 + 1, 4 * 8, 4 * 8 + 1}));
  EXPECT_TRUE(step.decode_rows.empty());
  ASSERT_EQ(step.prefill.size(), 2u);
  EXPECT_EQ(step.prefill[0].first_row, 0);
  EXPECT_EQ(step.prefill[0].num_tokens, 4);
  EXPECT_EQ(step.prefill[1].first_row, 4);
  EXPECT_EQ(step.prefill[1].num_tokens, 2);
  // Position 9 needs two blocks, position 17 three; the rest is scratch.
  EXPECT_EQ(step.table_stride, 3);
  EXPECT_EQ(step.tables, (std::vector<int32_t>{3, 1, 99, 7, 8, 4}));
  // The blend sequence: its last row only; the plain one: every row.
  EXPECT_EQ(step.logit_rows, (std::vector<int32_t>{3, 4, 5}));
  EXPECT_EQ(step.first_logit, (std::vector<int>{0, 1}));
  EXPECT_EQ(step.logit_count, (std::vector<int>{1, 2}));
  // Tiles by the last row's position: the plain sequence (17) first.
  ASSERT_EQ(step.tiles.size(), 2u);
  EXPECT_EQ(step.tiles[0].sequence, 1);
}

}  // namespace
}  // namespace strata::engine::cuda
