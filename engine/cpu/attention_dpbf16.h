// AVX512-BF16 variant of AttendTile (engine/cpu/attention.h) for the bf16
// precision mode on CPUs without AMX (AMD Zen 4 and 5, Intel Cooper Lake):
// q is rounded to bf16, q.K^T is formed by vdpbf16ps from the arena's bf16
// keys, and the softmax weights are rounded to bf16 and multiplied into the
// bf16 values by vdpbf16ps, in fp32 accumulators. It computes what the AMX
// kernel computes (attention_amx.h), in its own fixed order; without it,
// these CPUs widened every key and value to fp32 first, which made
// attention as costly as all the GEMMs of a 2k-token prefill.
//
// The arena keeps bf16 K and V in chunks of 16 tokens laid out for these
// products (engine/cpu/kv_layout.h), which the kernel reads in place: keys as
// [dim pair][16 keys][2], so one vdpbf16ps adds one dim pair of q into the
// scores of 16 keys (each score a chain over the dim pairs in order, with no
// horizontal sum); values as [16-dim tile][key pair][16 dims][2], so one
// vdpbf16ps adds a key pair's weighted values into 16 output dims (each
// output dim two chains, over the even and the odd key pairs in order, added
// at the end).
//
// A tile of many queries (prefill) runs them 16 at a time over the same
// chunks; a tile of a few (decode) streams the chunks once, each asked for a
// step ahead. Keys past a query's count enter with weight exactly 0, so a
// query's result depends only on its q, its key count and the arena: batch
// invariance holds as for AttendTile.
#ifndef STRATA_ENGINE_CPU_ATTENTION_DPBF16_H_
#define STRATA_ENGINE_CPU_ATTENTION_DPBF16_H_

#include "engine/cpu/attention.h"

namespace strata::engine::cpu {

// Whether AttendTileDpbf16 runs tiles over an arena of `spec` on this CPU:
// AVX512-BF16 and an arena in KvLayout::kChunks (bf16 K/V, head_dim a
// multiple of 32 up to 512, block_size a multiple of 16).
bool Dpbf16AttentionSupported(const KvCacheSpec& spec);

// AttendTile's contract, bf16 products (see above). Requires
// Dpbf16AttentionSupported(tile.arena->spec()). Thread-safe (per-thread
// scratch).
void AttendTileDpbf16(const AttentionTile& tile);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ATTENTION_DPBF16_H_
