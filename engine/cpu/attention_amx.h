// AMX variant of AttendTile (engine/cpu/attention.h) for the bf16 precision
// mode: q is rounded to bf16 and q.K^T is formed by tdpbf16ps from the
// arena's bf16 keys (no widening pass); the softmax weights are rounded
// to bf16 and multiplied into the bf16 values by tdpbf16ps, in fp32
// accumulators. This is what bf16 serving engines compute (bf16 flash
// attention); it is not used by the exact modes.
//
// The arena keeps bf16 keys in chunks of 16 that are score B tiles already
// (engine/cpu/kv_layout.h), so q is the A side and the scores come out as a
// row per query, with no packing of keys. Values are copied into B tiles a
// span (32 keys) at a time: once for all queries by a tile of many (prefill),
// just before its products by a tile of a few (decode). Each score is a dot
// product with the dim pairs in order.
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
// usable and an arena in KvLayout::kChunks (bf16 K/V, head_dim a multiple of
// 32 up to 512, block_size a multiple of 16).
bool AmxAttentionSupported(const KvCacheSpec& spec);

// AttendTile's contract, bf16 products (see above). Requires
// AmxAttentionSupported(tile.arena->spec()). Thread-safe (per-thread scratch).
void AttendTileAmx(const AttentionTile& tile);


}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ATTENTION_AMX_H_
