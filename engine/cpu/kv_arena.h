// The CPU backend's paged KV cache: num_blocks blocks of block_size tokens,
// each holding K and V of every layer in ONE contiguous region, so that moving
// a block between tiers (host buffer, disk) is a single memcpy of
// bytes_per_block(). Layout of a block:
//   [layer][k|v][kv_head][block_size * head_dim elements]
// so one head's keys of one block are contiguous, the unit attention streams
// through. Within that unit the elements lie as layout() says
// (engine/cpu/kv_layout.h): token rows, or for bf16 the attention kernels'
// chunks of 16 tokens; ReadRow and WriteRow hide the difference.
#ifndef STRATA_ENGINE_CPU_KV_ARENA_H_
#define STRATA_ENGINE_CPU_KV_ARENA_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/cpu/kv_layout.h"
#include "engine/cpu/thread_pool.h"
#include "engine/step.h"

namespace strata::engine::cpu {

// Host memory for KV blocks outside the arena (the host tier, staging and
// swap slabs; CpuBackend::AllocateHostBuffer): 64-byte aligned, and from
// 2 MiB up 2 MiB aligned with transparent huge pages asked for, because such
// memory is first touched by block copies on the engine thread, which would
// otherwise take a page fault every 4 KiB (18.9 MB of KV: ~4,600 faults).
// Free with std::free; nullptr when the memory cannot be had.
std::byte* AllocateHostBlockMemory(size_t bytes);

// Owns the arena memory (64-byte aligned). Not thread-safe for concurrent
// writes to the same block; distinct blocks may be written from any thread.
class KvArena {
 public:
  // INVALID_ARGUMENT for a non-positive dimension or block count or a dtype
  // other than kBF16/kF32; RESOURCE_EXHAUSTED if the memory cannot be had.
  static absl::StatusOr<std::unique_ptr<KvArena>> Create(const KvCacheSpec& spec,
                                                         int64_t num_blocks);
  ~KvArena();
  KvArena(const KvArena&) = delete;
  KvArena& operator=(const KvArena&) = delete;

  const KvCacheSpec& spec() const { return spec_; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t bytes_per_block() const { return bytes_per_block_; }
  KvLayout layout() const { return layout_; }
  KvArenaInfo info() const { return {spec_, num_blocks_, bytes_per_block_, layout_}; }

  // The whole block: bytes_per_block() bytes. CHECKs the id (callers validate).
  // Blocks lie in one allocation, block b at BlockData(0) + b *
  // bytes_per_block(): the AMX attention's chunk map relies on that.
  std::byte* BlockData(BlockId block);
  const std::byte* BlockData(BlockId block) const;

  // Start of [block_size][head_dim] keys (is_value false) or values of
  // (block, layer, kv_head), elements of spec().dtype.
  std::byte* HeadData(BlockId block, int64_t layer, bool is_value, int64_t kv_head);
  const std::byte* HeadData(BlockId block, int64_t layer, bool is_value, int64_t kv_head) const;

  // Token `slot`'s row of (block, layer, kv_head) keys or values, to or from
  // fp32 whatever the dtype and layout. CHECKs the block id.
  void ReadRow(BlockId block, int64_t layer, bool is_value, int64_t kv_head, int64_t slot,
               float* out) const;
  void WriteRow(BlockId block, int64_t layer, bool is_value, int64_t kv_head, int64_t slot,
                const float* row);

  // Block `block` to or from token rows (KvLayout::kRows, the CUDA
  // backend's blocks): bytes_per_block() bytes, element for element, so
  // with the same bits. For an arena in rows, a copy of BlockData.
  void ExportRows(BlockId block, std::byte* rows) const;
  void ImportRows(BlockId block, const std::byte* rows);

  // OK when every move names blocks in range and, for a tier move, a host
  // span of exactly bytes_per_block() bytes; INVALID_ARGUMENT naming the
  // first bad move otherwise.
  absl::Status ValidateMoves(absl::Span<const BlockMove> moves) const;

  // Performs the moves as if in order, one copy per block: within the
  // arena, arena -> host (demotion, with non-temporal stores) and host ->
  // arena (promotion). With `pool`, consecutive tier moves of one kind are
  // split across its threads. Validates all first: INVALID_ARGUMENT and
  // nothing moved on a bad move.
  absl::Status CopyBlocks(absl::Span<const BlockMove> moves, ThreadPool* pool = nullptr);

 private:
  KvArena(const KvCacheSpec& spec, int64_t num_blocks, std::byte* data);
  void CopyBlock(const BlockMove& move);
  // Each element of the block, as (offset in rows, offset here) in elements.
  template <typename Visit>
  void ForEachElement(Visit&& visit) const;

  KvCacheSpec spec_;
  KvLayout layout_;
  int64_t num_blocks_;
  int64_t bytes_per_block_;
  int64_t bytes_per_head_;  // block_size * head_dim * element size
  std::byte* data_;         // owned; std::free
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_KV_ARENA_H_
