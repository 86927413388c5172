// CacheBlend's kernels against the CPU reference (engine/cpu/kv_blend.h) on
// the same arena bytes: chunk placement with K re-rotation (several chunks
// of several sequences in one launch, block-aligned or not, zero delta as a
// bit copy, every byte outside the destination slots untouched), the K/V
// deviation (against cpu::KvDeviation, deterministic across runs, and the
// same selection through cpu::SelectMostDeviating), and the row gather.
#include "kernels/blend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cpu/decoder.h"
#include "engine/cpu/kv_arena.h"
#include "engine/cpu/kv_blend.h"
#include "engine/cpu/thread_pool.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;

struct BlendCase {
  int head_dim;
  int kv_heads;
  int block_size;
  engine::RopeType rope;
};

engine::ModelConfig RopeConfig(const BlendCase& c) {
  engine::ModelConfig config;
  config.head_dim = c.head_dim;
  config.rope_theta = 500000.0;
  config.rope_scaling.type = c.rope;
  config.rope_scaling.factor = 8.0;
  config.rope_scaling.original_max_position_embeddings = 8192;
  return config;
}

// A bf16 CPU arena of random bytes and its device twin.
class Arenas {
 public:
  static constexpr int kLayers = 3;

  Arenas(const BlendCase& c, int blocks, uint32_t seed)
      : spec_{kLayers, c.kv_heads, c.head_dim, c.block_size, engine::DType::kBF16} {
    auto arena = engine::cpu::KvArena::Create(spec_, blocks);
    CHECK(arena.ok());
    cpu_ = *std::move(arena);
    const size_t bytes = static_cast<size_t>(spec_.BytesPerBlock()) * blocks;
    const std::vector<uint16_t> bits = testing::ToBf16(testing::RandomNormal(bytes / 2, seed));
    // The device holds token rows; the CPU arena its own layout of them.
    for (int b = 0; b < blocks; ++b) {
      cpu_->ImportRows(b, reinterpret_cast<const std::byte*>(bits.data()) +
                              static_cast<size_t>(b) * spec_.BytesPerBlock());
    }
    device_ = std::make_unique<DeviceArray<uint16_t>>(bits);
  }

  engine::cpu::KvArena& cpu() { return *cpu_; }
  std::vector<uint16_t> CpuBits() const {
    std::vector<uint16_t> bits(device_->size());
    const int64_t block_elements = spec_.BytesPerBlock() / 2;
    for (int64_t b = 0; b < cpu_->num_blocks(); ++b) {
      cpu_->ExportRows(b, reinterpret_cast<std::byte*>(bits.data() + b * block_elements));
    }
    return bits;
  }
  std::vector<uint16_t> DeviceBits() const { return device_->Download(); }

  PagedKv view() const {
    PagedKv kv;
    kv.data = reinterpret_cast<__nv_bfloat16*>(device_->get());
    kv.block_elements = spec_.BytesPerBlock() / 2;
    kv.num_layers = kLayers;
    kv.num_kv_heads = static_cast<int>(spec_.num_kv_heads);
    kv.block_size = static_cast<int>(spec_.block_size);
    kv.head_dim = static_cast<int>(spec_.head_dim);
    return kv;
  }

 private:
  engine::KvCacheSpec spec_;
  std::unique_ptr<engine::cpu::KvArena> cpu_;
  std::unique_ptr<DeviceArray<uint16_t>> device_;
};

class BlendKernelTest : public ::testing::TestWithParam<BlendCase> {};

// Chunks of two sequences: one at position 0 (bit copy), one block-aligned,
// one mid-block with a partial last block, one far out (large angles).
TEST_P(BlendKernelTest, PlaceMatchesCpuPlaceChunk) {
  const BlendCase& c = GetParam();
  const int bs = c.block_size;
  struct Placement {
    int sequence;
    int length;
    int position;
  };
  const std::vector<Placement> placements = {
      {0, bs + 3, 0}, {0, 2 * bs, 2 * bs}, {0, 5, 4 * bs + 1}, {1, bs - 1, 7}, {1, 3 * bs, 90000}};
  const std::vector<int> sequence_tokens = {5 * bs, 90000 + 3 * bs + 1};
  // Each chunk's own blocks, the blocks its placement lands in, and one
  // filler block that the tables name for positions no chunk covers (so
  // the far position needs no arena of 90000 tokens).
  int blocks = 1;
  for (const Placement& p : placements) {
    blocks += (p.length + bs - 1) / bs + (p.position % bs + p.length + bs - 1) / bs;
  }
  Arenas arenas(c, blocks, 5);
  std::vector<int32_t> order(static_cast<size_t>(blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(6));
  size_t next = 0;
  const auto take = [&](int count) {
    std::vector<int32_t> ids(order.begin() + next, order.begin() + next + count);
    next += count;
    return ids;
  };
  const int32_t filler = take(1)[0];
  std::vector<std::vector<int32_t>> tables;
  for (int n : sequence_tokens) tables.emplace_back((n + bs - 1) / bs, filler);
  for (const Placement& p : placements) {
    std::vector<int32_t>& table = tables[static_cast<size_t>(p.sequence)];
    for (int b = p.position / bs; b <= (p.position + p.length - 1) / bs; ++b) {
      if (table[static_cast<size_t>(b)] == filler) table[static_cast<size_t>(b)] = take(1)[0];
    }
  }
  const std::vector<float> inv = engine::cpu::RopeInverseFrequencies(RopeConfig(c));
  engine::cpu::ThreadPool pool(2);
  std::vector<int32_t> src_slots, dst_slots, from, to;
  for (const Placement& p : placements) {
    engine::BlendChunk chunk;
    chunk.blocks = take((p.length + bs - 1) / bs);
    chunk.length = p.length;
    chunk.position = p.position;
    const std::vector<int32_t>& table = tables[static_cast<size_t>(p.sequence)];
    engine::cpu::PlaceChunk(chunk, table, inv, arenas.cpu(), pool);
    for (int t = 0; t < p.length; ++t) {
      const int pos = p.position + t;
      src_slots.push_back(chunk.blocks[static_cast<size_t>(t / bs)] * bs + t % bs);
      dst_slots.push_back(table[static_cast<size_t>(pos / bs)] * bs + pos % bs);
      from.push_back(t);
      to.push_back(pos);
    }
  }
  DeviceArray<int32_t> d_src(src_slots), d_dst(dst_slots), d_from(from), d_to(to);
  DeviceArray<float> d_inv(inv);
  BlendPlaceParams params;
  params.kv = arenas.view();
  params.src_slots = d_src.get();
  params.dst_slots = d_dst.get();
  params.from_positions = d_from.get();
  params.to_positions = d_to.get();
  params.inv_freq = d_inv.get();
  params.tokens = static_cast<int>(src_slots.size());
  ExpectRan(LaunchBlendPlace(params, nullptr));
  // The whole arena: destinations placed, everything else untouched. The
  // rotated K matches bit for bit unless a device double cos/sin rounds to
  // another fp32 than glibc's (2 ulp in double: practically never, and then
  // one bf16 ulp at most); report and bound such elements.
  const std::vector<uint16_t> expected = arenas.CpuBits();
  const std::vector<uint16_t> got = arenas.DeviceBits();
  ASSERT_EQ(got.size(), expected.size());
  int64_t differing = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == expected[i]) continue;
    ++differing;
    ASSERT_LE(std::abs(static_cast<int>(got[i]) - static_cast<int>(expected[i])), 1)
        << "element " << i << ": device " << got[i] << ", cpu " << expected[i];
  }
  std::printf("elements differing by one bf16 ulp: %lld of %zu\n",
              static_cast<long long>(differing), got.size());
  EXPECT_LE(differing, static_cast<int64_t>(got.size() / 100000));
}

// Fresh K/V of some tokens equal to the cached values (deviation exactly
// 0), others near them, others unrelated; rows of the QKV buffer in a
// scrambled order with q heads in front, as the decoder's layout has them.
TEST_P(BlendKernelTest, DeviationMatchesCpuAndIsDeterministic) {
  const BlendCase& c = GetParam();
  const int d = c.head_dim, bs = c.block_size, kv_heads = c.kv_heads;
  const int heads = 2 * kv_heads;
  const int width = (heads + 2 * kv_heads) * d;
  constexpr int kTokens = 300, kLayer = 2;
  const int blocks = (kTokens + bs - 1) / bs + 3;
  Arenas arenas(c, blocks, 7);
  std::vector<float> qkv = testing::RandomNormal(static_cast<size_t>(kTokens) * width, 8);
  std::vector<int32_t> rows(kTokens), slots(kTokens);
  std::iota(rows.begin(), rows.end(), 0);
  std::shuffle(rows.begin(), rows.end(), std::mt19937(9));
  std::mt19937 rng(10);
  std::vector<float> cached(static_cast<size_t>(d));
  for (int t = 0; t < kTokens; ++t) {
    slots[t] = static_cast<int32_t>(rng() % static_cast<uint32_t>(blocks * bs));
    const int kind = t % 3;  // 0: unrelated, 1: equal, 2: near
    if (kind == 0) continue;
    const int32_t block = slots[t] / bs, offset = slots[t] % bs;
    for (int h = 0; h < kv_heads; ++h) {
      for (int value = 0; value < 2; ++value) {
        arenas.cpu().ReadRow(block, kLayer, value == 1, h, offset, cached.data());
        float* fresh =
            qkv.data() + static_cast<size_t>(rows[t]) * width + (heads + value * kv_heads + h) * d;
        for (int i = 0; i < d; ++i) fresh[i] = cached[i] * (kind == 1 ? 1.0f : 1.001f);
      }
    }
  }
  std::vector<double> expected(kTokens);
  for (int t = 0; t < kTokens; ++t) {
    const float* row = qkv.data() + static_cast<size_t>(rows[t]) * width;
    expected[t] = engine::cpu::KvDeviation(row + heads * d, row + (heads + kv_heads) * d,
                                           arenas.cpu(), kLayer, slots[t] / bs, slots[t] % bs);
  }
  DeviceArray<float> d_qkv(qkv);
  DeviceArray<int32_t> d_rows(rows), d_slots(slots);
  DeviceArray<double> d_dev(kTokens);
  KvDeviationParams params;
  params.kv = arenas.view();
  params.layer = kLayer;
  params.qkv = d_qkv.get();
  params.row_stride = width;
  params.k_offset = heads * d;
  params.v_offset = (heads + kv_heads) * d;
  params.rows = d_rows.get();
  params.slots = d_slots.get();
  params.deviation = d_dev.get();
  params.tokens = kTokens;
  ExpectRan(LaunchKvDeviation(params, nullptr));
  const std::vector<double> first = d_dev.Download();
  ExpectRan(LaunchKvDeviation(params, nullptr));
  const std::vector<double> second = d_dev.Download();
  for (int t = 0; t < kTokens; ++t) {
    // Same bits on every run: a fixed reduction tree, no atomics.
    ASSERT_EQ(std::memcmp(&first[t], &second[t], sizeof(double)), 0) << "token " << t;
    if (t % 3 == 1) {
      ASSERT_EQ(first[t], 0.0) << "token " << t;
      ASSERT_EQ(expected[t], 0.0) << "token " << t;
      continue;
    }
    // Only the summation order differs from the CPU's.
    ASSERT_NEAR(first[t], expected[t], 1e-12 * expected[t]) << "token " << t;
    ASSERT_GT(first[t], 0.0);
  }
  for (int64_t keep : {0, 1, 17, 150, 299, 300}) {
    EXPECT_EQ(engine::cpu::SelectMostDeviating(first, keep),
              engine::cpu::SelectMostDeviating(expected, keep))
        << "keep " << keep;
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BlendKernelTest,
                         ::testing::Values(BlendCase{16, 1, 16, engine::RopeType::kDefault},
                                           BlendCase{32, 2, 8, engine::RopeType::kLinear},
                                           BlendCase{64, 4, 16, engine::RopeType::kDefault},
                                           BlendCase{128, 8, 16, engine::RopeType::kLlama3},
                                           BlendCase{128, 2, 32, engine::RopeType::kDefault}));

// Compaction of a residual stream (whole rows) and of the k|v part of QKV
// rows (strided, part of a row) to an ascending selection.
TEST(RowGatherTest, CopiesSelectedRows) {
  constexpr int kRows = 200, kWidth = 96, kPart = 32, kPartOffset = 64;
  const std::vector<float> src = testing::RandomNormal(kRows * kWidth, 11);
  std::vector<int32_t> selected;
  for (int r = 0; r < kRows; r += 1 + r % 5) selected.push_back(r);
  selected.push_back(kRows - 1);
  const int count = static_cast<int>(selected.size());
  DeviceArray<float> d_src(src), d_full(count * kWidth), d_part(count * kPart);
  DeviceArray<int32_t> d_rows(selected);
  RowGatherParams full;
  full.src = reinterpret_cast<const std::byte*>(d_src.get());
  full.dst = reinterpret_cast<std::byte*>(d_full.get());
  full.src_row_bytes = full.dst_row_bytes = full.copy_bytes = kWidth * 4;
  full.rows = d_rows.get();
  full.count = count;
  ExpectRan(LaunchRowGather(full, nullptr));
  RowGatherParams part = full;
  part.src = reinterpret_cast<const std::byte*>(d_src.get() + kPartOffset);
  part.dst = reinterpret_cast<std::byte*>(d_part.get());
  part.dst_row_bytes = part.copy_bytes = kPart * 4;
  ExpectRan(LaunchRowGather(part, nullptr));
  const std::vector<float> got_full = d_full.Download(), got_part = d_part.Download();
  for (int i = 0; i < count; ++i) {
    const float* row = src.data() + selected[i] * kWidth;
    ASSERT_EQ(std::memcmp(got_full.data() + i * kWidth, row, kWidth * 4), 0) << "row " << i;
    ASSERT_EQ(std::memcmp(got_part.data() + i * kPart, row + kPartOffset, kPart * 4), 0)
        << "row " << i;
  }
}

// Shapes outside the table or inconsistent sizes are refused before any
// launch; empty launches succeed.
TEST(BlendLaunchersTest, RefuseBadShapes) {
  BlendPlaceParams place;
  place.kv.head_dim = 48;
  place.kv.block_size = 16;
  place.kv.num_layers = 1;
  place.kv.num_kv_heads = 1;
  place.tokens = 0;
  EXPECT_EQ(LaunchBlendPlace(place, nullptr), cudaSuccess);
  place.tokens = 1;
  place.inv_freq = reinterpret_cast<const float*>(16);
  EXPECT_EQ(LaunchBlendPlace(place, nullptr), cudaErrorInvalidValue);
  KvDeviationParams deviation;
  deviation.kv.head_dim = 64;
  deviation.kv.block_size = 16;
  deviation.kv.num_kv_heads = 1;
  deviation.tokens = 1;
  deviation.row_stride = 6;  // not a multiple of 4 floats
  EXPECT_EQ(LaunchKvDeviation(deviation, nullptr), cudaErrorInvalidValue);
  RowGatherParams gather;
  gather.count = 1;
  gather.src_row_bytes = gather.dst_row_bytes = 64;
  gather.copy_bytes = 80;  // more than a row
  EXPECT_EQ(LaunchRowGather(gather, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace strata::kernels
