#include "engine/cpu/kv_arena.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "engine/block_moves.h"

namespace strata::engine::cpu {

absl::StatusOr<std::unique_ptr<KvArena>> KvArena::Create(const KvCacheSpec& spec,
                                                         int64_t num_blocks) {
  if (spec.num_layers <= 0 || spec.num_kv_heads <= 0 || spec.head_dim <= 0 ||
      spec.block_size <= 0 || num_blocks <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV arena dimensions must be positive: layers=", spec.num_layers,
        " kv_heads=", spec.num_kv_heads, " head_dim=", spec.head_dim,
        " block_size=", spec.block_size, " blocks=", num_blocks));
  }
  if (spec.dtype != DType::kBF16 && spec.dtype != DType::kF32) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV dtype must be BF16 or F32, got ", std::string(DTypeName(spec.dtype))));
  }
  const int64_t block_bytes = spec.BytesPerBlock();
  // Round each block up to a cache line so blocks never share one.
  const size_t total = static_cast<size_t>(block_bytes) * static_cast<size_t>(num_blocks);
  // On 2 MiB boundaries and offered for transparent huge pages: attention
  // reads one head's slice of each block (a few KiB, a block apart), which
  // with 4 KiB pages costs a TLB miss per slice.
  constexpr size_t kHugePage = size_t{2} << 20;
  const size_t rounded = (total + kHugePage - 1) / kHugePage * kHugePage;
  void* data = std::aligned_alloc(kHugePage, rounded);
  if (data == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate a KV arena of ", rounded, " bytes"));
  }
  madvise(data, rounded, MADV_HUGEPAGE);  // a hint; ignored where THP is off
  // Zeroed so that reading a never-written slot is benign (it never happens
  // for valid plans, but keeps results deterministic if a bug did).
  std::memset(data, 0, rounded);
  return std::unique_ptr<KvArena>(new KvArena(spec, num_blocks, static_cast<std::byte*>(data)));
}

KvArena::KvArena(const KvCacheSpec& spec, int64_t num_blocks, std::byte* data)
    : spec_(spec),
      num_blocks_(num_blocks),
      bytes_per_block_(spec.BytesPerBlock()),
      bytes_per_head_(spec.block_size * spec.head_dim *
                      static_cast<int64_t>(DTypeSize(spec.dtype))),
      data_(data) {}

KvArena::~KvArena() { std::free(data_); }

std::byte* KvArena::BlockData(BlockId block) {
  CHECK(block >= 0 && block < num_blocks_);
  return data_ + static_cast<size_t>(block) * static_cast<size_t>(bytes_per_block_);
}

const std::byte* KvArena::BlockData(BlockId block) const {
  CHECK(block >= 0 && block < num_blocks_);
  return data_ + static_cast<size_t>(block) * static_cast<size_t>(bytes_per_block_);
}

std::byte* KvArena::HeadData(BlockId block, int64_t layer, bool is_value, int64_t kv_head) {
  return const_cast<std::byte*>(std::as_const(*this).HeadData(block, layer, is_value, kv_head));
}

const std::byte* KvArena::HeadData(BlockId block, int64_t layer, bool is_value,
                                   int64_t kv_head) const {
  const int64_t index = (layer * 2 + (is_value ? 1 : 0)) * spec_.num_kv_heads + kv_head;
  return BlockData(block) + index * bytes_per_head_;
}

absl::Status KvArena::ValidateMoves(absl::Span<const BlockMove> moves) const {
  return ValidateBlockMoves(moves, num_blocks_, bytes_per_block_);
}

absl::Status KvArena::CopyBlocks(absl::Span<const BlockMove> moves) {
  if (absl::Status valid = ValidateMoves(moves); !valid.ok()) return valid;
  const size_t block_bytes = static_cast<size_t>(bytes_per_block_);
  for (const BlockMove& move : moves) {
    switch (move.kind) {
      case BlockMoveKind::kCopy:
        if (move.src != move.dst) std::memcpy(BlockData(move.dst), BlockData(move.src), block_bytes);
        break;
      case BlockMoveKind::kDeviceToHost:
        std::memcpy(move.host_dst.data(), BlockData(move.src), block_bytes);
        break;
      case BlockMoveKind::kHostToDevice:
        std::memcpy(BlockData(move.dst), move.host_src.data(), block_bytes);
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::engine::cpu
