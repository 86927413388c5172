// Block ids of the KV arena: reference counts and the free list, in flat
// arrays indexed by block id. The prefix index, tiers and eviction order of
// the KV cache issue build on this; for now it is what the scheduler needs to
// give every sequence its own blocks and to share blocks by reference.
#ifndef STRATA_CACHE_BLOCK_POOL_H_
#define STRATA_CACHE_BLOCK_POOL_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"

namespace strata::cache {

using BlockId = int32_t;

// Not thread-safe: owned by the engine thread, like all KV bookkeeping.
class BlockPool {
 public:
  explicit BlockPool(int64_t num_blocks);

  // Takes `count` free blocks, each with reference count 1, or nullopt (and
  // takes nothing) when fewer are free: the caller preempts or waits.
  std::optional<std::vector<BlockId>> Allocate(int64_t count);

  // Adds a reference to a block in use (a second sequence sharing it).
  // CHECK-fails on a free block: sharing a free block is a caller bug.
  void AddRef(BlockId id);

  // Drops one reference from each block; a block reaching zero is free again.
  // CHECK-fails on a free block (double free).
  void Release(absl::Span<const BlockId> ids);

  int64_t num_blocks() const { return static_cast<int64_t>(ref_counts_.size()); }
  int64_t num_free() const { return static_cast<int64_t>(free_list_.size()); }
  int32_t ref_count(BlockId id) const;

 private:
  std::vector<int32_t> ref_counts_;  // indexed by block id; 0 means free
  std::vector<BlockId> free_list_;   // a stack: recently freed blocks are reused first
};

}  // namespace strata::cache

#endif  // STRATA_CACHE_BLOCK_POOL_H_
