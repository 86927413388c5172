// KV append writes the same bytes, at the same places, as the CPU decoder's
// StoreKv into a CPU arena of the same spec: the two arenas' images are
// compared whole, which also proves the block layouts byte-compatible.
#include "kernels/kv_append.h"

#include <cstring>

#include "engine/cpu/kv_arena.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;

class KvAppendKernelTest : public ::testing::TestWithParam<int> {};

TEST_P(KvAppendKernelTest, MatchesTheCpuArenaByteForByte) {
  const int d = GetParam();
  constexpr int kLayers = 3, kKvHeads = 2, kHeads = 4, kBlockSize = 16, kBlocks = 6;
  constexpr int kLayer = 1;
  const engine::KvCacheSpec spec{kLayers, kKvHeads, d, kBlockSize, engine::DType::kBF16};
  auto cpu_arena = engine::cpu::KvArena::Create(spec, kBlocks);
  ASSERT_TRUE(cpu_arena.ok()) << cpu_arena.status();
  const int width = (kHeads + 2 * kKvHeads) * d;
  // Positions 0..39 of a sequence whose table is scrambled.
  const std::vector<int32_t> table = {4, 1, 5};
  const int rows = 40;
  std::vector<int32_t> slots;
  for (int pos = 0; pos < rows; ++pos)
    slots.push_back(table[pos / kBlockSize] * kBlockSize + pos % kBlockSize);
  const std::vector<float> qkv = testing::RandomNormal(rows * width, 13);
  for (int r = 0; r < rows; ++r) {
    const int block = slots[r] / kBlockSize, slot = slots[r] % kBlockSize;
    for (int g = 0; g < kKvHeads; ++g) {
      for (int value = 0; value < 2; ++value) {
        (*cpu_arena)
            ->WriteRow(block, kLayer, value == 1, g, slot,
                       qkv.data() + r * width + (kHeads + g + value * kKvHeads) * d);
      }
    }
  }
  const size_t arena_bytes = static_cast<size_t>(spec.BytesPerBlock()) * kBlocks;
  DeviceArray<uint16_t> d_arena(arena_bytes / 2);
  ASSERT_EQ(cudaMemset(d_arena.get(), 0, arena_bytes), cudaSuccess);
  DeviceArray<float> d_qkv(qkv);
  DeviceArray<int32_t> d_slots(slots);
  KvAppendParams p;
  p.kv.data = reinterpret_cast<__nv_bfloat16*>(d_arena.get());
  p.kv.block_elements = spec.BytesPerBlock() / 2;
  p.kv.num_layers = kLayers;
  p.kv.num_kv_heads = kKvHeads;
  p.kv.block_size = kBlockSize;
  p.kv.head_dim = d;
  p.layer = kLayer;
  p.qkv = d_qkv.get();
  p.row_stride = width;
  p.k_offset = kHeads * d;
  p.v_offset = (kHeads + kKvHeads) * d;
  p.slots = d_slots.get();
  p.rows = rows;
  ExpectRan(LaunchKvAppend(p, nullptr));
  const std::vector<uint16_t> gpu = d_arena.Download();
  // The device's blocks are token rows; the CPU arena's, compared as rows.
  std::vector<std::byte> cpu_rows(arena_bytes);
  for (int b = 0; b < kBlocks; ++b) {
    (*cpu_arena)->ExportRows(b, cpu_rows.data() + static_cast<size_t>(b) * spec.BytesPerBlock());
  }
  ASSERT_EQ(std::memcmp(gpu.data(), cpu_rows.data(), arena_bytes), 0);
}

INSTANTIATE_TEST_SUITE_P(HeadDims, KvAppendKernelTest, ::testing::Values(16, 32, 64, 128));

}  // namespace
}  // namespace strata::kernels
