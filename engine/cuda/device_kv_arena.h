// The CUDA backend's paged KV cache in device memory: the CPU arena's block
// layout (engine/cpu/kv_arena.h, kernels/paged_kv.h), so a block demoted by
// one backend can be promoted by the other. One extra block past the
// visible ones is scratch for the padding rows of CUDA graphs.
//
// Tier moves are enqueued on a stream the caller names (the backend's
// transfer stream): host <-> device blocks as one cudaMemcpyAsync each
// (full PCIe bandwidth from pinned memory; pageable memory works too, at a
// bandwidth cost), and runs of in-arena copies as one block-copy kernel.
// Not thread-safe: the engine thread.
#ifndef STRATA_ENGINE_CUDA_DEVICE_KV_ARENA_H_
#define STRATA_ENGINE_CUDA_DEVICE_KV_ARENA_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/backend.h"
#include "engine/cuda/device_memory.h"
#include "engine/step.h"
#include "kernels/paged_kv.h"

namespace strata::engine::cuda {

class DeviceKvArena {
 public:
  // INVALID_ARGUMENT for non-positive dimensions, a dtype other than BF16,
  // or more slots than int32 indexes; RESOURCE_EXHAUSTED when the device is
  // full. The memory starts zeroed.
  static absl::StatusOr<std::unique_ptr<DeviceKvArena>> Create(const KvCacheSpec& spec,
                                                               int64_t num_blocks);

  const KvCacheSpec& spec() const { return spec_; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t bytes_per_block() const { return bytes_per_block_; }
  KvArenaInfo info() const { return {spec_, num_blocks_, bytes_per_block_}; }
  // The hidden block graph padding rows write into.
  BlockId scratch_block() const { return static_cast<BlockId>(num_blocks_); }
  kernels::PagedKv view() const;
  std::byte* BlockData(BlockId block) const;

  // The CPU arena's rules: ids in range, host spans of exactly one block.
  absl::Status ValidateMoves(absl::Span<const BlockMove> moves) const;
  // Validates, then enqueues the moves in order on `stream`. The host
  // memory must stay valid until the stream has run them.
  absl::Status EnqueueMoves(absl::Span<const BlockMove> moves, cudaStream_t stream);

 private:
  DeviceKvArena() = default;
  absl::Status FlushCopies(size_t first, size_t count, cudaStream_t stream);

  KvCacheSpec spec_;
  int64_t num_blocks_ = 0;
  int64_t bytes_per_block_ = 0;
  DeviceBuffer data_;
  // Staging for the block ids of batched in-arena copies: src ids then dst
  // ids per move of one EnqueueMoves call. The backend synchronises before
  // the next call reuses them.
  std::unique_ptr<PinnedBuffer> copy_ids_host_;
  DeviceBuffer copy_ids_;
  std::vector<int32_t> pending_src_, pending_dst_;
};

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_DEVICE_KV_ARENA_H_
