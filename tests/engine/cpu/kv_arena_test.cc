// KvArena's block moves: a demotion (streamed past the cache) and a
// promotion copy a whole block bit for bit, whatever the host span's
// alignment and whether the block is a whole number of cache lines; and the
// host memory for blocks is aligned for those copies and for huge pages; and
// moves split across threads end as in plan order.
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
  std::vector<std::byte> image(static_cast<size_t>(arena.bytes_per_block()));
  for (size_t i = 0; i < image.size(); ++i)
    image[i] = static_cast<std::byte>((seed + i * 7) & 0xff);
  arena.WriteBlock(block, image.data());
}

std::vector<std::byte> BlockBytes(const KvArena& arena, BlockId block) {
  std::vector<std::byte> image(static_cast<size_t>(arena.bytes_per_block()));
  arena.ReadBlock(block, image.data());
  return image;
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
                  ->CopyBlocks(
                      {BlockMove{.src = 0, .kind = BlockMoveKind::kDeviceToHost, .host_dst = slot}})
                  .ok());
  EXPECT_EQ(std::vector<std::byte>(slot.begin(), slot.end()), BlockBytes(*arena, 0));
  ASSERT_TRUE(arena
                  ->CopyBlocks(
                      {BlockMove{.dst = 1, .kind = BlockMoveKind::kHostToDevice, .host_src = slot}})
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
  RoundTrip(
      {.num_layers = 1, .num_kv_heads = 1, .head_dim = 3, .block_size = 1, .dtype = DType::kF32},
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

// A plan's moves split across a pool's threads leave the arena and the host
// spans as the moves in plan order would: each block is demoted before a
// promotion overwrites it, a block promoted twice ends with the later bytes,
// and copies within the arena run in order.
TEST(KvArenaTest, MovesSplitAcrossThreadsEndAsInPlanOrder) {
  const KvCacheSpec spec{.num_layers = 2, .num_kv_heads = 2, .head_dim = 8, .block_size = 4};
  constexpr int kBlocks = 8;
  std::unique_ptr<KvArena> serial = MakeArena(spec, kBlocks);
  std::unique_ptr<KvArena> split = MakeArena(spec, kBlocks);
  ASSERT_NE(serial, nullptr);
  ASSERT_NE(split, nullptr);
  const size_t block_bytes = static_cast<size_t>(serial->bytes_per_block());
  std::vector<std::byte> serial_host(kBlocks * block_bytes), split_host(kBlocks * block_bytes);
  const auto moves = [&](std::vector<std::byte>& host) {
    std::vector<BlockMove> out;
    const auto slot = [&](int i) {
      return absl::Span<std::byte>(host).subspan(i * block_bytes, block_bytes);
    };
    for (int b = 0; b < 6; ++b) {  // demote blocks 0-5
      out.push_back({.src = b, .kind = BlockMoveKind::kDeviceToHost, .host_dst = slot(b)});
    }
    for (int b = 0; b < 6; ++b) {  // promote them rotated by one
      out.push_back(
          {.dst = (b + 1) % 6, .kind = BlockMoveKind::kHostToDevice, .host_src = slot(b)});
    }
    out.push_back({.src = 6, .dst = 7, .kind = BlockMoveKind::kCopy});
    // A run that promotes block 2 twice: the later must win.
    out.push_back({.dst = 2, .kind = BlockMoveKind::kHostToDevice, .host_src = slot(5)});
    out.push_back({.dst = 3, .kind = BlockMoveKind::kHostToDevice, .host_src = slot(4)});
    out.push_back({.dst = 2, .kind = BlockMoveKind::kHostToDevice, .host_src = slot(0)});
    out.push_back({.src = 7, .dst = 0, .kind = BlockMoveKind::kCopy});
    return out;
  };
  for (BlockId b = 0; b < kBlocks; ++b) {
    FillBlock(*serial, b, static_cast<uint8_t>(b * 11));
    FillBlock(*split, b, static_cast<uint8_t>(b * 11));
  }
  ThreadPool pool(2);
  ASSERT_TRUE(serial->CopyBlocks(moves(serial_host)).ok());
  ASSERT_TRUE(split->CopyBlocks(moves(split_host), &pool).ok());
  EXPECT_EQ(split_host, serial_host);
  for (BlockId b = 0; b < kBlocks; ++b)
    EXPECT_EQ(BlockBytes(*split, b), BlockBytes(*serial, b)) << b;
  // And what plan order means: block 1 holds block 0's old bytes, block 2
  // block 0's too (the later of its two promotions), block 3 block 4's, and
  // block 0 block 6's (through 7).
  std::unique_ptr<KvArena> original = MakeArena(spec, kBlocks);
  for (BlockId b = 0; b < kBlocks; ++b) FillBlock(*original, b, static_cast<uint8_t>(b * 11));
  EXPECT_EQ(BlockBytes(*split, 1), BlockBytes(*original, 0));
  EXPECT_EQ(BlockBytes(*split, 2), BlockBytes(*original, 0));
  EXPECT_EQ(BlockBytes(*split, 3), BlockBytes(*original, 4));
  EXPECT_EQ(BlockBytes(*split, 0), BlockBytes(*original, 6));
}

}  // namespace
}  // namespace strata::engine::cpu
