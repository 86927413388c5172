// The host side of a CacheBlend step on the CUDA backend
// (engine/cuda/blend_layout.h): the placement arrays, the rows a forward
// pass computes, the gradual selection at check layers with the CPU's rules
// (kept count from the ratio, most deviating first, ties to the lower
// index), naive concatenation without check layers, and the outcome counts.
// Host-only logic, run with the gpu tests.
#include "engine/cuda/blend_layout.h"

#include "gtest/gtest.h"

namespace strata::engine::cuda {
namespace {

// Span [start, start + n) of token ids 100 + position, blocks 0.. of 4 tokens.
SequenceStep Seq(SequenceId id, int64_t start, int64_t n) {
  SequenceStep s;
  s.seq_id = id;
  s.start_position = start;
  for (int64_t p = start; p < start + n; ++p) s.token_ids.push_back(static_cast<TokenId>(100 + p));
  for (BlockId b = 0; b < (start + n + 3) / 4; ++b) s.block_table.push_back(b);
  s.sample = true;
  return s;
}

std::vector<int32_t> Positions(const BlendRows& rows) {
  std::vector<int32_t> out;
  for (const StepRow& row : rows.rows()) out.push_back(row.position);
  return out;
}

// Chunks [3, 9) from blocks 10, 11 and [12, 14) from block 12 in [0, 20).
StepPlan TwoChunkPlan(std::vector<int32_t> check_layers, float ratio) {
  StepPlan plan;
  plan.sequences.push_back(Seq(1, 0, 20));
  BlendSpec spec;
  spec.chunks.push_back({.blocks = {10, 11}, .length = 6, .position = 3});
  spec.chunks.push_back({.blocks = {12}, .length = 2, .position = 12});
  spec.check_layers = std::move(check_layers);
  spec.recompute_ratio = ratio;
  plan.sequences[0].blend = spec;
  return plan;
}

TEST(BlendLayoutTest, PlacementListsEveryChunkToken) {
  const BlendPlacement p = BuildBlendPlacement(TwoChunkPlan({1}, 0.25f), 4);
  EXPECT_EQ(p.src_slots, (std::vector<int32_t>{40, 41, 42, 43, 44, 45, 48, 49}));
  EXPECT_EQ(p.dst_slots, (std::vector<int32_t>{3, 4, 5, 6, 7, 8, 12, 13}));
  EXPECT_EQ(p.from_positions, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 0, 1}));
  EXPECT_EQ(p.to_positions, (std::vector<int32_t>{3, 4, 5, 6, 7, 8, 12, 13}));
}

TEST(BlendLayoutTest, GradualSelectionKeepsTheMostDeviating) {
  const StepPlan plan = TwoChunkPlan({1, 3}, 0.25f);
  BlendRows rows(plan);
  EXPECT_EQ(rows.rows().size(), 20u);
  EXPECT_TRUE(rows.Candidates(0).empty());
  EXPECT_EQ(rows.Select(0, {}).size(), 20u);
  EXPECT_EQ(rows.Candidates(1), (std::vector<int32_t>{3, 4, 5, 6, 7, 8, 12, 13}));
  // First check: min(1, 2 r) = 0.5 of 8 chunk tokens = 4; the tie of 9s
  // and the order of the rest by deviation.
  const std::vector<int32_t> kept = rows.Select(1, {1, 9, 3, 9, 0, 5, 7, 2});
  EXPECT_EQ(kept, (std::vector<int32_t>{0, 1, 2, 4, 6, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(Positions(rows),
            (std::vector<int32_t>{0, 1, 2, 4, 6, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19}));
  EXPECT_TRUE(rows.Candidates(2).empty());
  EXPECT_EQ(rows.Select(2, {}).size(), 16u);
  // Last check: r = 0.25 of 8 = 2 among positions 4, 6, 8, 12.
  EXPECT_EQ(rows.Candidates(3), (std::vector<int32_t>{3, 4, 5, 9}));
  rows.Select(3, {1, 4, 2, 3});
  EXPECT_EQ(Positions(rows),
            (std::vector<int32_t>{0, 1, 2, 6, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19}));
  EXPECT_TRUE(rows.Candidates(4).empty());
  const std::vector<BlendOutcomeCounts> outcomes = rows.Outcomes();
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].recomputed_tokens, 2);
  EXPECT_EQ(outcomes[0].reused_tokens, 6);
}

TEST(BlendLayoutTest, RatioOneKeepsEveryToken) {
  const StepPlan plan = TwoChunkPlan({0}, 1.0f);
  BlendRows rows(plan);
  EXPECT_EQ(rows.Select(0, std::vector<double>(8, 0.0)).size(), 20u);
  EXPECT_EQ(rows.Outcomes()[0].recomputed_tokens, 8);
  EXPECT_EQ(rows.Outcomes()[0].reused_tokens, 0);
}

// Without check layers chunk tokens are never computed, except the span's
// last token (its logits are the output); a plain sequence beside it keeps
// every row and reports no blend.
TEST(BlendLayoutTest, NoCheckLayersDropsChunkTokensUpFront) {
  StepPlan plan;
  plan.sequences.push_back(Seq(1, 10, 10));
  BlendSpec spec;
  spec.chunks.push_back({.blocks = {20, 21}, .length = 5, .position = 15});
  plan.sequences[0].blend = spec;
  plan.sequences.push_back(Seq(2, 4, 3));
  BlendRows rows(plan);
  EXPECT_EQ(Positions(rows), (std::vector<int32_t>{10, 11, 12, 13, 14, 19, 4, 5, 6}));
  EXPECT_EQ(rows.rows()[6].sequence, 1);
  EXPECT_TRUE(rows.Candidates(0).empty());
  const std::vector<BlendOutcomeCounts> outcomes = rows.Outcomes();
  EXPECT_EQ(outcomes[0].recomputed_tokens, 1);
  EXPECT_EQ(outcomes[0].reused_tokens, 4);
  EXPECT_EQ(outcomes[1].recomputed_tokens, 0);
  EXPECT_EQ(outcomes[1].reused_tokens, 0);
}

}  // namespace
}  // namespace strata::engine::cuda
