// Random weights for any ModelConfig, so benchmarks can run large shapes
// without a checkpoint. Weights are bf16 (what the CPU backend computes in),
// scaled like a trained model's (std 0.02, unit norms) so activations stay
// finite through many layers.
#ifndef STRATA_ENGINE_CPU_RANDOM_WEIGHTS_H_
#define STRATA_ENGINE_CPU_RANDOM_WEIGHTS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/model_weights.h"

namespace strata::engine::cpu {

// Deterministic in `seed`. The returned model owns its buffers (weights.storage).
// INVALID_ARGUMENT for non-positive dimensions; RESOURCE_EXHAUSTED if the
// weights do not fit in memory.
absl::StatusOr<LoadedModel> MakeRandomModel(const ModelConfig& config, uint64_t seed);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_RANDOM_WEIGHTS_H_
