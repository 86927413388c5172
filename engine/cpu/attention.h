// Causal attention of the CPU backend over the paged KV arena, one tile of
// query vectors at a time. A tile holds query vectors (token rows x query
// heads) of ONE sequence that share ONE kv head, so each K/V block the tile
// needs is read from the arena and widened to fp32 once for all of them, and
// the scores of 16 keys are formed together (SIMD across head_dim, then one
// shared horizontal reduction) instead of one horizontal sum per key.
//
// Batch invariance: a query vector's result depends only on its own q, its
// key count and the arena contents, never on the other vectors of the tile,
// on the tile split or on which thread runs it. Each score is a dot product
// with a fixed per-key operation sequence (the reduction tree is the same for
// every key lane); the softmax sums run over absolute key positions from 0
// in a fixed lane layout; and the weighted sum over values walks the KV
// blocks in order, each block split by the same rule for every caller (the
// block size and the query's key count fix it). So a prompt's logits do not
// depend on how it was chunked.
#ifndef STRATA_ENGINE_CPU_ATTENTION_H_
#define STRATA_ENGINE_CPU_ATTENTION_H_

#include <cstdint>

#include "absl/types/span.h"
#include "engine/cpu/kv_arena.h"

namespace strata::engine::cpu {

struct AttentionQuery {
  const float* q;  // head_dim floats
  int64_t count;   // attends to keys 0..count-1 (causal: position + 1), >= 1
  float* out;      // head_dim floats, overwritten
};

struct AttentionTile {
  const KvArena* arena = nullptr;
  int64_t layer = 0;
  int64_t kv_head = 0;
  absl::Span<const BlockId> block_table;  // covers the largest count
  absl::Span<const AttentionQuery> queries;
  float scale = 1.0f;  // applied to q.k before the softmax
  // The bf16 precision mode: bf16 q, softmax weights and products with fp32
  // accumulation, on AMX (engine/cpu/attention_amx.h) or else AVX512-BF16
  // (engine/cpu/attention_dpbf16.h) where this CPU and the arena's shapes
  // allow; fp32 products otherwise.
  bool bf16_products = false;
};

// The kernels AttendTile chooses from, by what the CPU reports and the
// arena's shapes: bf16 products on AMX, else AVX512-BF16; fp32 products
// with AVX-512, else portable C++.
enum class AttentionKernel { kAmx, kAvx512Bf16, kF32Avx512, kF32Scalar };

// The kernel AttendTile runs for tiles over an arena of `spec` on this CPU.
AttentionKernel PickAttentionKernel(const KvCacheSpec& spec, bool bf16_products);

// "amx", "avx512bf16", "f32-avx512" or "f32-scalar" (for reports).
const char* AttentionKernelName(AttentionKernel kernel);

// Computes softmax(scale * q.K^T) V for every query of the tile on the
// calling thread. Thread-safe (per-thread scratch); allocates only when the
// scratch must grow.
void AttendTile(const AttentionTile& tile);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ATTENTION_H_
