// The rules every backend's KV arena holds block moves to, in one place so
// that the CPU and CUDA arenas cannot drift apart.
#ifndef STRATA_ENGINE_BLOCK_MOVES_H_
#define STRATA_ENGINE_BLOCK_MOVES_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/step.h"

namespace strata::engine {

// OK when every move names blocks in [0, num_blocks) and, for a tier move, a
// host span of exactly `bytes_per_block` bytes; INVALID_ARGUMENT naming the
// first bad move otherwise. Pure; thread-safe.
absl::Status ValidateBlockMoves(absl::Span<const BlockMove> moves, int64_t num_blocks,
                                int64_t bytes_per_block);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_BLOCK_MOVES_H_
