// Validation of a whole StepPlan (engine/step.h) against a backend's model
// and arena, one set of rules for every backend: each sequence once, tokens
// to compute inside the vocabulary, positions inside the model's context, a
// block table covering the span with ids inside the arena, valid sampling
// parameters, and a valid blend (engine/blend_validation.h). Block moves are
// checked by the arena (engine/block_moves.h), which knows what it holds.
// Pure host code; thread-safe.
#ifndef STRATA_ENGINE_STEP_VALIDATION_H_
#define STRATA_ENGINE_STEP_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "engine/step.h"

namespace strata::engine {

// What a plan is checked against.
struct StepLimits {
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;  // 0: unbounded
  int64_t num_layers = 0;
  int64_t block_size = 0;
  int64_t num_blocks = 0;  // in the arena
};

// OK, or INVALID_ARGUMENT naming the sequence and the first bad field.
absl::Status ValidateStepPlan(const StepPlan& plan, const StepLimits& limits);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_STEP_VALIDATION_H_
