// The CPU reference of CacheBlend's three kernels (engine/step.h, BlendSpec):
// placing a chunk's standalone K/V at a new position with K re-rotated, the
// per-token deviation of fresh K/V from the placed cache at a check layer,
// and the deterministic choice of the tokens to recompute. The CUDA backend's
// kernels (kernels/blend.cuh) are tested against these.
//
// Re-rotation. RoPE rotates each (i, i + head_dim/2) pair of a key by
// position * inv_freq[i]; rotations compose, so a key computed at chunk-local
// position p moves to position P by one more rotation. The angle of that
// rotation is the difference of the two angles exactly as the forward pass
// forms them (fp32 products, taken apart in double), so the result matches a
// key computed at P to fp32 rounding of the cos/sin products, whatever the
// rope scaling (default, linear, llama3 only change inv_freq). A zero delta
// copies the bits untouched.
#ifndef STRATA_ENGINE_CPU_KV_BLEND_H_
#define STRATA_ENGINE_CPU_KV_BLEND_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/cpu/kv_arena.h"
#include "engine/cpu/thread_pool.h"
#include "engine/step.h"

namespace strata::engine::cpu {

// cos and sin of the rotation that moves a key from position `from` to
// position `to`, one per frequency (inv_freq.size() == head_dim / 2).
void RerotationAngles(int64_t from, int64_t to, absl::Span<const float> inv_freq, float* cos_out,
                      float* sin_out);

// Rotates one head vector (head_dim = 2 * half floats) in place by the
// angles from RerotationAngles, in the forward pass's pair layout.
void RotateHead(float* v, int64_t half, const float* cos_v, const float* sin_v);

// Copies `chunk`'s K/V (all layers and kv heads) from its own blocks, at
// positions source_position .. + length - 1 there, into the blocks of `table`
// at positions chunk.position .. + length - 1, re-rotating K by the position
// delta (bit copy when it is 0). The caller has validated
// the ids and that no source block is a destination. Splits the work over
// `pool`; the result does not depend on the split.
void PlaceChunk(const BlendChunk& chunk, absl::Span<const BlockId> table,
                absl::Span<const float> inv_freq, KvArena& arena, ThreadPool& pool);

// How far one token's fresh K/V at `layer` is from the cached values in the
// arena at (block, slot): the sum over kv heads of
// |k_fresh - k_cached|^2 / (|k_cached|^2 + 1e-6) and the same for V, so each
// head weighs the same whatever its scale (on aidreams260K this selects
// better than the plain squared distance: KL 3.3x vs 2.9x below naive at
// r = 0.15, one check layer). `fresh_k` and `fresh_v` hold
// num_kv_heads * head_dim floats each. Accumulated in double in a fixed
// order.
double KvDeviation(const float* fresh_k, const float* fresh_v, const KvArena& arena, int64_t layer,
                   BlockId block, int64_t slot);

// The kept fraction at check layer `index` of `count` (gradual filtering):
// linear from min(1, 2 r) at the first to r at the last; r when count is 1.
float CheckLayerRatio(float recompute_ratio, int64_t index, int64_t count);

// Indices (ascending) of the `keep` largest deviations; ties go to the lower
// index, so the choice is deterministic. keep is clamped to the size.
std::vector<int64_t> SelectMostDeviating(absl::Span<const double> deviation, int64_t keep);

// How many of `total` chunk tokens a ratio keeps: ceil(ratio * total),
// computed so that ratio 1 keeps all and 0 keeps none.
int64_t KeptCount(float ratio, int64_t total);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_KV_BLEND_H_
