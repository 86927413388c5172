// The blocks of one KV tier (the device arena), in flat arrays indexed by
// block id: reference count, content key, priority, last use, and the lists
// that order them. No per-block objects, no shared_ptr.
//
// A block is in exactly one state:
//   kFree    no content worth keeping; on the free list.
//   kInUse   referenced by at least one sequence (ref > 0). Never evicted.
//   kCached  unreferenced but holds keyed content (registered in a prefix
//            index); on the eviction list of its priority. Can be taken back
//            (Acquire) or evicted to make room.
// Only keyed blocks are ever kCached: a block released without a key (a
// partial or never-committed block) is free at once.
//
// Eviction order: lowest priority class first, least recently released first
// within a class. Each class is an intrusive doubly-linked list threaded
// through the prev/next arrays, so every operation is O(1) per block. A
// sequence's blocks should be released tail first (KvCacheManager does), so
// that a chain's later blocks, useless without their parents, go first.
#ifndef STRATA_CACHE_BLOCK_POOL_H_
#define STRATA_CACHE_BLOCK_POOL_H_

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "storage/block_key.h"

namespace strata::cache {

using BlockId = int32_t;  // engine::BlockId
using storage::BlockKey;

enum class BlockState : uint8_t { kFree, kInUse, kCached };

// What the scheduler wants kept. Higher survives longer; only a reference
// guarantees survival. A pinned block is evicted (and so demoted, once tiers
// are wired) only when nothing of lower priority is left, rather than making
// allocation fail: a pin is a strong preference, not a reservation.
enum class Priority : uint8_t {
  kNormal = 0,
  kWorkflowSoon = 1,   // a workflow's next step will read it soon
  kSessionPinned = 2,  // an open session's context
};
inline constexpr int kNumPriorities = 3;

// A cached block whose content was dropped from this tier to make room. Its
// bytes stay intact until the block is next written, which is no earlier than
// the step that the allocation was made for: the owner demotes them to the
// next tier by a move placed first in that step's plan.
struct EvictedBlock {
  BlockId id = 0;
  BlockKey key;
  Priority priority = Priority::kNormal;
  uint64_t last_use = 0;
};

// Not thread-safe: owned by the engine thread, like all KV bookkeeping.
class BlockPool {
 public:
  explicit BlockPool(int64_t num_blocks);

  // Takes `count` blocks, each with reference count 1, priority kNormal and no
  // key: free blocks first, then cached ones evicted in eviction order, each
  // appended to `*evicted` (which must be non-null whenever keys are set, or
  // the owner's index would point at reused blocks). nullopt, and nothing
  // taken or evicted, when fewer than `count` are free or cached. The ids
  // come in ascending order.
  std::optional<std::vector<BlockId>> Allocate(int64_t count,
                                               std::vector<EvictedBlock>* evicted = nullptr);

  // Evicts up to `count` cached blocks to the free list in eviction order,
  // appending each to `*evicted`; returns how many. For keeping free blocks
  // ahead of demand (demotion in the background of a step).
  int64_t Evict(int64_t count, std::vector<EvictedBlock>* evicted);

  // Adds a reference to a block in use (a second sequence sharing it).
  // CHECK-fails unless the block is in use.
  void AddRef(BlockId id);

  // Takes a reference to a block in use or cached (a prefix hit): a cached
  // block leaves the eviction list. CHECK-fails on a free block.
  void Acquire(BlockId id);

  // Drops one reference from each block, in order; a block reaching zero
  // becomes cached if it has a key, else free. CHECK-fails on a block not in
  // use (double free).
  void Release(absl::Span<const BlockId> ids);

  // Gives an in-use block its content key (the owner registered it in its
  // index); CHECK-fails if the block is not in use or already has one.
  void SetKey(BlockId id, const BlockKey& key);

  // Sets a block's priority (free blocks excepted: they have none). A cached
  // block moves to the most recent end of its new class.
  void SetPriority(BlockId id, Priority priority);

  int64_t num_blocks() const { return static_cast<int64_t>(ref_counts_.size()); }
  int64_t num_free() const { return static_cast<int64_t>(free_list_.size()); }
  int64_t num_cached() const { return num_cached_; }
  int64_t num_in_use() const { return num_blocks() - num_free() - num_cached(); }
  // What Allocate can hand out: free plus cached.
  int64_t num_available() const { return num_free() + num_cached(); }

  int32_t ref_count(BlockId id) const;
  BlockState state(BlockId id) const;
  // The content key, or nullopt for a block without one.
  std::optional<BlockKey> key(BlockId id) const;
  Priority priority(BlockId id) const;
  // Tick of the block's last allocation, acquisition or release.
  uint64_t last_use(BlockId id) const;

  // Walks every list and recomputes every count: OK, or INTERNAL naming the
  // first inconsistency. O(num_blocks); for tests and debugging.
  absl::Status Validate() const;

 private:
  static constexpr BlockId kNone = -1;

  struct List {
    BlockId head = kNone;  // least recently released: evicted first
    BlockId tail = kNone;
  };

  void CheckId(BlockId id) const;
  void PushBack(BlockId id);  // onto the list of its priority
  void Unlink(BlockId id);
  BlockId PopVictim();  // kNone when nothing is cached

  std::vector<int32_t> ref_counts_;
  std::vector<BlockKey> keys_;
  std::vector<uint8_t> has_key_;
  std::vector<Priority> priorities_;
  std::vector<uint64_t> last_use_;
  std::vector<BlockId> prev_;  // eviction-list links, kNone at the ends
  std::vector<BlockId> next_;
  std::array<List, kNumPriorities> lists_;
  int64_t num_cached_ = 0;
  std::vector<BlockId> free_list_;  // a stack: recently freed blocks are reused first
  uint64_t tick_ = 0;
};

}  // namespace strata::cache

#endif  // STRATA_CACHE_BLOCK_POOL_H_
