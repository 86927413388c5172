// The host side of a CacheBlend step on the CUDA backend (engine/step.h,
// BlendSpec), following the CPU decoder: where each chunk token's cached
// K/V goes (the arrays of kernels::LaunchBlendPlace), which rows the forward
// pass computes, and the selection at each check layer, made on the host
// over the deviations the GPU measured, with the CPU's own rules
// (engine/cpu/kv_blend.h: CheckLayerRatio, KeptCount, SelectMostDeviating),
// so both backends keep the same number of tokens and break ties alike.
//
// Rows: every token of the plan's spans, grouped by sequence in plan order.
// A blend sequence's chunk tokens are candidates for dropping, except the
// span's last token (its logits are the step's output). Sequences without
// check layers drop their candidates up front (naive concatenation).
// Host-only; not thread-safe (one engine thread).
#ifndef STRATA_ENGINE_CUDA_BLEND_LAYOUT_H_
#define STRATA_ENGINE_CUDA_BLEND_LAYOUT_H_

#include <cstdint>
#include <vector>

#include "engine/cuda/step_layout.h"
#include "engine/step.h"

namespace strata::engine::cuda {

// Per chunk token of every blend sequence: its standalone slot, the
// sequence's slot for it, its chunk-local position and its new position.
struct BlendPlacement {
  std::vector<int32_t> src_slots, dst_slots, from_positions, to_positions;
};

BlendPlacement BuildBlendPlacement(const StepPlan& plan, int64_t block_size);

struct BlendOutcomeCounts {
  int64_t reused_tokens = 0;      // chunk tokens whose placed K/V was kept
  int64_t recomputed_tokens = 0;  // chunk tokens computed through every layer
};

// The rows of one forward pass and the blend selections that shrink them.
class BlendRows {
 public:
  explicit BlendRows(const StepPlan& plan);

  // The rows computed now, for BuildRowsStep.
  const std::vector<StepRow>& rows() const { return rows_; }

  // Indices (into rows()) of the candidate rows of every blend sequence
  // whose next check layer is `layer`, ascending; empty when none checks.
  std::vector<int32_t> Candidates(int layer) const;

  // Given the deviations of Candidates(layer) (same order), keeps the most
  // deviating share of each checking sequence's candidates and drops the
  // rest. Returns the indices (into rows() before the call) of the rows
  // kept, ascending; rows() then holds only those.
  std::vector<int32_t> Select(int layer, const std::vector<double>& deviation);

  // Per plan sequence (zeros for sequences without blend), after the last
  // layer.
  std::vector<BlendOutcomeCounts> Outcomes() const;

 private:
  struct Run {
    const BlendSpec* spec = nullptr;
    int64_t chunk_total = 0;  // chunk tokens in the span
    size_t next_check = 0;    // index into spec->check_layers
  };

  std::vector<Run> runs_;  // per plan sequence; spec null without blend
  std::vector<StepRow> rows_;
  std::vector<char> candidate_;  // per row: a chunk token that may be dropped
  std::vector<char> chunk_;      // per row: a chunk token
};

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_BLEND_LAYOUT_H_
