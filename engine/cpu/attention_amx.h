// AMX variant of AttendTile (engine/cpu/attention.h) for the bf16 precision
// mode: q is rounded to bf16 and q.K^T is formed by tdpbf16ps from the
// arena's bf16 keys (no widening pass); the softmax weights are rounded
// to bf16 and multiplied into the bf16 values by tdpbf16ps, in fp32
// accumulators. This is what bf16 serving engines compute (bf16 flash
// attention); it is not used by the exact modes.
//
// A tile of many queries (prefill) first packs the keys and values it
// needs, once for all its queries: keys transposed into B tiles, so that q
// is the A side and the scores come out as a row per query; values
// interleaved by key pairs. A tile of a few (decode) reads the keys straight
// from the arena as the A side, q^T as B, and packs each span of values just
// before its products. Either way each score is the same dot product, dim
// pairs in the same order (q and k only trade places), so both give the same
// bits.
//
// Batch invariance holds as for AttendTile: every query is a row or column
// of its own in the tiles, whose width and height do not change it; the
// scores run over keys in position order from 0, the weighted sum over spans
// of 32 keys in order; the softmax max and sum run per query over its own
// keys only (lanes over the spans in order, then a fixed tree); and keys
// past a query's count enter the weighted sum with weight exactly 0. So a
// query's result depends only on its q, its key count and the arena, not on
// the other queries of the tile or the tile's size, and prefill and decode
// compute a position alike.
#ifndef STRATA_ENGINE_CPU_ATTENTION_AMX_H_
#define STRATA_ENGINE_CPU_ATTENTION_AMX_H_

#include "engine/cpu/attention.h"

namespace strata::engine::cpu {

// Whether AttendTileAmx runs tiles over an arena of `spec` on this CPU: AMX
// usable, bf16 K/V, head_dim a multiple of 32 (<= 512) and block_size a
// multiple of 16.
bool AmxAttentionSupported(const KvCacheSpec& spec);

// AttendTile's contract, bf16 products (see above). Requires
// AmxAttentionSupported(tile.arena->spec()). Thread-safe (per-thread scratch).
void AttendTileAmx(const AttentionTile& tile);


}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ATTENTION_AMX_H_
