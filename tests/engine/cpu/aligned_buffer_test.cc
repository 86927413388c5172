// Where AlignedBuffer and the activation allocator place memory
// (engine/cpu/aligned_buffer.h): cache-line aligned always, on huge-page
// boundaries once large enough to be worth huge pages.
#include "engine/cpu/aligned_buffer.h"

#include <cstdint>
#include <numeric>

#include "gtest/gtest.h"

namespace strata::engine::cpu {
namespace {

uintptr_t Address(const void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(AlignedBufferTest, SmallBuffersAreCacheLineAligned) {
  AlignedBuffer buffer(1000);
  EXPECT_EQ(Address(buffer.data()) % 64, 0u);
  EXPECT_EQ(buffer.size(), 1000u);
}

TEST(AlignedBufferTest, LargeBuffersStartOnAHugePage) {
  AlignedBuffer buffer(size_t{5} << 20);
  EXPECT_EQ(Address(buffer.data()) % AlignedBuffer::kHugePage, 0u);
}

TEST(AlignedBufferTest, GrowToReallocatesOnlyWhenTooSmall) {
  AlignedBuffer buffer;
  buffer.GrowTo(256);
  ASSERT_EQ(buffer.size(), 256u);
  const std::byte* first = buffer.data();
  buffer.GrowTo(100);  // already big enough: the same memory, the same size
  EXPECT_EQ(buffer.data(), first);
  EXPECT_EQ(buffer.size(), 256u);
  buffer.GrowTo(4096);
  EXPECT_EQ(buffer.size(), 4096u);
  EXPECT_EQ(Address(buffer.data()) % 64, 0u);
}

TEST(ActivationVectorTest, LargeActivationsStartOnAHugePageAndKeepTheirValues) {
  ActivationVector small(100);
  EXPECT_EQ(Address(small.data()) % 64, 0u);
  // A 2k-token prefill's gate/up output: 2048 rows of 4096 floats.
  ActivationVector large(size_t{2048} * 4096);
  EXPECT_EQ(Address(large.data()) % AlignedBuffer::kHugePage, 0u);
  std::iota(small.begin(), small.end(), 0.0f);
  small.resize(size_t{2} << 20);  // grows into huge pages, keeping the values
  EXPECT_EQ(Address(small.data()) % AlignedBuffer::kHugePage, 0u);
  EXPECT_EQ(small[99], 99.0f);
  EXPECT_EQ(small.back(), 0.0f);
}

}  // namespace
}  // namespace strata::engine::cpu
