// Block gather/scatter: in-arena copies by id lists, and a gather straight
// into mapped pinned host memory (the zero-copy path of tier moves).
#include "kernels/block_copy.h"

#include <cstring>

#include "engine/cuda/device_memory.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;

constexpr int64_t kBlockBytes = 2 * 3 * 2 * 16 * 64 * 2;  // layers 3, kv 2, bs 16, d 64
constexpr int kBlocks = 10;

std::vector<uint32_t> RandomWords(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint32_t> words(n);
  for (uint32_t& w : words) w = rng();
  return words;
}

TEST(BlockCopyKernelTest, CopiesListedBlocksWithinAnArena) {
  const size_t words_per_block = kBlockBytes / 4;
  std::vector<uint32_t> arena = RandomWords(words_per_block * kBlocks, 14);
  DeviceArray<uint32_t> d_arena(arena);
  const std::vector<int32_t> src = {0, 3, 7}, dst = {9, 1, 4};
  DeviceArray<int32_t> d_src(src), d_dst(dst);
  BlockCopyParams p;
  p.src = reinterpret_cast<const std::byte*>(d_arena.get());
  p.dst = reinterpret_cast<std::byte*>(d_arena.get());
  p.src_blocks = d_src.get();
  p.dst_blocks = d_dst.get();
  p.block_bytes = kBlockBytes;
  p.count = static_cast<int>(src.size());
  ExpectRan(LaunchBlockCopy(p, nullptr));
  for (size_t i = 0; i < src.size(); ++i) {
    std::copy_n(arena.begin() + src[i] * words_per_block, words_per_block,
                arena.begin() + dst[i] * words_per_block);
  }
  EXPECT_EQ(d_arena.Download(), arena);
}

TEST(BlockCopyKernelTest, GathersIntoMappedPinnedHostMemory) {
  const size_t words_per_block = kBlockBytes / 4;
  const std::vector<uint32_t> arena = RandomWords(words_per_block * kBlocks, 15);
  DeviceArray<uint32_t> d_arena(arena);
  auto host = engine::cuda::PinnedBuffer::Allocate(kBlockBytes * 3);
  ASSERT_TRUE(host.ok()) << host.status();
  std::memset((*host)->data(), 0xFF, (*host)->size());
  void* mapped = nullptr;
  ASSERT_EQ(cudaHostGetDevicePointer(&mapped, (*host)->data(), 0), cudaSuccess);
  const std::vector<int32_t> src = {8, 2, 5}, dst = {0, 1, 2};
  DeviceArray<int32_t> d_src(src), d_dst(dst);
  BlockCopyParams p;
  p.src = reinterpret_cast<const std::byte*>(d_arena.get());
  p.dst = static_cast<std::byte*>(mapped);
  p.src_blocks = d_src.get();
  p.dst_blocks = d_dst.get();
  p.block_bytes = kBlockBytes;
  p.count = 3;
  ExpectRan(LaunchBlockCopy(p, nullptr));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(std::memcmp((*host)->data() + i * kBlockBytes,
                          arena.data() + src[i] * words_per_block, kBlockBytes),
              0)
        << "block " << i;
  }
}

TEST(BlockCopyKernelTest, RejectsUnalignedBlocks) {
  BlockCopyParams p;
  p.block_bytes = 24;
  p.count = 1;
  EXPECT_EQ(LaunchBlockCopy(p, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace strata::kernels
