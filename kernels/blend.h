// CacheBlend's kernels (engine/step.h BlendSpec), twins of the CPU
// reference in engine/cpu/kv_blend.h:
//  - LaunchBlendPlace: copies cached chunk tokens' K/V (every layer and kv
//    head) from their own arena slots to the sequence's slots, rotating K by
//    the RoPE delta between the two positions (cpu::RerotationAngles: fp32
//    angles, their difference in double, cos/sin in double rounded to fp32;
//    cpu::RotateHead's unfused products), V and zero-delta K copied bit for
//    bit. Tokens of any number of chunks and sequences go in one launch.
//  - LaunchKvDeviation: per token, cpu::KvDeviation: over kv heads and
//    K|V, the squared distance of the fresh fp32 vector (QKV rows after RoPE)
//    from the bf16 one cached at its slot in one layer, divided by the cached
//    vector's squared size (+1e-6), in double. One warp per token: lane l
//    takes vectors l, l + 32, ..., each summed in order, then a fixed
//    shuffle tree; no atomics, so the result is the same every run. It
//    differs from the CPU's sequential sum by double rounding only (~1e-15
//    relative). The selection (cpu::SelectMostDeviating, ties to the lower
//    index) runs on the host over the copied-back deviations.
//  - LaunchRowGather: dst row i = src row rows[i], for compacting activations
//    (residual stream, QKV rows) to the tokens kept after a check layer.
// Launchers return the launch's cudaError_t (cudaErrorInvalidValue for
// shapes outside kernels/dispatch.h or bad sizes). Pointers are caller-owned
// device memory. Thread-safe.
#ifndef STRATA_KERNELS_BLEND_H_
#define STRATA_KERNELS_BLEND_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "kernels/paged_kv.h"

namespace strata::kernels {

// A slot is block_id * block_size + offset in block, as in kv_append.h.
struct BlendPlaceParams {
  PagedKv kv;
  const int32_t* src_slots = nullptr;  // [tokens] where the chunk's standalone K/V is
  const int32_t* dst_slots = nullptr;  // [tokens] the sequence's slot for it
  // [tokens] the position the cached K was rotated for (its chunk-local
  // position) and the one it moves to; equal: a bit copy.
  const int32_t* from_positions = nullptr;
  const int32_t* to_positions = nullptr;
  const float* inv_freq = nullptr;  // [head_dim / 2], cpu::RopeInverseFrequencies
  int tokens = 0;
};

// No destination slot may be a source slot of the same launch, and
// destination slots must be distinct.
cudaError_t LaunchBlendPlace(const BlendPlaceParams& params, cudaStream_t stream);

struct KvDeviationParams {
  PagedKv kv;
  int layer = 0;
  const float* qkv = nullptr;      // fresh rows, [*, row_stride] fp32
  int row_stride = 0;              // floats per qkv row
  int k_offset = 0;                // column of k head 0 (num_heads * head_dim)
  int v_offset = 0;                // column of v head 0 ((num_heads + num_kv_heads) * head_dim)
  const int32_t* rows = nullptr;   // [tokens] qkv row of each token
  const int32_t* slots = nullptr;  // [tokens] its cached slot
  double* deviation = nullptr;     // [tokens] out
  int tokens = 0;
};

cudaError_t LaunchKvDeviation(const KvDeviationParams& params, cudaStream_t stream);

struct RowGatherParams {
  const std::byte* src = nullptr;
  std::byte* dst = nullptr;       // must not overlap src
  int64_t src_row_bytes = 0;      // stride of src rows, a multiple of 16
  int64_t dst_row_bytes = 0;      // stride of dst rows, a multiple of 16
  int64_t copy_bytes = 0;         // bytes copied per row, a multiple of 16
  const int32_t* rows = nullptr;  // [count] source row of each destination row
  int count = 0;
};

cudaError_t LaunchRowGather(const RowGatherParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_BLEND_H_
