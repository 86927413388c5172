// Paged prefill attention (FlashAttention-2 style, bf16 tensor cores)
// against the CPU backend's attention on the same arena bytes: causal
// masks within a chunk and over earlier chunks' keys, variable lengths in
// one launch, GQA groups (including ones that split a 64-vector tile across
// tokens unevenly), every supported head_dim, and tiles ordered longest
// first.
#include "kernels/attention_prefill.h"

#include <cmath>

#include "tests/kernels/attention_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;
using testing::TwinArena;

struct PrefillCase {
  int head_dim;
  int heads;
  int kv_heads;
  int block_size;
};

class PrefillAttentionTest : public ::testing::TestWithParam<PrefillCase> {};

TEST_P(PrefillAttentionTest, MatchesCpu) {
  const PrefillCase& c = GetParam();
  const int d = c.head_dim;
  const int group = c.heads / c.kv_heads;
  // (start position, tokens): whole prompts and later chunks of longer ones.
  const std::vector<std::pair<int, int>> spans = {{0, 100}, {37, 64}, {1000, 130},
                                                  {5, 2},   {0, 1},   {200, 300}};
  std::vector<PrefillSequence> sequences;
  std::vector<std::vector<int32_t>> tables;
  int blocks = 0, rows = 0, stride = 0;
  for (const auto& [start, n] : spans) blocks += (start + n + c.block_size - 1) / c.block_size;
  TwinArena arena(c.kv_heads, d, c.block_size, blocks, 31);
  for (size_t s = 0; s < spans.size(); ++s) {
    const auto [start, n] = spans[s];
    tables.push_back(arena.NextTable((start + n + c.block_size - 1) / c.block_size));
    stride = std::max(stride, static_cast<int>(tables.back().size()));
    sequences.push_back({rows, n, start, static_cast<int32_t>(s)});
    rows += n;
  }
  std::vector<int32_t> flat(spans.size() * stride, 0);
  for (size_t s = 0; s < spans.size(); ++s) {
    std::copy(tables[s].begin(), tables[s].end(), flat.begin() + s * stride);
  }
  const std::vector<PrefillTile> tiles = MakePrefillTiles(sequences, group);
  const int q_stride = (c.heads + 2 * c.kv_heads) * d;
  const std::vector<float> q = testing::RandomNormal(rows * q_stride, 32);
  DeviceArray<float> d_q(q);
  DeviceArray<int32_t> d_tables(flat);
  DeviceArray<PrefillSequence> d_sequences(sequences);
  DeviceArray<PrefillTile> d_tiles(tiles);
  DeviceArray<uint16_t> d_out(rows * c.heads * d);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  PrefillAttentionParams p;
  p.kv = arena.view();
  p.layer = TwinArena::kLayer;
  p.q = d_q.get();
  p.q_row_stride = q_stride;
  p.out = reinterpret_cast<__nv_bfloat16*>(d_out.get());
  p.out_row_stride = c.heads * d;
  p.sequences = d_sequences.get();
  p.tiles = d_tiles.get();
  p.tables = {d_tables.get(), stride};
  p.num_tiles = static_cast<int>(tiles.size());
  p.num_heads = c.heads;
  p.scale = scale;
  ExpectRan(LaunchPrefillAttention(p, nullptr));
  const std::vector<float> out = testing::FromBf16(d_out.Download());
  std::vector<float> expected_all, got_all;
  for (size_t s = 0; s < spans.size(); ++s) {
    const auto [start, n] = spans[s];
    for (int t = 0; t < n; ++t) {
      const int row = sequences[s].first_row + t;
      for (int h = 0; h < c.heads; ++h) {
        const std::vector<float> expected = arena.Reference(
            q.data() + row * q_stride + h * d, start + t + 1, h / group, tables[s], scale);
        const float* got = out.data() + (row * c.heads + h) * d;
        for (int j = 0; j < d; ++j) {
          // Q and P enter the tensor cores as bf16: a few 1e-3 relative.
          ASSERT_NEAR(got[j], expected[j], 2e-2f + 2e-2f * std::fabs(expected[j]))
              << "sequence " << s << " token " << t << " head " << h << " dim " << j;
        }
        expected_all.insert(expected_all.end(), expected.begin(), expected.end());
        got_all.insert(got_all.end(), got, got + d);
      }
    }
  }
  EXPECT_LT(testing::RelativeError(got_all, expected_all), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(Shapes, PrefillAttentionTest,
                         ::testing::Values(PrefillCase{16, 4, 4, 16}, PrefillCase{32, 4, 2, 16},
                                           PrefillCase{64, 12, 4, 16}, PrefillCase{64, 7, 1, 8},
                                           PrefillCase{128, 32, 8, 16},
                                           PrefillCase{128, 4, 4, 32}));

TEST(PrefillTilesTest, CoverEveryVectorOnceLongestFirst) {
  const std::vector<PrefillSequence> sequences = {{0, 10, 0, 0}, {10, 100, 500, 1}, {110, 3, 7, 2}};
  const int group = 4;
  const std::vector<PrefillTile> tiles = MakePrefillTiles(sequences, group);
  std::vector<int> covered(3, 0);
  int64_t previous_keys = INT64_MAX;
  for (const PrefillTile& tile : tiles) {
    const PrefillSequence& s = sequences[tile.sequence];
    const int vectors = s.num_tokens * group;
    const int last = std::min(tile.first_vector + kPrefillTileVectors, vectors) - 1;
    covered[tile.sequence] += last - tile.first_vector + 1;
    const int64_t keys = s.start_position + last / group + 1;
    EXPECT_LE(keys, previous_keys);
    previous_keys = keys;
  }
  EXPECT_EQ(covered, (std::vector<int>{40, 400, 12}));
}

}  // namespace
}  // namespace strata::kernels
