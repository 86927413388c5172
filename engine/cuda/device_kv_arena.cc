#include "engine/cuda/device_kv_arena.h"

#include <algorithm>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "engine/block_moves.h"
#include "engine/cuda/cuda_status.h"
#include "kernels/block_copy.h"

namespace strata::engine::cuda {

absl::StatusOr<std::unique_ptr<DeviceKvArena>> DeviceKvArena::Create(const KvCacheSpec& spec,
                                                                     int64_t num_blocks) {
  if (spec.num_layers <= 0 || spec.num_kv_heads <= 0 || spec.head_dim <= 0 ||
      spec.block_size <= 0 || num_blocks <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV arena dimensions must be positive: layers=", spec.num_layers,
                     " kv_heads=", spec.num_kv_heads, " head_dim=", spec.head_dim,
                     " block_size=", spec.block_size, " blocks=", num_blocks));
  }
  if (spec.dtype != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("the cuda backend's KV dtype must be BF16, got ",
                                                   std::string(DTypeName(spec.dtype))));
  }
  if ((num_blocks + 1) * spec.block_size > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat("KV arena of ", num_blocks, " blocks of ",
                                                   spec.block_size,
                                                   " tokens has more slots than int32 indexes"));
  }
  auto arena = std::unique_ptr<DeviceKvArena>(new DeviceKvArena());
  arena->spec_ = spec;
  arena->num_blocks_ = num_blocks;
  arena->bytes_per_block_ = spec.BytesPerBlock();
  const size_t bytes =
      static_cast<size_t>(arena->bytes_per_block_) * static_cast<size_t>(num_blocks + 1);
  absl::StatusOr<DeviceBuffer> data = DeviceBuffer::Allocate(bytes);
  if (!data.ok()) return data.status();
  arena->data_ = *std::move(data);
  // Zeroed so that a never-written slot reads as zeros, as on the CPU.
  STRATA_CUDA_RETURN_IF_ERROR(cudaMemset(arena->data_.data(), 0, bytes));
  return arena;
}

kernels::PagedKv DeviceKvArena::view() const {
  kernels::PagedKv kv;
  kv.data = data_.as<__nv_bfloat16>();
  kv.block_elements = bytes_per_block_ / 2;
  kv.num_layers = static_cast<int>(spec_.num_layers);
  kv.num_kv_heads = static_cast<int>(spec_.num_kv_heads);
  kv.block_size = static_cast<int>(spec_.block_size);
  kv.head_dim = static_cast<int>(spec_.head_dim);
  return kv;
}

std::byte* DeviceKvArena::BlockData(BlockId block) const {
  CHECK(block >= 0 && block <= num_blocks_);
  return data_.as<std::byte>() + static_cast<size_t>(block) * static_cast<size_t>(bytes_per_block_);
}

absl::Status DeviceKvArena::ValidateMoves(absl::Span<const BlockMove> moves) const {
  return ValidateBlockMoves(moves, num_blocks_, bytes_per_block_);
}

// One kernel for pending_src_/pending_dst_, whose ids go at [first, first +
// count) of the staging arrays.
absl::Status DeviceKvArena::FlushCopies(size_t first, size_t count, cudaStream_t stream) {
  if (count == 0) return absl::OkStatus();
  int32_t* host = copy_ids_host_->as<int32_t>();
  const size_t capacity = copy_ids_host_->size() / sizeof(int32_t) / 2;
  std::copy(pending_src_.begin(), pending_src_.end(), host + first);
  std::copy(pending_dst_.begin(), pending_dst_.end(), host + capacity + first);
  int32_t* device = copy_ids_.as<int32_t>();
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(device + first, host + first, count * 4, cudaMemcpyHostToDevice, stream));
  STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device + capacity + first, host + capacity + first,
                                              count * 4, cudaMemcpyHostToDevice, stream));
  kernels::BlockCopyParams params;
  params.src = data_.as<std::byte>();
  params.dst = data_.as<std::byte>();
  params.src_blocks = device + first;
  params.dst_blocks = device + capacity + first;
  params.block_bytes = bytes_per_block_;
  params.count = static_cast<int>(count);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchBlockCopy(params, stream));
  pending_src_.clear();
  pending_dst_.clear();
  return absl::OkStatus();
}

absl::Status DeviceKvArena::EnqueueMoves(absl::Span<const BlockMove> moves, cudaStream_t stream) {
  STRATA_RETURN_IF_ERROR(ValidateMoves(moves));
  if (moves.empty()) return absl::OkStatus();
  const size_t ids_bytes = moves.size() * 2 * sizeof(int32_t);
  if (copy_ids_host_ == nullptr || copy_ids_host_->size() < ids_bytes) {
    absl::StatusOr<std::unique_ptr<PinnedBuffer>> host = PinnedBuffer::Allocate(ids_bytes);
    if (!host.ok()) return host.status();
    copy_ids_host_ = *std::move(host);
    absl::StatusOr<bool> grown = copy_ids_.Reserve(ids_bytes);
    if (!grown.ok()) return grown.status();
    if (copy_ids_.size() < ids_bytes) return absl::InternalError("copy id buffer too small");
  }
  const size_t block_bytes = static_cast<size_t>(bytes_per_block_);
  // A run of in-arena copies goes to one kernel as long as no copy in it
  // touches a block an earlier copy of the run writes or reads: the kernel
  // performs them in parallel, the plan asks for them in order.
  absl::flat_hash_set<BlockId> run_reads, run_writes;
  size_t run_first = 0, next_slot = 0;
  for (const BlockMove& move : moves) {
    const bool batchable = move.kind == BlockMoveKind::kCopy && move.src != move.dst &&
                           !run_writes.contains(move.src) && !run_writes.contains(move.dst) &&
                           !run_reads.contains(move.dst);
    if (!batchable || move.kind != BlockMoveKind::kCopy) {
      STRATA_RETURN_IF_ERROR(FlushCopies(run_first, pending_src_.size(), stream));
      run_reads.clear();
      run_writes.clear();
      run_first = next_slot;
    }
    switch (move.kind) {
      case BlockMoveKind::kCopy:
        if (move.src == move.dst) break;
        pending_src_.push_back(move.src);
        pending_dst_.push_back(move.dst);
        run_reads.insert(move.src);
        run_writes.insert(move.dst);
        ++next_slot;
        break;
      case BlockMoveKind::kDeviceToHost:
        STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(move.host_dst.data(), BlockData(move.src),
                                                    block_bytes, cudaMemcpyDeviceToHost, stream));
        break;
      case BlockMoveKind::kHostToDevice:
        STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(BlockData(move.dst), move.host_src.data(),
                                                    block_bytes, cudaMemcpyHostToDevice, stream));
        break;
    }
  }
  return FlushCopies(run_first, pending_src_.size(), stream);
}

}  // namespace strata::engine::cuda
