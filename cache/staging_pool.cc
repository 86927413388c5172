#include "cache/staging_pool.h"

#include <algorithm>
#include <utility>

#include "common/check.h"

namespace strata::cache {

StagingPool::StagingPool(size_t block_bytes, int64_t max_slots, storage::HostAllocator allocator,
                         int64_t slab_slots)
    : block_bytes_(block_bytes),
      max_slots_(max_slots),
      slab_slots_(std::max<int64_t>(slab_slots, 1)),
      allocator_(allocator ? std::move(allocator) : storage::HeapHostAllocator()) {
  CHECK_GT(block_bytes_, 0u);
}

std::optional<int32_t> StagingPool::Acquire() {
  if (free_.empty()) {
    const int64_t grow = std::min(slab_slots_, max_slots_ - num_slots_);
    if (grow <= 0) return std::nullopt;
    auto slab = allocator_(static_cast<size_t>(grow) * block_bytes_);
    if (!slab.ok()) return std::nullopt;
    slabs_.push_back(*std::move(slab));
    // Highest first, so that slots are handed out in address order.
    for (int64_t i = grow - 1; i >= 0; --i) free_.push_back(static_cast<int32_t>(num_slots_ + i));
    num_slots_ += grow;
  }
  const int32_t slot = free_.back();
  free_.pop_back();
  return slot;
}

absl::Span<std::byte> StagingPool::Data(int32_t slot) {
  CHECK(slot >= 0 && slot < num_slots_);
  // Slabs hold slab_slots_ slots each, except possibly the last.
  const size_t slab = static_cast<size_t>(slot / slab_slots_);
  const size_t offset = static_cast<size_t>(slot % slab_slots_) * block_bytes_;
  return absl::Span<std::byte>(slabs_[slab]->data() + offset, block_bytes_);
}

void StagingPool::Release(int32_t slot) {
  CHECK(slot >= 0 && slot < num_slots_);
  free_.push_back(slot);
}

}  // namespace strata::cache
