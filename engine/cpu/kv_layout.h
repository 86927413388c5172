// Where each element of one head's K or V lies in the CPU arena's block
// (KvArena::HeadData: block_size rows of head_dim elements).
//
// kRows: row t (a token) is head_dim contiguous elements. Used for fp32 KV
// and for bf16 shapes the bf16 attention kernels do not take.
//
// kChunks (bf16, block_size a multiple of 16, head_dim a multiple of 32): the
// rows are stored in chunks of 16 tokens, each chunk 16 * head_dim elements
// laid out the way the bf16 attention kernels multiply them, so that they
// read K and V straight from the arena with no per-read packing:
//   keys   [head_dim / 2 dim pairs][16 tokens][2]: one 64-byte vector holds
//          one dim pair of 16 keys (a vdpbf16ps operand; 16 pairs = an AMX
//          B tile of 32 dims);
//   values [head_dim / 16 dim tiles][8 token pairs][16 dims][2]: one 64-byte
//          vector holds 16 dims of two consecutive tokens, interleaved per
//          dim (a vdpbf16ps operand; 16 token pairs = an AMX B tile).
// Packing K and V into these shapes on every read cost decode attention a
// quarter of its speed (a 16 x 16 transpose per 32 dims of every 16 keys);
// writing a token's row in place costs one scatter, once.
//
// Tier moves copy whole blocks as bytes, so a block's bytes are only
// meaningful to an arena of the same layout: the model fingerprint covers
// the layout (engine::KvArenaInfo::layout), and a disk tier written under one
// layout is never read under another.
#ifndef STRATA_ENGINE_CPU_KV_LAYOUT_H_
#define STRATA_ENGINE_CPU_KV_LAYOUT_H_

#include <cstdint>

#include "engine/backend.h"

namespace strata::engine::cpu {

inline constexpr int64_t kKvChunkRows = 16;

// The layout an arena of `spec` uses (see above).
KvLayout KvLayoutFor(const KvCacheSpec& spec);

// Index, in elements from the head's first, of row t's element i (dim).
inline int64_t KvElementIndex(KvLayout layout, bool is_value, int64_t t, int64_t i, int64_t d) {
  if (layout == KvLayout::kRows) return t * d + i;
  const int64_t base = t / kKvChunkRows * kKvChunkRows * d;
  const int64_t r = t % kKvChunkRows;
  if (!is_value) return base + ((i / 2) * kKvChunkRows + r) * 2 + i % 2;
  return base + ((i / 16) * (kKvChunkRows / 2) + r / 2) * 32 + (i % 16) * 2 + r % 2;
}

// Row `t` of one head's K or V (`head`: KvArena::HeadData) to or from fp32
// (bf16 rounds to nearest even).
void ReadKvRow(const std::byte* head, DType dtype, KvLayout layout, bool is_value, int64_t t,
               int64_t d, float* out);
void WriteKvRow(std::byte* head, DType dtype, KvLayout layout, bool is_value, int64_t t, int64_t d,
                const float* row);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_KV_LAYOUT_H_
