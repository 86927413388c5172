// Packed weights placed back to back in huge-page slabs
// (engine/cpu/weight_slabs.h): where they land, that they never overlap,
// and that a slab goes when its last matrix does.
#include "engine/cpu/weight_slabs.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "engine/cpu/aligned_buffer.h"
#include "gtest/gtest.h"

namespace strata::engine::cpu {
namespace {

uintptr_t Address(const std::shared_ptr<std::byte>& p) {
  return reinterpret_cast<uintptr_t>(p.get());
}

TEST(WeightSlabsTest, MatricesLandBackToBackOnWholeCacheLines) {
  // Nothing else in this binary holds weight memory, so a new slab starts.
  auto first = AllocateWeightMemory(1000);
  auto second = AllocateWeightMemory(3 * 64);
  EXPECT_EQ(Address(first) % AlignedBuffer::kHugePage, 0u);
  // 1000 bytes and the spare line, rounded to whole lines: 17 lines.
  EXPECT_EQ(Address(second) - Address(first), 17u * 64);
  std::memset(first.get(), 1, 1000 + 64);
  std::memset(second.get(), 2, 3 * 64 + 64);
  EXPECT_EQ(static_cast<int>(first.get()[1000 + 63]), 1);
}

TEST(WeightSlabsTest, SlabIsFreedWithItsLastMatrix) {
  auto a = AllocateWeightMemory(4096);
  auto b = AllocateWeightMemory(4096);
  std::weak_ptr<std::byte> slab = a;
  a.reset();
  EXPECT_FALSE(slab.expired()) << "b still lives in the slab";
  b.reset();
  EXPECT_TRUE(slab.expired());
  // The next matrix starts a fresh slab rather than reusing freed memory.
  auto c = AllocateWeightMemory(64);
  EXPECT_EQ(Address(c) % AlignedBuffer::kHugePage, 0u);
}

TEST(WeightSlabsTest, AMatrixLargerThanASlabGetsOneOfItsOwn) {
  auto small = AllocateWeightMemory(64);
  const size_t big_bytes = kWeightSlabBytes + 12345;
  auto big = AllocateWeightMemory(big_bytes);
  EXPECT_EQ(Address(big) % AlignedBuffer::kHugePage, 0u);
  std::memset(big.get(), 7, big_bytes + 64);  // writable to its end and the spare line
  EXPECT_EQ(static_cast<int>(big.get()[big_bytes + 63]), 7);
  // The slab left behind is full, so the next matrix opens another one.
  auto next = AllocateWeightMemory(64);
  EXPECT_NE(Address(next), Address(small) + 128);
}

TEST(WeightSlabsTest, ConcurrentAllocationsNeverOverlap) {
  constexpr int kThreads = 4, kEach = 200;
  std::vector<std::vector<std::pair<uintptr_t, size_t>>> ranges(kThreads);
  std::vector<std::shared_ptr<std::byte>> keep[kThreads];
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const size_t bytes = 64 * static_cast<size_t>(1 + (i * 7 + t) % 50);
        keep[t].push_back(AllocateWeightMemory(bytes));
        ranges[t].push_back({Address(keep[t].back()), bytes + 64});
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  std::vector<std::pair<uintptr_t, size_t>> all;
  for (const auto& r : ranges) all.insert(all.end(), r.begin(), r.end());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; i + 1 < all.size(); ++i) {
    EXPECT_EQ(all[i].first % 64, 0u);
    EXPECT_LE(all[i].first + all[i].second, all[i + 1].first) << "ranges " << i << " and " << i + 1;
  }
}

}  // namespace
}  // namespace strata::engine::cpu
