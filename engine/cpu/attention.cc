#include "engine/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu/attention_amx.h"
#include "engine/cpu/attention_bf16_math.h"
#include "engine/cpu/attention_dpbf16.h"
#include "engine/cpu/kv_layout.h"
#include "engine/cpu/simd.h"
#include "engine/cpu/simd_math.h"

namespace strata::engine::cpu {
namespace {

using attention_internal::Transpose16;
using simd_internal::Exp512;
using simd_internal::LaneMask;
using simd_internal::LoadBf16Masked;
using simd_internal::Sum512;

constexpr int64_t kLanes = 16;

inline float Bf16ToFloat(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// Per-thread buffers, grown as needed and kept.
struct Scratch {
  std::vector<float> keys, values;  // [block rows rounded to 16][dpad]
  std::vector<float> q;             // [queries][dpad], zero padded
  std::vector<float> acc;           // [queries][dpad]
  std::vector<float> scores;        // [queries][max count rounded to 16]
  std::vector<float> sums;          // [queries] softmax denominators
};

// Asks for `bytes` at p to be brought into L2. Each head's slice of a KV
// block sits a whole block (all layers and heads) away from the next, which
// the hardware prefetchers do not follow, so blocks are requested kAhead
// ahead of their use: one block ahead leaves decode waiting on memory latency
// at every block, as there is little arithmetic per block to hide it.
constexpr int64_t kAhead = 4;

void Prefetch(const std::byte* p, int64_t bytes) {
  for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(p + i, 0, 2);
}

void Grow(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// ------------------------------------------------------------- AVX-512 ---

// n rows of d elements (bf16 or fp32) -> fp32 rows of dpad, zero padded.
STRATA_AVX512 void Widen512(const std::byte* src, bool bf16, int64_t n, int64_t d, int64_t dpad,
                            float* dst) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t c = 0; c < dpad; c += kLanes) {
      const __mmask16 mask = LaneMask(d - c);
      __m512 v = bf16
                     ? LoadBf16Masked(reinterpret_cast<const uint16_t*>(src) + t * d + c, mask)
                     : _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(src) + t * d + c);
      _mm512_storeu_ps(dst + t * dpad + c, v);
    }
  }
}

// 16 bf16 -> fp32 (exact: the bf16 bits are the fp32's high half).
STRATA_AVX512 inline __m512 WidenBf16x16(__m256i bf16) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}

// n rows of one head's bf16 keys or values in the arena's chunks
// (kv_layout.h) -> fp32 rows of d (a multiple of 32: no padding). Writes
// whole chunks; rows from n on hold whatever the chunk did.
STRATA_AVX512 void WidenChunks512(const uint16_t* src, bool is_value, int64_t n, int64_t d,
                                  float* dst) {
  alignas(64) static constexpr uint16_t kSplitPair[32] = {
      0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
      1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31};
  const __m512i split_pair = _mm512_load_si512(kSplitPair);
  for (int64_t c = 0; c * kKvChunkRows < n; ++c) {
    const uint16_t* chunk = src + c * kKvChunkRows * d;
    float* out = dst + c * kKvChunkRows * d;
    for (int64_t kb = 0; !is_value && kb < d / 32; ++kb) {  // keys: [dim pair][16 tokens][2]
      __m512 rows[16];
      for (int64_t p = 0; p < 16; ++p) {
        rows[p] = _mm512_load_ps(reinterpret_cast<const float*>(chunk + (kb * 16 + p) * 32));
      }
      Transpose16(rows);  // rows[t]: token t's dims 32 kb .. 32 kb + 31, in order
      for (int64_t t = 0; t < kKvChunkRows; ++t) {
        const __m512i row = _mm512_castps_si512(rows[t]);
        _mm512_storeu_ps(out + t * d + kb * 32, WidenBf16x16(_mm512_castsi512_si256(row)));
        _mm512_storeu_ps(out + t * d + kb * 32 + 16,
                         WidenBf16x16(_mm512_extracti64x4_epi64(row, 1)));
      }
    }
    for (int64_t tile = 0; is_value && tile < d / 16; ++tile) {  // [16 dims][token pair]
      for (int64_t u = 0; u < kKvChunkRows / 2; ++u) {
        const __m512i pair =
            _mm512_permutexvar_epi16(split_pair, _mm512_load_si512(chunk + (tile * 8 + u) * 32));
        _mm512_storeu_ps(out + 2 * u * d + tile * 16, WidenBf16x16(_mm512_castsi512_si256(pair)));
        _mm512_storeu_ps(out + (2 * u + 1) * d + tile * 16,
                         WidenBf16x16(_mm512_extracti64x4_epi64(pair, 1)));
      }
    }
  }
}

// Lane t of the result = the sum of the lanes of a[t], by the same tree for
// every t: pairs of 256-bit halves, then of 128-bit quarters, then of 64-bit
// pairs, then of single lanes. Keys never mix, so a key's score does not
// depend on what the other 15 lanes hold.
STRATA_AVX512 inline __m512 Reduce16(const __m512 (&a)[16]) {
  __m512 b[8], c[4], d[2];
  for (int i = 0; i < 8; ++i) {
    b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xee));
  }
  for (int i = 0; i < 4; ++i) {
    c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xdd));
  }
  for (int i = 0; i < 2; ++i) {
    const __m512d lo = _mm512_castps_pd(c[2 * i]), hi = _mm512_castps_pd(c[2 * i + 1]);
    d[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(lo, hi)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(lo, hi)));
  }
  const __m512 f =
      _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], 0x88), _mm512_shuffle_ps(d[0], d[1], 0xdd));
  // Lane 4q + i of f holds key 4i + q.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, f);
}

// scores[t] = scale * q.key_t for t < n; keys [n][dpad], q [dpad]. kChunks
// = dpad / 16 when known at compile time (so the 16 key rows are addressed
// from one register), else 0. Every variant performs the same per-key
// operations: FMAs over the chunks in order, then Reduce16.
template <int64_t kChunks>
STRATA_AVX512 void Scores512(const float* q, const float* keys, int64_t n, int64_t dpad,
                             float scale, float* scores) {
  const int64_t stride = kChunks > 0 ? kChunks * kLanes : dpad;
  const int64_t chunks = kChunks > 0 ? kChunks : dpad / kLanes;
  for (int64_t t0 = 0; t0 < n; t0 += kLanes) {
    const int64_t m = std::min(kLanes, n - t0);
    __m512 acc[16];
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
    const float* k0 = keys + t0 * stride;
    if (m == kLanes) {
      for (int64_t c = 0; c < chunks; ++c) {
        const __m512 qc = _mm512_loadu_ps(q + c * kLanes);
        for (int j = 0; j < 16; ++j)
          acc[j] = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k0 + j * stride + c * kLanes), acc[j]);
      }
    } else {
      for (int64_t c = 0; c < chunks; ++c) {
        const __m512 qc = _mm512_loadu_ps(q + c * kLanes);
        for (int j = 0; j < m; ++j)
          acc[j] = _mm512_fmadd_ps(qc, _mm512_loadu_ps(k0 + j * stride + c * kLanes), acc[j]);
      }
    }
    const __m512 s = _mm512_mul_ps(Reduce16(acc), _mm512_set1_ps(scale));
    _mm512_mask_storeu_ps(scores + t0, LaneMask(m), s);
  }
}

// Scores512 for two queries with the same key count: 8 keys of each per
// Reduce16, so every key row loaded feeds both. Per key the operations are
// those of Scores512, so a query's scores do not depend on its partner.
template <int64_t kChunks>
STRATA_AVX512 void ScoresPair512(const float* qa, const float* qb, const float* keys, int64_t n,
                                 int64_t dpad, float scale, float* sa, float* sb) {
  const int64_t stride = kChunks > 0 ? kChunks * kLanes : dpad;
  const int64_t chunks = kChunks > 0 ? kChunks : dpad / kLanes;
  for (int64_t t0 = 0; t0 < n; t0 += 8) {
    const int64_t m = std::min<int64_t>(8, n - t0);
    __m512 acc[16];
    for (int j = 0; j < 16; ++j) acc[j] = _mm512_setzero_ps();
    const float* k0 = keys + t0 * stride;
    if (m == 8) {
      for (int64_t c = 0; c < chunks; ++c) {
        const __m512 a = _mm512_loadu_ps(qa + c * kLanes), b = _mm512_loadu_ps(qb + c * kLanes);
        for (int j = 0; j < 8; ++j) {
          const __m512 kv = _mm512_loadu_ps(k0 + j * stride + c * kLanes);
          acc[j] = _mm512_fmadd_ps(a, kv, acc[j]);
          acc[8 + j] = _mm512_fmadd_ps(b, kv, acc[8 + j]);
        }
      }
    } else {
      for (int64_t c = 0; c < chunks; ++c) {
        const __m512 a = _mm512_loadu_ps(qa + c * kLanes), b = _mm512_loadu_ps(qb + c * kLanes);
        for (int j = 0; j < m; ++j) {
          const __m512 kv = _mm512_loadu_ps(k0 + j * stride + c * kLanes);
          acc[j] = _mm512_fmadd_ps(a, kv, acc[j]);
          acc[8 + j] = _mm512_fmadd_ps(b, kv, acc[8 + j]);
        }
      }
    }
    const __m512 s = _mm512_mul_ps(Reduce16(acc), _mm512_set1_ps(scale));
    const __mmask16 mask = LaneMask(m);
    _mm512_mask_storeu_ps(sa + t0, mask, s);
    _mm512_mask_storeu_ps(sb + t0, mask, _mm512_shuffle_f32x4(s, s, 0x4e));
  }
}

STRATA_AVX512 void ScoresPairAny512(const float* qa, const float* qb, const float* keys, int64_t n,
                                    int64_t dpad, float scale, float* sa, float* sb) {
  switch (dpad / kLanes) {
    case 2:
      return ScoresPair512<2>(qa, qb, keys, n, dpad, scale, sa, sb);
    case 4:
      return ScoresPair512<4>(qa, qb, keys, n, dpad, scale, sa, sb);
    case 8:
      return ScoresPair512<8>(qa, qb, keys, n, dpad, scale, sa, sb);
    default:
      return ScoresPair512<0>(qa, qb, keys, n, dpad, scale, sa, sb);
  }
}

STRATA_AVX512 void ScoresAny512(const float* q, const float* keys, int64_t n, int64_t dpad,
                                float scale, float* scores) {
  switch (dpad / kLanes) {
    case 2:
      return Scores512<2>(q, keys, n, dpad, scale, scores);
    case 4:
      return Scores512<4>(q, keys, n, dpad, scale, scores);
    case 8:
      return Scores512<8>(q, keys, n, dpad, scale, scores);
    default:
      return Scores512<0>(q, keys, n, dpad, scale, scores);
  }
}

// s[t] = exp(s[t] - max) for t < n; returns their sum, accumulated per lane
// t % 16 from t = 0 and then reduced in a fixed tree.
STRATA_AVX512 float Softmax512(float* s, int64_t n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t t = 0; t < n; t += kLanes) {
    mx = _mm512_mask_max_ps(mx, LaneMask(n - t), mx, _mm512_loadu_ps(s + t));
  }
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t t = 0; t < n; t += kLanes) {
    const __mmask16 mask = LaneMask(n - t);
    const __m512 e = Exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, s + t), max));
    _mm512_mask_storeu_ps(s + t, mask, e);
    sum = _mm512_mask_add_ps(sum, mask, sum, e);
  }
  return Sum512(sum);
}

// Weighted512's arithmetic for the 16 elements at c.
STRATA_AVX512 void WeightedChunk512(const float* w, const float* values, int64_t n, int64_t dpad,
                                    int64_t c, float* out) {
  __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
  int64_t t = 0;
  for (; t + 2 <= n; t += 2) {
    even = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_loadu_ps(values + t * dpad + c), even);
    odd = _mm512_fmadd_ps(_mm512_set1_ps(w[t + 1]), _mm512_loadu_ps(values + (t + 1) * dpad + c),
                          odd);
  }
  if (t < n) {
    even = _mm512_fmadd_ps(_mm512_set1_ps(w[t]), _mm512_loadu_ps(values + t * dpad + c), even);
  }
  _mm512_storeu_ps(out + c, _mm512_add_ps(_mm512_loadu_ps(out + c), _mm512_add_ps(even, odd)));
}

// out[i] += sum_t w[t] * v_t[i] for t < n: per element, even and odd t run
// in two chains (for latency) that are added at the end.
STRATA_AVX512 void Weighted512(const float* w, const float* values, int64_t n, int64_t dpad,
                               float* out) {
  int64_t c = 0;
  for (; c + 4 * kLanes <= dpad; c += 4 * kLanes) {
    __m512 even[4], odd[4];
    for (int i = 0; i < 4; ++i) even[i] = odd[i] = _mm512_setzero_ps();
    int64_t t = 0;
    for (; t + 2 <= n; t += 2) {
      const __m512 w0 = _mm512_set1_ps(w[t]), w1 = _mm512_set1_ps(w[t + 1]);
      const float* v0 = values + t * dpad + c;
      for (int i = 0; i < 4; ++i) {
        even[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(v0 + i * kLanes), even[i]);
        odd[i] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(v0 + dpad + i * kLanes), odd[i]);
      }
    }
    if (t < n) {
      const __m512 w0 = _mm512_set1_ps(w[t]);
      for (int i = 0; i < 4; ++i)
        even[i] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(values + t * dpad + c + i * kLanes), even[i]);
    }
    for (int i = 0; i < 4; ++i) {
      float* o = out + c + i * kLanes;
      _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), _mm512_add_ps(even[i], odd[i])));
    }
  }
  for (; c < dpad; c += kLanes) WeightedChunk512(w, values, n, dpad, c, out);
}

// Weighted512 for two queries with the same key count, sharing the value
// loads; per query the operations (and so the result) are Weighted512's.
STRATA_AVX512 void WeightedPair512(const float* wa, const float* wb, const float* values, int64_t n,
                                   int64_t dpad, float* oa, float* ob) {
  int64_t c = 0;
  for (; c + 2 * kLanes <= dpad; c += 2 * kLanes) {
    __m512 ea[2], oda[2], eb[2], odb[2];
    for (int i = 0; i < 2; ++i) ea[i] = oda[i] = eb[i] = odb[i] = _mm512_setzero_ps();
    int64_t t = 0;
    for (; t + 2 <= n; t += 2) {
      const __m512 a0 = _mm512_set1_ps(wa[t]), a1 = _mm512_set1_ps(wa[t + 1]);
      const __m512 b0 = _mm512_set1_ps(wb[t]), b1 = _mm512_set1_ps(wb[t + 1]);
      const float* v0 = values + t * dpad + c;
      for (int i = 0; i < 2; ++i) {
        const __m512 x0 = _mm512_loadu_ps(v0 + i * kLanes);
        const __m512 x1 = _mm512_loadu_ps(v0 + dpad + i * kLanes);
        ea[i] = _mm512_fmadd_ps(a0, x0, ea[i]);
        oda[i] = _mm512_fmadd_ps(a1, x1, oda[i]);
        eb[i] = _mm512_fmadd_ps(b0, x0, eb[i]);
        odb[i] = _mm512_fmadd_ps(b1, x1, odb[i]);
      }
    }
    if (t < n) {
      const __m512 a0 = _mm512_set1_ps(wa[t]), b0 = _mm512_set1_ps(wb[t]);
      for (int i = 0; i < 2; ++i) {
        const __m512 x0 = _mm512_loadu_ps(values + t * dpad + c + i * kLanes);
        ea[i] = _mm512_fmadd_ps(a0, x0, ea[i]);
        eb[i] = _mm512_fmadd_ps(b0, x0, eb[i]);
      }
    }
    for (int i = 0; i < 2; ++i) {
      float* pa = oa + c + i * kLanes;
      float* pb = ob + c + i * kLanes;
      _mm512_storeu_ps(pa, _mm512_add_ps(_mm512_loadu_ps(pa), _mm512_add_ps(ea[i], oda[i])));
      _mm512_storeu_ps(pb, _mm512_add_ps(_mm512_loadu_ps(pb), _mm512_add_ps(eb[i], odb[i])));
    }
  }
  if (c < dpad) {  // one chunk left
    WeightedChunk512(wa, values, n, dpad, c, oa);
    WeightedChunk512(wb, values, n, dpad, c, ob);
  }
}

// -------------------------------------------------------------- scalar ---

void WidenScalar(const std::byte* src, bool bf16, int64_t n, int64_t d, int64_t dpad, float* dst) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < dpad; ++i) {
      float v = 0.0f;
      if (i < d) {
        v = bf16 ? Bf16ToFloat(reinterpret_cast<const uint16_t*>(src)[t * d + i])
                 : reinterpret_cast<const float*>(src)[t * d + i];
      }
      dst[t * dpad + i] = v;
    }
  }
}

void WidenChunksScalar(const uint16_t* src, bool is_value, int64_t n, int64_t d, float* dst) {
  for (int64_t t = 0; t < n; ++t) {
    ReadKvRow(reinterpret_cast<const std::byte*>(src), DType::kBF16, KvLayout::kChunks, is_value, t,
              d, dst + t * d);
  }
}

void ScoresScalar(const float* q, const float* keys, int64_t n, int64_t dpad, float scale,
                  float* scores) {
  for (int64_t t = 0; t < n; ++t) {
    float acc = 0.0f;
    for (int64_t i = 0; i < dpad; ++i) acc += q[i] * keys[t * dpad + i];
    scores[t] = acc * scale;
  }
}

float SoftmaxScalar(float* s, int64_t n) {
  const float max = *std::max_element(s, s + n);
  float sum = 0.0f;
  for (int64_t t = 0; t < n; ++t) {
    s[t] = std::exp(s[t] - max);
    sum += s[t];
  }
  return sum;
}

void WeightedScalar(const float* w, const float* values, int64_t n, int64_t dpad, float* out) {
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < dpad; ++i) out[i] += w[t] * values[t * dpad + i];
}

// ------------------------------------------------------------- driver ---

void ScoresPairScalar(const float* qa, const float* qb, const float* keys, int64_t n, int64_t dpad,
                      float scale, float* sa, float* sb) {
  ScoresScalar(qa, keys, n, dpad, scale, sa);
  ScoresScalar(qb, keys, n, dpad, scale, sb);
}

void WeightedPairScalar(const float* wa, const float* wb, const float* values, int64_t n,
                        int64_t dpad, float* oa, float* ob) {
  WeightedScalar(wa, values, n, dpad, oa);
  WeightedScalar(wb, values, n, dpad, ob);
}

// ------------------------------------------------------------- driver ---

// The kernels of one ISA. A pair kernel gives each query exactly what the
// single kernel would, so pairing queries changes no result.
struct Kernels {
  void (*widen)(const std::byte*, bool, int64_t, int64_t, int64_t, float*);
  void (*widen_chunks)(const uint16_t*, bool, int64_t, int64_t, float*);
  void (*scores)(const float*, const float*, int64_t, int64_t, float, float*);
  void (*scores_pair)(const float*, const float*, const float*, int64_t, int64_t, float, float*,
                      float*);
  float (*softmax)(float*, int64_t);
  void (*weighted)(const float*, const float*, int64_t, int64_t, float*);
  void (*weighted_pair)(const float*, const float*, const float*, int64_t, int64_t, float*, float*);
};

const Kernels& PickKernels() {
  static const Kernels kernels =
      HasAvx512Bf16()
          ? Kernels{&Widen512,   &WidenChunks512, &ScoresAny512,   &ScoresPairAny512,
                    &Softmax512, &Weighted512,    &WeightedPair512}
          : Kernels{&WidenScalar,   &WidenChunksScalar, &ScoresScalar,      &ScoresPairScalar,
                    &SoftmaxScalar, &WeightedScalar,    &WeightedPairScalar};
  return kernels;
}

// One tile's shapes and buffers.
struct TileState {
  const AttentionTile* tile;
  const Kernels* k;
  Scratch* scratch;
  int64_t d, dpad, block_size, max_count, blocks, head_bytes, stride;
  bool bf16;
  bool chunks;  // the arena's KvLayout::kChunks

  int64_t queries() const { return static_cast<int64_t>(tile->queries.size()); }
  int64_t count(int64_t j) const { return tile->queries[static_cast<size_t>(j)].count; }
  const std::byte* Head(int64_t b, bool is_value) const {
    return tile->arena->HeadData(tile->block_table[static_cast<size_t>(b)], tile->layer, is_value,
                                 tile->kv_head);
  }
};

// Widens block b's keys or values into `dst`, asking for block b + kAhead's
// first; returns the block's key count for this tile.
int64_t LoadBlock(const TileState& st, int64_t b, bool is_value, float* dst) {
  const int64_t n = std::min(st.block_size, st.max_count - b * st.block_size);
  if (b + kAhead < st.blocks) Prefetch(st.Head(b + kAhead, is_value), st.head_bytes);
  if (st.chunks) {
    st.k->widen_chunks(reinterpret_cast<const uint16_t*>(st.Head(b, is_value)), is_value, n, st.d,
                       dst);
  } else {
    st.k->widen(st.Head(b, is_value), st.bf16, n, st.d, st.dpad, dst);
  }
  return n;
}

// Pass 1: scale * q.k for every query's keys, into its scores row.
void ScorePass(const TileState& st) {
  Scratch& sc = *st.scratch;
  for (int64_t b = 0; b < st.blocks; ++b) {
    const int64_t first = b * st.block_size;
    const int64_t n = LoadBlock(st, b, false, sc.keys.data());
    for (int64_t j = 0; j < st.queries();) {
      const int64_t m = std::min(n, st.count(j) - first);
      float* row = sc.scores.data() + j * st.stride + first;
      const float* q = sc.q.data() + j * st.dpad;
      if (m > 0 && j + 1 < st.queries() && std::min(n, st.count(j + 1) - first) == m) {
        st.k->scores_pair(q, q + st.dpad, sc.keys.data(), m, st.dpad, st.tile->scale, row,
                          row + st.stride);
        j += 2;
        continue;
      }
      if (m > 0) st.k->scores(q, sc.keys.data(), m, st.dpad, st.tile->scale, row);
      ++j;
    }
  }
}

// Pass 2: the exp-weighted sum of values into each query's accumulator.
void ValuePass(const TileState& st) {
  Scratch& sc = *st.scratch;
  for (int64_t b = 0; b < st.blocks; ++b) {
    const int64_t first = b * st.block_size;
    const int64_t n = LoadBlock(st, b, true, sc.values.data());
    for (int64_t j = 0; j < st.queries();) {
      const int64_t m = std::min(n, st.count(j) - first);
      const float* w = sc.scores.data() + j * st.stride + first;
      float* acc = sc.acc.data() + j * st.dpad;
      if (m > 0 && j + 1 < st.queries() && std::min(n, st.count(j + 1) - first) == m) {
        st.k->weighted_pair(w, w + st.stride, sc.values.data(), m, st.dpad, acc, acc + st.dpad);
        j += 2;
        continue;
      }
      if (m > 0) st.k->weighted(w, sc.values.data(), m, st.dpad, acc);
      ++j;
    }
  }
}

}  // namespace

AttentionKernel PickAttentionKernel(const KvCacheSpec& spec, bool bf16_products) {
  if (bf16_products && AmxAttentionSupported(spec)) return AttentionKernel::kAmx;
  if (bf16_products && Dpbf16AttentionSupported(spec)) return AttentionKernel::kAvx512Bf16;
  return HasAvx512Bf16() ? AttentionKernel::kF32Avx512 : AttentionKernel::kF32Scalar;
}

const char* AttentionKernelName(AttentionKernel kernel) {
  switch (kernel) {
    case AttentionKernel::kAmx:
      return "amx";
    case AttentionKernel::kAvx512Bf16:
      return "avx512bf16";
    case AttentionKernel::kF32Avx512:
      return "f32-avx512";
    case AttentionKernel::kF32Scalar:
      return "f32-scalar";
  }
  return "unknown";
}

void AttendTile(const AttentionTile& tile) {
  const KvCacheSpec& spec = tile.arena->spec();
  switch (PickAttentionKernel(spec, tile.bf16_products)) {
    case AttentionKernel::kAmx:
      AttendTileAmx(tile);
      return;
    case AttentionKernel::kAvx512Bf16:
      AttendTileDpbf16(tile);
      return;
    case AttentionKernel::kF32Avx512:
    case AttentionKernel::kF32Scalar:
      break;  // PickKernels below
  }
  thread_local Scratch scratch;
  TileState st;
  st.tile = &tile;
  st.k = &PickKernels();
  st.scratch = &scratch;
  st.d = spec.head_dim;
  st.dpad = (st.d + kLanes - 1) / kLanes * kLanes;
  st.block_size = spec.block_size;
  st.bf16 = spec.dtype == DType::kBF16;
  st.chunks = tile.arena->layout() == KvLayout::kChunks;
  st.max_count = 0;
  for (const AttentionQuery& query : tile.queries)
    st.max_count = std::max(st.max_count, query.count);
  st.blocks = (st.max_count + st.block_size - 1) / st.block_size;
  st.head_bytes = std::min(st.block_size, st.max_count) * st.d * (st.bf16 ? 2 : 4);
  st.stride = (st.max_count + kLanes - 1) / kLanes * kLanes;
  const int64_t nq = st.queries();
  const int64_t block_rows = (st.block_size + kLanes - 1) / kLanes * kLanes;
  Grow(scratch.keys, block_rows * st.dpad);
  Grow(scratch.values, block_rows * st.dpad);
  Grow(scratch.q, nq * st.dpad);
  Grow(scratch.acc, nq * st.dpad);
  Grow(scratch.scores, nq * st.stride);
  Grow(scratch.sums, nq);
  for (int64_t j = 0; j < nq; ++j) {
    float* q = scratch.q.data() + j * st.dpad;
    std::memcpy(q, tile.queries[static_cast<size_t>(j)].q, static_cast<size_t>(st.d) * 4);
    std::fill(q + st.d, q + st.dpad, 0.0f);
  }
  for (int64_t b = 0; b < std::min(kAhead, st.blocks); ++b)
    Prefetch(st.Head(b, false), st.head_bytes);
  ScorePass(st);
  for (int64_t b = 0; b < std::min(kAhead, st.blocks); ++b)
    Prefetch(st.Head(b, true), st.head_bytes);
  for (int64_t j = 0; j < nq; ++j) {
    scratch.sums[static_cast<size_t>(j)] =
        st.k->softmax(scratch.scores.data() + j * st.stride, st.count(j));
  }
  std::fill(scratch.acc.begin(), scratch.acc.begin() + nq * st.dpad, 0.0f);
  ValuePass(st);
  for (int64_t j = 0; j < nq; ++j) {
    const float inv = 1.0f / scratch.sums[static_cast<size_t>(j)];
    const float* acc = scratch.acc.data() + j * st.dpad;
    float* out = tile.queries[static_cast<size_t>(j)].out;
    for (int64_t i = 0; i < st.d; ++i) out[i] = acc[i] * inv;
  }
}

}  // namespace strata::engine::cpu
