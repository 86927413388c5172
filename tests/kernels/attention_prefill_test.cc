// Paged prefill attention (FlashAttention-2 style, bf16 tensor cores)
// against the CPU backend's attention on the same arena bytes: causal
// masks within a chunk and over earlier chunks' keys, variable lengths in
// one launch, GQA groups (including ones that split a 64-vector tile across
// tokens unevenly), every supported head_dim, tiles ordered longest first,
// and per-query positions (CacheBlend's kept tokens: arbitrary ascending
// positions, each with the exact causal mask of its own position).
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

// One sequence of a launch: its context [0, end) is in the arena, and it
// computes the queries at `positions` (ascending absolute positions).
struct QuerySpan {
  int end = 0;
  std::vector<int32_t> positions;
};

QuerySpan Contiguous(int start, int n) {
  QuerySpan span{start + n, {}};
  for (int t = 0; t < n; ++t) span.positions.push_back(start + t);
  return span;
}

// A CacheBlend-like selection of `end` positions: every `stride`-th one in
// [0, end - tail), then the last `tail` positions (the kept suffix).
QuerySpan Selected(int end, int stride, int tail) {
  QuerySpan span{end, {}};
  for (int p = 0; p < end - tail; p += stride) span.positions.push_back(p);
  for (int p = std::max(0, end - tail); p < end; ++p) span.positions.push_back(p);
  return span;
}

class PrefillAttentionTest : public ::testing::TestWithParam<PrefillCase> {
 protected:
  // Runs the kernel over `spans` in one launch and compares every query
  // vector with cpu::AttendTile over keys [0, position]. With
  // `per_query_positions` the kernel reads Params::positions (and the
  // sequences' start_position is set to a wrong value to prove it is
  // ignored); otherwise each span must be contiguous.
  void RunAndCompare(const std::vector<QuerySpan>& spans, bool per_query_positions) {
    const PrefillCase& c = GetParam();
    const int d = c.head_dim;
    const int group = c.heads / c.kv_heads;
    std::vector<PrefillSequence> sequences;
    std::vector<std::vector<int32_t>> tables;
    std::vector<int32_t> row_positions;
    int blocks = 0, rows = 0, stride = 0;
    for (const QuerySpan& span : spans) blocks += (span.end + c.block_size - 1) / c.block_size;
    TwinArena arena(c.kv_heads, d, c.block_size, blocks, 31);
    for (size_t s = 0; s < spans.size(); ++s) {
      const QuerySpan& span = spans[s];
      const int n = static_cast<int>(span.positions.size());
      tables.push_back(arena.NextTable((span.end + c.block_size - 1) / c.block_size));
      stride = std::max(stride, static_cast<int>(tables.back().size()));
      const int start = per_query_positions ? span.end + 12345 : span.positions[0];
      sequences.push_back({rows, n, start, static_cast<int32_t>(s)});
      row_positions.insert(row_positions.end(), span.positions.begin(), span.positions.end());
      rows += n;
    }
    std::vector<int32_t> flat(spans.size() * stride, 0);
    for (size_t s = 0; s < spans.size(); ++s) {
      std::copy(tables[s].begin(), tables[s].end(), flat.begin() + s * stride);
    }
    const std::vector<PrefillTile> tiles = per_query_positions
                                               ? MakePrefillTiles(sequences, group, row_positions)
                                               : MakePrefillTiles(sequences, group);
    const int q_stride = (c.heads + 2 * c.kv_heads) * d;
    const std::vector<float> q = testing::RandomNormal(rows * q_stride, 32);
    DeviceArray<float> d_q(q);
    DeviceArray<int32_t> d_tables(flat);
    DeviceArray<int32_t> d_positions(row_positions);
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
    p.positions = per_query_positions ? d_positions.get() : nullptr;
    ExpectRan(LaunchPrefillAttention(p, nullptr));
    const std::vector<float> out = testing::FromBf16(d_out.Download());
    std::vector<float> expected_all, got_all;
    for (size_t s = 0; s < spans.size(); ++s) {
      for (size_t t = 0; t < spans[s].positions.size(); ++t) {
        const int row = sequences[s].first_row + static_cast<int>(t);
        const int position = spans[s].positions[t];
        for (int h = 0; h < c.heads; ++h) {
          const std::vector<float> expected = arena.Reference(
              q.data() + row * q_stride + h * d, position + 1, h / group, tables[s], scale);
          const float* got = out.data() + (row * c.heads + h) * d;
          for (int j = 0; j < d; ++j) {
            // Q and P enter the tensor cores as bf16: a few 1e-3 relative.
            ASSERT_NEAR(got[j], expected[j], 2e-2f + 2e-2f * std::fabs(expected[j]))
                << "sequence " << s << " query " << t << " (position " << position << ") head " << h
                << " dim " << j;
          }
          expected_all.insert(expected_all.end(), expected.begin(), expected.end());
          got_all.insert(got_all.end(), got, got + d);
        }
      }
    }
    EXPECT_LT(testing::RelativeError(got_all, expected_all), 1e-2);
  }
};

TEST_P(PrefillAttentionTest, MatchesCpu) {
  // (start position, tokens): whole prompts and later chunks of longer ones.
  RunAndCompare({Contiguous(0, 100), Contiguous(37, 64), Contiguous(1000, 130), Contiguous(5, 2),
                 Contiguous(0, 1), Contiguous(200, 300)},
                /*per_query_positions=*/false);
}

// The same rows given as explicit positions: the same results.
TEST_P(PrefillAttentionTest, ExplicitContiguousPositionsMatchCpu) {
  RunAndCompare({Contiguous(0, 100), Contiguous(37, 64), Contiguous(5, 2)},
                /*per_query_positions=*/true);
}

// CacheBlend after a check layer: sparse ascending positions per sequence,
// gaps wider than a key tile, a lone kept query, and the full suffix.
TEST_P(PrefillAttentionTest, SelectedPositionsMatchCpu) {
  RunAndCompare({Selected(700, 7, 20), Selected(300, 97, 1), Selected(130, 1, 0),
                 QuerySpan{900, {899}}, QuerySpan{66, {0, 1, 63, 64, 65}}},
                /*per_query_positions=*/true);
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

TEST(PrefillTilesTest, RowPositionsOrderTilesByTheirLastPosition) {
  // Sequence 0: 3 rows at positions 5, 900, 901; sequence 1: 2 rows at 10, 20.
  const std::vector<PrefillSequence> sequences = {{0, 3, 0, 0}, {3, 2, 0, 1}};
  const std::vector<int32_t> positions = {5, 900, 901, 10, 20};
  const std::vector<PrefillTile> tiles = MakePrefillTiles(sequences, 1, positions);
  ASSERT_EQ(tiles.size(), 2u);
  EXPECT_EQ(tiles[0].sequence, 0);
  EXPECT_EQ(tiles[1].sequence, 1);
  // Without positions both would count from start_position 0: 3 keys vs 2.
  const std::vector<PrefillTile> plain = MakePrefillTiles({{0, 2, 0, 0}, {2, 3, 0, 1}}, 1);
  EXPECT_EQ(plain[0].sequence, 1);
}

}  // namespace
}  // namespace strata::kernels
