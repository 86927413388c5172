// Split-K paged decode attention against the CPU backend's attention on the
// same arena bytes: every supported head_dim, MHA / GQA / groups wider than
// one block's eight heads, contexts from one key to several thousand, and
// partition counts from 1 to 32 (the result must not depend on the split).
#include "kernels/attention_decode.h"

#include <cmath>

#include "tests/kernels/attention_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;
using testing::TwinArena;

struct DecodeCase {
  int head_dim;
  int heads;
  int kv_heads;
  int block_size;
};

class DecodeAttentionTest : public ::testing::TestWithParam<DecodeCase> {};

TEST_P(DecodeAttentionTest, MatchesCpuForEveryPartitionCount) {
  const DecodeCase& c = GetParam();
  const int d = c.head_dim;
  const std::vector<int> contexts = {1, 5, 256, 257, 1000, 3001};
  int blocks = 0;
  for (int ctx : contexts) blocks += (ctx + c.block_size - 1) / c.block_size;
  TwinArena arena(c.kv_heads, d, c.block_size, blocks, 21);
  const int queries = static_cast<int>(contexts.size());
  // Query i sits in batch row rows[i] of a batch with one extra row.
  const int batch = queries + 1;
  std::vector<int32_t> rows(queries);
  for (int i = 0; i < queries; ++i) rows[i] = (i * 5 + 1) % batch;
  const int q_stride = (c.heads + 2 * c.kv_heads) * d;
  const std::vector<float> q = testing::RandomNormal(batch * q_stride, 22);
  int stride = 0;
  std::vector<std::vector<int32_t>> tables;
  for (int ctx : contexts) {
    tables.push_back(arena.NextTable((ctx + c.block_size - 1) / c.block_size));
    stride = std::max(stride, static_cast<int>(tables.back().size()));
  }
  std::vector<int32_t> flat(queries * stride, 0);
  for (int i = 0; i < queries; ++i)
    std::copy(tables[i].begin(), tables[i].end(), flat.begin() + i * stride);
  DeviceArray<float> d_q(q);
  DeviceArray<int32_t> d_rows(rows), d_ctx(contexts), d_tables(flat);
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  for (int partitions : {1, 3, 32}) {
    DeviceArray<uint16_t> d_out(batch * c.heads * d);
    DeviceArray<float> d_ws(DecodeAttentionWorkspaceBytes(queries, c.heads, d, partitions) / 4);
    DecodeAttentionParams p;
    p.kv = arena.view();
    p.layer = TwinArena::kLayer;
    p.q = d_q.get();
    p.q_row_stride = q_stride;
    p.out = reinterpret_cast<__nv_bfloat16*>(d_out.get());
    p.out_row_stride = c.heads * d;
    p.rows = d_rows.get();
    p.context_lens = d_ctx.get();
    p.tables = {d_tables.get(), stride};
    p.num_queries = queries;
    p.num_heads = c.heads;
    p.scale = scale;
    p.num_partitions = partitions;
    p.workspace = d_ws.get();
    ExpectRan(LaunchDecodeAttention(p, nullptr));
    const std::vector<float> out = testing::FromBf16(d_out.Download());
    const int group = c.heads / c.kv_heads;
    for (int i = 0; i < queries; ++i) {
      for (int h = 0; h < c.heads; ++h) {
        const std::vector<float> expected = arena.Reference(
            q.data() + rows[i] * q_stride + h * d, contexts[i], h / group, tables[i], scale);
        const float* got = out.data() + (rows[i] * c.heads + h) * d;
        for (int j = 0; j < d; ++j) {
          ASSERT_NEAR(got[j], expected[j], 4e-3f + 8e-3f * std::fabs(expected[j]))
              << "partitions " << partitions << " query " << i << " (context " << contexts[i]
              << ") head " << h << " dim " << j;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, DecodeAttentionTest,
                         ::testing::Values(DecodeCase{16, 4, 4, 16}, DecodeCase{32, 8, 2, 16},
                                           DecodeCase{64, 12, 1, 32}, DecodeCase{64, 4, 2, 8},
                                           DecodeCase{128, 32, 8, 16}, DecodeCase{128, 8, 8, 16}));

TEST(DecodePartitionsTest, FillsTheDeviceWithoutSplittingPastTheContext) {
  EXPECT_EQ(DecodePartitions(1, 8, 100, 132, 32), 1);     // one chunk: no split
  EXPECT_EQ(DecodePartitions(1, 8, 8192, 132, 32), 32);   // 32 chunks, few blocks: split all
  EXPECT_EQ(DecodePartitions(128, 8, 8192, 132, 32), 1);  // 1024 blocks fill 132 SMs already
  EXPECT_GE(DecodePartitions(4, 8, 4096, 132, 32), 8);
}

}  // namespace
}  // namespace strata::kernels
