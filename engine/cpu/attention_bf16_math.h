// Internal to the bf16-product attention kernels (attention_amx.cc on AMX,
// attention_dpbf16.cc on AVX512-BF16): the pieces both compute the same way.
// Include only from files that compile these bodies under target attributes
// that include STRATA_AVX512's, and call them after checking the CPU.
#ifndef STRATA_ENGINE_CPU_ATTENTION_BF16_MATH_H_
#define STRATA_ENGINE_CPU_ATTENTION_BF16_MATH_H_

#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "engine/cpu/attention.h"
#include "engine/cpu/kv_layout.h"
#include "engine/cpu/simd_math.h"

namespace strata::engine::cpu::attention_internal {

// Keys or values are read in the arena's chunks of 16 tokens of one head
// (engine/cpu/kv_layout.h): one score vector's keys, half a span of values.
constexpr int64_t kChunkRows = kKvChunkRows;

// Requests the first `bytes` of a chunk of keys or values (16 tokens of one
// head, 2 KiB at head_dim 64). On the Intel (AMX) machines the
// first 1 KiB was best: seeing those lines, the L2 streamer fetches the rest
// of the page without a fill buffer per line. Requesting every line instead
// stalled on the core's few fill buffers: decode attention at 2k tokens read
// KV 5-15% slower that way. (256 bytes was too few to start the streamer in
// time; a non-temporal hint cost 15 points.)
constexpr int64_t kPrefetchBytes = 1024;
inline void PrefetchChunk(const uint16_t* p, int64_t bytes = kPrefetchBytes) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 0, 2);
}

// Where a tile's chunks lie in the arena, worked out once per tile: the
// score and weighted-sum passes ask for several chunk addresses per 16 keys,
// and going through KvArena::HeadData each time (a call, a check and an
// integer division) showed in decode profiles. Needs an arena in
// KvLayout::kChunks.
struct ChunkMap {
  const std::byte* head[2] = {nullptr, nullptr};  // keys, values of (layer, kv head) in block 0
  int64_t block_stride = 0;                       // KvArena::block_stride
  int64_t chunk_bytes = 0;                        // 16 rows of d bf16
  int64_t chunks_per_block = 1;
  int shift = -1;  // log2(chunks_per_block) when a power of two

  void Init(const AttentionTile& tile) {
    const KvArena& kv = *tile.arena;
    const KvCacheSpec& spec = kv.spec();
    for (int v = 0; v < 2; ++v) head[v] = kv.HeadData(0, tile.layer, v == 1, tile.kv_head);
    block_stride = kv.block_stride();
    chunk_bytes = kChunkRows * spec.head_dim * 2;
    chunks_per_block = spec.block_size / kChunkRows;
    shift = std::has_single_bit(static_cast<uint64_t>(chunks_per_block))
                ? std::countr_zero(static_cast<uint64_t>(chunks_per_block))
                : -1;
  }

  // Keys or values of tokens [16 c, 16 c + 16): one chunk (kv_layout.h).
  const uint16_t* Chunk(absl::Span<const BlockId> table, int64_t c, bool is_value) const {
    const int64_t block = shift >= 0 ? c >> shift : c / chunks_per_block;
    const int64_t within = c - block * chunks_per_block;
    const std::byte* at = head[is_value ? 1 : 0] +
                          table[static_cast<size_t>(block)] * block_stride + within * chunk_bytes;
    return reinterpret_cast<const uint16_t*>(at);
  }

  // Whether chunk c lies right after chunk c - 1 in the arena (their blocks
  // are consecutive in the arena, or c is not the first of its block).
  bool FollowsPrevious(absl::Span<const BlockId> table, int64_t c, bool is_value) const {
    return c > 0 && Chunk(table, c, is_value) ==
                        Chunk(table, c - 1, is_value) + chunk_bytes / sizeof(uint16_t);
  }
};

// In-register transpose of a 16 x 16 matrix of 32-bit words: r[i] becomes
// column i. (Of a chunk's keys, 16 dim pairs' keys become 16 keys' dim
// pairs: bf16 rows again.)
STRATA_AVX512 inline void Transpose16(__m512 (&r)[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4i + j], 128-bit lane L: column 4L + j of rows 4i..4i+3.
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
  }
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xdd);
    t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xdd);
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
  }
}

// 32 fp32 -> 32 bf16 (one 64-byte row), round to nearest even.
STRATA_AVX512 inline __m512 Bf16Row(const float* x) {
  const __m256i lo = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x));
  const __m256i hi = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(x + 16));
  return _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
}

// 2^t for the softmax weights, t <= 0; lanes outside `valid` come out 0
// (whatever their t). t = n + f with n = round(t) and |f| <= 1/2; 2^f by a
// degree-4 polynomial through Chebyshev nodes (relative error under 4e-6,
// far below the bf16 rounding that follows), scaled by 2^n. A very negative
// t underflows to 0 in the scaling, so it needs no clamp.
STRATA_AVX512 inline __m512 Exp2Weight(__m512 t, __mmask16 valid) {
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(0.00966636836528778f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.055921975523233414f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2402234971523285f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931210160255432f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_maskz_scalef_ps(valid, p, n);
}

// One query's softmax over its raw scores row (q.k, 64-byte aligned, `row_len`
// a multiple of 32): m = the max of its first `count`, its weights w =
// e^(scale (s - m)), computed as 2^(s c - m c) with c = scale log2(e) and
// rounded to bf16 (0 from `count` to `row_len`), into `weights`. Returns the
// sum of the rounded weights: key pairs per lane over the spans of 32 in
// order (vdpbf16ps with ones), then a fixed tree across lanes. Only the
// query's own keys enter, in a fixed order, so the result does not depend on
// the other queries of its tile.
STRATA_AVX512 inline float SoftmaxRowBf16(const float* row, int64_t count, int64_t row_len,
                                          float scale, uint16_t* weights) {
  using simd_internal::LaneMask;
  const float c = scale * 1.44269504088896341f;
  const __m512 c_v = _mm512_set1_ps(c);
  const __m512bh ones = (__m512bh)_mm512_set1_epi16(0x3f80);  // bf16 1.0
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t k = 0; k * 16 < count; ++k) {
    mx = _mm512_mask_max_ps(mx, LaneMask(count - k * 16), mx, _mm512_load_ps(row + k * 16));
  }
  const __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(mx) * c);
  __m512 sum = _mm512_setzero_ps();
  for (int64_t base = 0; base < row_len; base += 32) {
    const __mmask16 lo = LaneMask(count - base), hi = LaneMask(count - base - 16);
    const __m512 e0 = Exp2Weight(_mm512_fmsub_ps(_mm512_load_ps(row + base), c_v, shift), lo);
    const __m512 e1 = Exp2Weight(_mm512_fmsub_ps(_mm512_load_ps(row + base + 16), c_v, shift), hi);
    const __m512bh w = _mm512_cvtne2ps_pbh(e1, e0);  // keys base .. base + 31
    _mm512_store_si512(weights + base, (__m512i)w);
    sum = _mm512_dpbf16_ps(sum, w, ones);
  }
  return simd_internal::Sum512(sum);
}

}  // namespace strata::engine::cpu::attention_internal

#endif  // STRATA_ENGINE_CPU_ATTENTION_BF16_MATH_H_
