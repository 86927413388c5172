// KvArena's block moves: a demotion (streamed past the cache) and a
// promotion copy a whole block bit for bit, whatever the host span's
// alignment and whether the block is a whole number of cache lines; and the
// host memory for blocks is aligned for those copies and for huge pages.
#include "engine/cpu/kv_arena.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace strata::engine::cpu {
namespace {

std::unique_ptr<KvArena> MakeArena(const KvCacheSpec& spec, int64_t blocks) {
  absl::StatusOr<std::unique_ptr<KvArena>> arena = KvArena::Create(spec, blocks);
  EXPECT_TRUE(arena.ok()) << arena.status();
  return arena.ok() ? *std::move(arena) : nullptr;
}

void FillBlock(KvArena& arena, BlockId block, uint8_t seed) {
  std::byte* data = arena.BlockData(block);
  for (int64_t i = 0; i < arena.bytes_per_block(); ++i) {
    data[i] = static_cast<std::byte>((seed + i * 7) & 0xff);
  }
}

std::vector<std::byte> BlockBytes(const KvArena& arena, BlockId block) {
  const std::byte* data = arena.BlockData(block);
  return std::vector<std::byte>(data, data + arena.bytes_per_block());
}

// Demotes block 0 into host memory at `offset` bytes past an aligned start,
// promotes it into block 1, and checks both copies bit for bit.
void RoundTrip(const KvCacheSpec& spec, size_t offset) {
  std::unique_ptr<KvArena> arena = MakeArena(spec, 2);
  ASSERT_NE(arena, nullptr);
  const size_t block_bytes = static_cast<size_t>(arena->bytes_per_block());
  FillBlock(*arena, 0, 3);
  std::vector<std::byte> host(block_bytes + 64);
  std::byte* base = host.data() + (64 - reinterpret_cast<uintptr_t>(host.data()) % 64) % 64;
  ASSERT_LE(base + offset + block_bytes, host.data() + host.size());
  const absl::Span<std::byte> slot(base + offset, block_bytes);
  ASSERT_TRUE(arena
                  ->CopyBlocks({BlockMove{.src = 0,
                                          .kind = BlockMoveKind::kDeviceToHost,
                                          .host_dst = slot}})
                  .ok());
  EXPECT_EQ(std::vector<std::byte>(slot.begin(), slot.end()), BlockBytes(*arena, 0));
  ASSERT_TRUE(arena
                  ->CopyBlocks({BlockMove{.dst = 1,
                                          .kind = BlockMoveKind::kHostToDevice,
                                          .host_src = slot}})
                  .ok());
  EXPECT_EQ(BlockBytes(*arena, 1), BlockBytes(*arena, 0));
}

TEST(KvArenaTest, DemotionAndPromotionCopyWholeBlocksBitForBit) {
  // 2 layers x 2 heads x 4 tokens x 8 dims x 2 (K, V) x bf16: 512 bytes.
  const KvCacheSpec spec{.num_layers = 2, .num_kv_heads = 2, .head_dim = 8, .block_size = 4};
  RoundTrip(spec, 0);   // aligned: streamed
  RoundTrip(spec, 16);  // 16-byte aligned only
  RoundTrip(spec, 1);   // unaligned: plain copy
}

TEST(KvArenaTest, BlocksThatAreNotWholeCacheLinesKeepTheirTail) {
  // 1 x 1 x 1 token x 3 dims x 2 x f32: 24 bytes, less than one line.
  RoundTrip({.num_layers = 1, .num_kv_heads = 1, .head_dim = 3, .block_size = 1,
             .dtype = DType::kF32},
            0);
  // 1 x 1 x 3 tokens x 12 dims x 2 x bf16: 144 bytes, two lines and a tail.
  RoundTrip({.num_layers = 1, .num_kv_heads = 1, .head_dim = 12, .block_size = 3}, 0);
}

TEST(KvArenaTest, HostBlockMemoryIsAlignedForCopiesAndHugePages) {
  std::byte* small = AllocateHostBlockMemory(1000);
  std::byte* large = AllocateHostBlockMemory((size_t{2} << 20) + 100);
  ASSERT_NE(small, nullptr);
  ASSERT_NE(large, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large) % (size_t{2} << 20), 0u);
  large[(size_t{2} << 20) + 99] = std::byte{1};  // the whole size is usable
  std::free(small);
  std::free(large);
}

}  // namespace
}  // namespace strata::engine::cpu
