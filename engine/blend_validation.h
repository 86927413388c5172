// Validation of a CacheBlend step (engine/step.h, BlendSpec), one set of
// rules for every backend (like engine/block_moves.h): chunk
// positions inside the span, ascending and disjoint; one source block per
// block_size tokens, each in the arena and not among the blocks the step
// writes; a recompute ratio in [0, 1]; check layers ascending below
// num_layers. Pure host code; thread-safe.
#ifndef STRATA_ENGINE_BLEND_VALIDATION_H_
#define STRATA_ENGINE_BLEND_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "engine/step.h"

namespace strata::engine {

// OK when `seq` has no blend or a valid one; INVALID_ARGUMENT naming the
// sequence and the first bad field otherwise. `seq`'s block table must
// already be known to cover its span.
absl::Status ValidateBlend(const SequenceStep& seq, int64_t num_layers, int64_t block_size,
                           int64_t num_blocks);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_BLEND_VALIDATION_H_
