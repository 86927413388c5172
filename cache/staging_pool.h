// Host memory for KV blocks in flight between the device arena and a lower
// tier: a demotion copies a block into a slot during a step, and the
// scheduler inserts the slot's bytes into the host tier after the step. Slots
// are carved from slabs that the injected allocator provides (the backend's
// host buffers: pinned on CUDA, so the copy is a DMA), allocated on first use
// and kept for reuse.
#ifndef STRATA_CACHE_STAGING_POOL_H_
#define STRATA_CACHE_STAGING_POOL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "storage/host_tier_store.h"

namespace strata::cache {

// Not thread-safe: the engine thread's.
class StagingPool {
 public:
  // At most `max_slots` slots of `block_bytes`; memory comes from
  // `allocator` (heap when empty) `slab_slots` slots at a time.
  StagingPool(size_t block_bytes, int64_t max_slots, storage::HostAllocator allocator,
              int64_t slab_slots = 32);

  // A free slot; nullopt when all max_slots are taken or the allocator
  // fails (the caller drops that block: a tier is a cache).
  std::optional<int32_t> Acquire();
  // The slot's block_bytes bytes, valid until the pool is destroyed.
  absl::Span<std::byte> Data(int32_t slot);
  void Release(int32_t slot);

  int64_t num_in_use() const { return num_slots_ - static_cast<int64_t>(free_.size()); }

 private:
  const size_t block_bytes_;
  const int64_t max_slots_;
  const int64_t slab_slots_;
  storage::HostAllocator allocator_;
  std::vector<std::unique_ptr<storage::HostMemory>> slabs_;
  std::vector<int32_t> free_;
  int64_t num_slots_ = 0;  // slots carved so far
};

}  // namespace strata::cache

#endif  // STRATA_CACHE_STAGING_POOL_H_
