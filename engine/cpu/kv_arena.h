// The CPU backend's paged KV cache: num_blocks blocks of block_size tokens.
//
// In memory the arena is a run per (layer, k|v, kv_head), each holding that
// head's slice of every block side by side:
//   [layer][k|v][kv_head][block][block_size * head_dim elements]
// so one head's keys of one block are contiguous (the unit attention reads),
// and a sequence whose block table lists consecutive blocks has each head's
// keys (or values) of a layer in ONE stretch across its whole context.
// Decode attention streams those: the hardware prefetchers keep far more
// of a stream in flight than software can ask for a few KiB a block apart.
// One thread's decode attention at 2k tokens, blocks in order, read KV at
// 32 GB/s this way against 25 with a block's heads and layers side by side
// (AMD Zen 5); with blocks in random order, 22 against 24.
// Within a head's slice the elements lie as layout() says
// (engine/cpu/kv_layout.h): token rows, or for bf16 the attention kernels'
// chunks of 16 tokens; ReadRow and WriteRow hide the difference.
//
// A block leaves the arena (tier moves, ReadBlock) as its image: its head
// slices in [layer][k|v][kv_head] order, bytes_per_block() bytes. The image
// is what the host and disk tiers keep, so it does not depend on how the
// arena places the slices.
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

  // The block's image (see above) to or from `image`, bytes_per_block()
  // bytes. CHECK the id (callers validate).
  void ReadBlock(BlockId block, std::byte* image) const;
  void WriteBlock(BlockId block, const std::byte* image);

  // Start of [block_size][head_dim] keys (is_value false) or values of
  // (block, layer, kv_head), elements of spec().dtype. CHECKs the block id.
  std::byte* HeadData(BlockId block, int64_t layer, bool is_value, int64_t kv_head);
  const std::byte* HeadData(BlockId block, int64_t layer, bool is_value, int64_t kv_head) const;
  // Bytes from a head's data in block b to the same head's in block b + 1:
  // HeadData(b, ...) == HeadData(0, ...) + b * block_stride(). The attention
  // kernels' chunk maps rely on it.
  int64_t block_stride() const { return bytes_per_head_; }

  // Token `slot`'s row of (block, layer, kv_head) keys or values, to or from
  // fp32 whatever the dtype and layout. CHECKs the block id.
  void ReadRow(BlockId block, int64_t layer, bool is_value, int64_t kv_head, int64_t slot,
               float* out) const;
  void WriteRow(BlockId block, int64_t layer, bool is_value, int64_t kv_head, int64_t slot,
                const float* row);

  // Block `block` to or from token rows (KvLayout::kRows, the CUDA
  // backend's blocks): bytes_per_block() bytes, element for element, so
  // with the same bits. For an arena in rows, the block's image.
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
  int64_t num_runs() const { return spec_.num_layers * 2 * spec_.num_kv_heads; }
  // The block's slice of run `run` ((layer * 2 + is_value) * num_kv_heads +
  // kv_head): bytes_per_head_ bytes, at offset run * bytes_per_head_ of the
  // block's image.
  const std::byte* Run(BlockId block, int64_t run) const;
  std::byte* Run(BlockId block, int64_t run);
  // Slices [first, last) of the move's block (the runs, in image order).
  void CopySlices(const BlockMove& move, int64_t first, int64_t last);
  // Each element of one head's slice, as (index in rows, index here).
  template <typename Visit>
  void ForEachHeadElement(bool is_value, Visit&& visit) const;

  KvCacheSpec spec_;
  KvLayout layout_;
  int64_t num_blocks_;
  int64_t bytes_per_block_;
  int64_t bytes_per_head_;  // block_size * head_dim * element size
  std::byte* data_;         // owned; std::free
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_KV_ARENA_H_
