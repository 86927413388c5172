#include "engine/block_moves.h"

#include "absl/strings/str_cat.h"

namespace strata::engine {

absl::Status ValidateBlockMoves(absl::Span<const BlockMove> moves, int64_t num_blocks,
                                int64_t bytes_per_block) {
  const auto in_range = [&](BlockId id) { return id >= 0 && id < num_blocks; };
  const size_t block_bytes = static_cast<size_t>(bytes_per_block);
  for (const BlockMove& move : moves) {
    const bool reads_arena = move.kind != BlockMoveKind::kHostToDevice;
    const bool writes_arena = move.kind != BlockMoveKind::kDeviceToHost;
    if ((reads_arena && !in_range(move.src)) || (writes_arena && !in_range(move.dst))) {
      return absl::InvalidArgumentError(absl::StrCat("block move ", move.src, " -> ", move.dst,
                                                     " outside the arena of ", num_blocks,
                                                     " blocks"));
    }
    switch (move.kind) {
      case BlockMoveKind::kCopy:
        break;
      case BlockMoveKind::kDeviceToHost:
        if (move.host_dst.data() == nullptr || move.host_dst.size() != block_bytes) {
          return absl::InvalidArgumentError(
              absl::StrCat("demotion of block ", move.src, " into a host span of ",
                           move.host_dst.size(), " bytes; a block is ", block_bytes));
        }
        break;
      case BlockMoveKind::kHostToDevice:
        if (move.host_src.data() == nullptr || move.host_src.size() != block_bytes) {
          return absl::InvalidArgumentError(
              absl::StrCat("promotion into block ", move.dst, " from a host span of ",
                           move.host_src.size(), " bytes; a block is ", block_bytes));
        }
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("unknown block move kind ", static_cast<int>(move.kind)));
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::engine
