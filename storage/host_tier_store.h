// The host-memory tier: KV blocks in slots carved out of large buffers that
// an injected allocator provides (pinned memory from the CUDA backend, plain
// aligned memory from the CPU backend), with LRU eviction. storage/ does not
// depend on engine/: a backend adapts its host buffers to HostMemory.
#ifndef STRATA_STORAGE_HOST_TIER_STORE_H_
#define STRATA_STORAGE_HOST_TIER_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "storage/block_key.h"
#include "storage/tier_store.h"

namespace strata::storage {

// A region of host memory; owns its bytes and frees them on destruction.
class HostMemory {
 public:
  virtual ~HostMemory() = default;
  virtual std::byte* data() = 0;
  virtual size_t size() const = 0;
};

// Returns `bytes` of host memory, or RESOURCE_EXHAUSTED. Called from the
// thread that calls Insert, with the store's lock held: it must not call back
// into the store.
using HostAllocator = std::function<absl::StatusOr<std::unique_ptr<HostMemory>>(size_t bytes)>;

// Plain heap memory, 64-byte aligned (for tests and the CPU backend). A
// region of 2 MiB or more is 2 MiB aligned and asks for transparent huge
// pages: a tier's memory is first touched by the copies that fill it, and
// 4 KiB pages would make those copies pay a page fault every 4 KiB.
HostAllocator HeapHostAllocator();

// Called with a block about to be dropped to make room, so its owner can
// demote it (e.g. DiskTierStore::Insert, which copies). `bytes` is valid only
// during the call. Runs on the thread that called Insert, with the store's
// lock held: it must not call back into this store.
using EvictCallback = std::function<void(const BlockKey& key, absl::Span<const std::byte> bytes)>;

struct HostTierOptions {
  size_t block_bytes = 0;       // > 0
  uint64_t capacity_bytes = 0;  // holds capacity_bytes / block_bytes blocks
  // Memory is allocated lazily, this many bytes (rounded down to whole
  // blocks, at least one) per allocator call, so a large tier does not
  // commit its whole capacity at start.
  size_t slab_bytes = size_t{64} << 20;
  HostAllocator allocator;  // HeapHostAllocator() when empty
  EvictCallback on_evict;   // optional
};

class HostTierStore final : public TierStore {
 public:
  // CHECK-fails on block_bytes == 0.
  explicit HostTierStore(HostTierOptions options);
  // CHECK-fails if a handle is still alive: handles pin this store's memory.
  ~HostTierStore() override;

  HostTierStore(const HostTierStore&) = delete;
  HostTierStore& operator=(const HostTierStore&) = delete;

  size_t block_bytes() const override { return options_.block_bytes; }

  // Evicts the least recently used unpinned block when full (calling
  // on_evict first); drops the block (OK) when every block is pinned, the
  // capacity is below one block, or the allocator fails.
  absl::Status Insert(const BlockKey& key, absl::Span<const std::byte> bytes) override;

  // A slot to fill in place (kWriting), evicting as Insert does; kHeld for a
  // key held or being written (made the most recently used); kNoRoom when
  // Insert would drop (every slot pinned, or no memory). The slot is pinned
  // until the writer is gone; Lookup misses it until Commit.
  StartedInsert StartInsert(const BlockKey& key) override;

  // A hit is ready at once and pins the block until the handle is destroyed;
  // it also makes the block the most recently used.
  std::unique_ptr<TierStoreHandle> Lookup(const BlockKey& key) override;

  // A pinned block leaves the index at once; its memory is reused once its
  // last handle is gone.
  void Erase(const BlockKey& key) override;

  TierStoreStats Stats() const override;

 private:
  class Handle;
  class Writer;
  static constexpr int32_t kNone = -1;

  struct Slot {
    BlockKey key;
    int32_t pins = 0;
    bool erased = false;   // left the index while pinned; freed on last unpin
    bool writing = false;  // indexed, but its writer has not committed yet
    int32_t prev = kNone;  // LRU links; only unpinned indexed slots are linked
    int32_t next = kNone;
  };

  std::byte* SlotData(int32_t slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A free slot, growing or evicting as needed; kNone when none can be had.
  int32_t TakeSlot() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Grow() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LinkFront(int32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unlink(int32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FreeSlot(int32_t slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unpin(int32_t slot);
  // The writer of `slot` is done: the block is held (commit) or discarded.
  void FinishWrite(int32_t slot, bool commit);

  const HostTierOptions options_;
  const HostAllocator allocator_;
  const int64_t max_slots_;
  const int64_t slots_per_slab_;

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<HostMemory>> slabs_ ABSL_GUARDED_BY(mu_);
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);  // one per allocated slot
  std::vector<int32_t> free_slots_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<BlockKey, int32_t> index_ ABSL_GUARDED_BY(mu_);
  int32_t lru_head_ ABSL_GUARDED_BY(mu_) = kNone;  // most recently used
  int32_t lru_tail_ ABSL_GUARDED_BY(mu_) = kNone;  // next to evict
  bool allocator_failed_ ABSL_GUARDED_BY(mu_) = false;
  int64_t live_slots_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t pinned_handles_ ABSL_GUARDED_BY(mu_) = 0;
  TierStoreStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_HOST_TIER_STORE_H_
