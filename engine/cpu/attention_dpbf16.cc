#include "engine/cpu/attention_dpbf16.h"

#include <immintrin.h>

#include <algorithm>

#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/attention_bf16_math.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {
namespace {

using attention_internal::Bf16Row;
using attention_internal::ChunkMap;
using attention_internal::kChunkRows;
using attention_internal::PrefetchChunk;
using attention_internal::SoftmaxRowBf16;
using attention_internal::Transpose16;

constexpr int64_t kSpan = 32;          // keys per span: one row of 32 bf16 weights
constexpr int64_t kDimBlock = 32;      // head dims per 64-byte slice of a row
constexpr int64_t kGroupQueries = 16;  // queries whose score rows are held at once
// A streamed (decode) tile packs this many chunks of keys, or spans of
// values, per step: enough score vectors per vdpbf16ps chain to hide its
// latency, few enough to stay in L1.
constexpr int64_t kStepChunks = 8;
constexpr int64_t kStepSpans = 4;

struct Scratch {
  AlignedBuffer q;        // [16 queries][d] bf16: dim pairs as 32-bit words
  AlignedBuffer keys;     // [chunks][d / 2 dim pairs][16 keys][2] bf16
  AlignedBuffer values;   // [spans][d / 32][16 key pairs][2 halves][16 dims][2] bf16
  AlignedBuffer scores;   // [16][row_len] fp32: q.k, unscaled
  AlignedBuffer weights;  // [16][row_len] bf16
  AlignedBuffer acc;      // [16][d / 16 dim tiles][2 chains][16] fp32
};

// Up to 16 queries of a tile, with their shapes and scratch.
struct Group {
  const AttentionTile* tile;
  const ChunkMap* map;
  Scratch* scratch;
  int64_t d;
  int64_t first, nq;  // queries [first, first + nq) of the tile
  int64_t max_count, chunks, spans;
  bool packed;  // the scratch's keys and values hold the whole tile's

  const AttentionQuery& query(int64_t j) const {
    return tile->queries[static_cast<size_t>(first + j)];
  }
  int64_t row_len() const { return spans * kSpan; }  // of the scores and weights rows
  const uint16_t* Chunk(int64_t c, bool is_value) const {
    return map->Chunk(tile->block_table, c, is_value);
  }
  // Asks for all of chunk c (of keys or values) if the KV reaches it. On
  // AMD Zen 5, unlike the Intel AMX machines (see kPrefetchBytes), the
  // hardware does not fetch the rest of a chunk after its first 1 KiB:
  // decode attention read KV at 10 GB/s a thread that way against 21 for
  // whole chunks a step (8 chunks) ahead, which beat 4, 12 and 16 ahead,
  // bursts per step and prefetches spread through the compute loops.
  void Prefetch(int64_t c, int64_t limit, bool is_value) const {
    if (c * kChunkRows < limit) PrefetchChunk(Chunk(c, is_value), kChunkRows * d * 2);
  }
};

void SetCount(Group& g, int64_t max_count) {
  g.max_count = max_count;
  g.chunks = (max_count + kChunkRows - 1) / kChunkRows;
  g.spans = (max_count + kSpan - 1) / kSpan;
}

STRATA_AVX512 inline __m512bh Word(const uint16_t* p) {  // a bf16 pair, in every lane
  return (__m512bh)_mm512_broadcastd_epi32(_mm_loadu_si32(p));
}

// Keys of chunks [c0, c0 + n) as [chunk][d / 2][16 keys][2]: a 16 x 16
// transpose of 32-bit words per 32 dims. Keys at or past `limit` are zero
// (their arena rows may hold anything). Asks for the chunk a step ahead.
STRATA_AVX512 void PackKeys(const Group& g, int64_t limit, int64_t c0, int64_t n, uint16_t* out) {
  for (int64_t c = c0; c < c0 + n; ++c) {
    g.Prefetch(c + kStepChunks, limit, false);
    const auto* k = reinterpret_cast<const float*>(g.Chunk(c, false));
    const int64_t valid = std::min(kChunkRows, limit - c * kChunkRows);
    auto* dst = reinterpret_cast<float*>(out + (c - c0) * kChunkRows * g.d);
    for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
      __m512 rows[16];
      for (int64_t i = 0; i < 16; ++i) {
        rows[i] =
            i < valid ? _mm512_loadu_ps(k + (i * g.d + kb * kDimBlock) / 2) : _mm512_setzero_ps();
      }
      Transpose16(rows);  // rows[p]: dim pair p of the 16 keys
      for (int64_t p = 0; p < 16; ++p) _mm512_store_ps(dst + (kb * 16 + p) * 16, rows[p]);
    }
  }
}

// Values of spans [s0, s0 + n) as [span][d / 32][16 key pairs][2 halves]
// [16 dims][2]: keys 2u and 2u + 1 interleaved per dim by vpunpck{l,h}wd,
// which leaves dims 8L..8L+3 of each 128-bit lane L in the low half and
// 8L+4..8L+7 in the high (WriteOutputs puts them back in order). Keys at or
// past `limit` are zero: even a zero weight times NaN is NaN.
STRATA_AVX512 void PackValues(const Group& g, int64_t limit, int64_t s0, int64_t n, uint16_t* out) {
  const int64_t blocks = g.d / kDimBlock;
  for (int64_t s = s0; s < s0 + n; ++s) {
    uint16_t* span = out + (s - s0) * kSpan * g.d;
    for (int64_t half = 0; half < 2; ++half) {  // the span's two chunks
      const int64_t chunk = 2 * s + half;
      g.Prefetch(chunk + 2 * kStepSpans, limit, true);
      const int64_t valid = limit - chunk * kChunkRows;
      const uint16_t* v = valid > 0 ? g.Chunk(chunk, true) : nullptr;
      for (int64_t pair = 0; pair < kChunkRows / 2; ++pair) {
        const int64_t u = half * 8 + pair;
        for (int64_t b = 0; b < blocks; ++b) {
          const __m512i even = 2 * pair < valid
                                   ? _mm512_loadu_si512(v + 2 * pair * g.d + b * kDimBlock)
                                   : _mm512_setzero_si512();
          const __m512i odd = 2 * pair + 1 < valid
                                  ? _mm512_loadu_si512(v + (2 * pair + 1) * g.d + b * kDimBlock)
                                  : _mm512_setzero_si512();
          uint16_t* dst = span + (b * 16 + u) * 64;
          _mm512_store_si512(dst, _mm512_unpacklo_epi16(even, odd));
          _mm512_store_si512(dst + 32, _mm512_unpackhi_epi16(even, odd));
        }
      }
    }
  }
}

// The group's q rows rounded to bf16: [16][d].
STRATA_AVX512 void PackQueries(const Group& g) {
  auto* q = g.scratch->q.as<uint16_t>();
  for (int64_t j = 0; j < g.nq; ++j) {
    for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
      _mm512_store_ps(reinterpret_cast<float*>(q + j * g.d + kb * kDimBlock),
                      Bf16Row(g.query(j).q + kb * kDimBlock));
    }
  }
}

// out[j][16 c .. 16 c + 16) = q_j . the 16 keys of packed chunk c, for kJ
// queries and kC chunks: every score a chain over the dim pairs in order.
template <int kJ, int kC>
STRATA_AVX512 void ScoreKernel(const uint16_t* const (&q)[kJ], const uint16_t* keys, int64_t d,
                               float* const (&out)[kJ]) {
  __m512 acc[kJ][kC];
  for (int j = 0; j < kJ; ++j)
    for (int c = 0; c < kC; ++c) acc[j][c] = _mm512_setzero_ps();
  for (int64_t p = 0; p < d / 2; ++p) {
    __m512bh k[kC];
    for (int c = 0; c < kC; ++c) {
      k[c] = (__m512bh)_mm512_load_si512(keys + c * kChunkRows * d + p * 32);
    }
    for (int j = 0; j < kJ; ++j) {
      const __m512bh qp = Word(q[j] + 2 * p);
      for (int c = 0; c < kC; ++c) acc[j][c] = _mm512_dpbf16_ps(acc[j][c], k[c], qp);
    }
  }
  for (int j = 0; j < kJ; ++j)
    for (int c = 0; c < kC; ++c) _mm512_store_ps(out[j] + c * 16, acc[j][c]);
}

// ScoreKernel for queries [j, j + kJ) of the group and chunks [c0 + c, c0
// + c + kC), whose packed keys start at `keys` (chunk c0).
template <int kJ, int kC>
STRATA_AVX512 void ScoreRun(const Group& g, int64_t j, const uint16_t* keys, int64_t c0,
                            int64_t c) {
  const auto* q = g.scratch->q.as<uint16_t>();
  float* scores = g.scratch->scores.as<float>();
  const uint16_t* qs[kJ];
  float* outs[kJ];
  for (int i = 0; i < kJ; ++i) {
    qs[i] = q + (j + i) * g.d;
    outs[i] = scores + (j + i) * g.row_len() + (c0 + c) * kChunkRows;
  }
  ScoreKernel<kJ, kC>(qs, keys + c * kChunkRows * g.d, g.d, outs);
}

// Chunks [c0, c0 + n) for queries [j, j + kJ): eight score vectors per
// kernel while they last (enough chains to hide vdpbf16ps's latency), then
// four, two, one.
template <int kJ>
STRATA_AVX512 void ScoreQueries(const Group& g, int64_t j, const uint16_t* keys, int64_t c0,
                                int64_t n) {
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) ScoreRun<kJ, 8>(g, j, keys, c0, c);
  if (c + 4 <= n) {
    ScoreRun<kJ, 4>(g, j, keys, c0, c);
    c += 4;
  }
  if (c + 2 <= n) {
    ScoreRun<kJ, 2>(g, j, keys, c0, c);
    c += 2;
  }
  if (c < n) ScoreRun<kJ, 1>(g, j, keys, c0, c);
}

// Scores of chunks [c0, c0 + n) for every query of the group, from their
// packed keys (`keys` at chunk c0).
STRATA_AVX512 void ScoreChunks(const Group& g, const uint16_t* keys, int64_t c0, int64_t n) {
  for (int64_t j = 0; j < g.nq; j += 2) {
    if (j + 1 < g.nq) {
      ScoreQueries<2>(g, j, keys, c0, n);
    } else {
      ScoreQueries<1>(g, j, keys, c0, n);
    }
  }
}

void ScorePass(const Group& g) {
  auto* keys = g.scratch->keys.as<uint16_t>();
  if (g.packed) {
    ScoreChunks(g, keys, 0, g.chunks);
    return;
  }
  for (int64_t c0 = 0; c0 < g.chunks; c0 += kStepChunks) {
    const int64_t n = std::min(kStepChunks, g.chunks - c0);
    PackKeys(g, g.max_count, c0, n, keys);
    ScoreChunks(g, keys, c0, n);
  }
}

// acc[j] (the query's [d / 16][2 chains][16] sums, dim blocks [b0, b0 +
// kB)) += its weights of spans [0, n) times their packed values: key pair u
// into chain u % 2.
template <int kJ, int kB>
STRATA_AVX512 void WeightedKernel(const uint16_t* const (&w)[kJ], const uint16_t* values, int64_t n,
                                  int64_t d, int64_t b0, float* const (&acc)[kJ]) {
  __m512 a[kJ][2 * kB][2];
  for (int j = 0; j < kJ; ++j)
    for (int t = 0; t < 2 * kB; ++t)
      for (int e = 0; e < 2; ++e) a[j][t][e] = _mm512_load_ps(acc[j] + ((2 * b0 + t) * 2 + e) * 16);
  for (int64_t s = 0; s < n; ++s) {
    const uint16_t* vs = values + s * kSpan * d;
    for (int64_t u = 0; u < 16; u += 2) {
      for (int e = 0; e < 2; ++e) {
        __m512bh wp[kJ];
        for (int j = 0; j < kJ; ++j) wp[j] = Word(w[j] + s * kSpan + 2 * (u + e));
        for (int b = 0; b < kB; ++b) {
          for (int h = 0; h < 2; ++h) {
            const auto v = (__m512bh)_mm512_load_si512(vs + ((b0 + b) * 16 + u + e) * 64 + h * 32);
            for (int j = 0; j < kJ; ++j)
              a[j][2 * b + h][e] = _mm512_dpbf16_ps(a[j][2 * b + h][e], v, wp[j]);
          }
        }
      }
    }
  }
  for (int j = 0; j < kJ; ++j)
    for (int t = 0; t < 2 * kB; ++t)
      for (int e = 0; e < 2; ++e) _mm512_store_ps(acc[j] + ((2 * b0 + t) * 2 + e) * 16, a[j][t][e]);
}

template <int kJ>
STRATA_AVX512 void WeightQueries(const Group& g, int64_t j, const uint16_t* values, int64_t s0,
                                 int64_t n) {
  const auto* weights = g.scratch->weights.as<uint16_t>();
  float* acc = g.scratch->acc.as<float>();
  const uint16_t* w[kJ];
  float* a[kJ];
  for (int i = 0; i < kJ; ++i) {
    w[i] = weights + (j + i) * g.row_len() + s0 * kSpan;
    a[i] = acc + (j + i) * 2 * g.d;
  }
  int64_t b0 = 0;
  for (; b0 + 2 <= g.d / kDimBlock; b0 += 2) WeightedKernel<kJ, 2>(w, values, n, g.d, b0, a);
  if (b0 < g.d / kDimBlock) WeightedKernel<kJ, 1>(w, values, n, g.d, b0, a);
}

// The weighted sums of spans [s0, s0 + n) for every query of the group,
// from their packed values (`values` at span s0).
STRATA_AVX512 void WeightSpans(const Group& g, const uint16_t* values, int64_t s0, int64_t n) {
  for (int64_t j = 0; j < g.nq; j += 2) {
    if (j + 1 < g.nq) {
      WeightQueries<2>(g, j, values, s0, n);
    } else {
      WeightQueries<1>(g, j, values, s0, n);
    }
  }
}

void WeightedPass(const Group& g) {
  auto* values = g.scratch->values.as<uint16_t>();
  if (g.packed) {
    WeightSpans(g, values, 0, g.spans);
    return;
  }
  for (int64_t s0 = 0; s0 < g.spans; s0 += kStepSpans) {
    const int64_t n = std::min(kStepSpans, g.spans - s0);
    PackValues(g, g.max_count, s0, n, values);
    WeightSpans(g, values, s0, n);
  }
}

// Each query's output: its two chains added, the dims back in order, over
// its softmax sum.
STRATA_AVX512 void WriteOutputs(const Group& g, const float* sums) {
  alignas(64) static constexpr int32_t kFirst[16] = {0, 1, 2, 3, 16, 17, 18, 19,
                                                     4, 5, 6, 7, 20, 21, 22, 23};
  alignas(64) static constexpr int32_t kSecond[16] = {8,  9,  10, 11, 24, 25, 26, 27,
                                                      12, 13, 14, 15, 28, 29, 30, 31};
  const __m512i first = _mm512_load_si512(kFirst), second = _mm512_load_si512(kSecond);
  const float* acc = g.scratch->acc.as<float>();
  for (int64_t j = 0; j < g.nq; ++j) {
    const __m512 inv = _mm512_set1_ps(1.0f / sums[j]);
    const float* a = acc + j * 2 * g.d;
    float* out = g.query(j).out;
    for (int64_t b = 0; b < g.d / kDimBlock; ++b) {
      const float* t = a + b * 64;  // tiles 2b (low halves) and 2b + 1 (high)
      const __m512 lo = _mm512_add_ps(_mm512_load_ps(t), _mm512_load_ps(t + 16));
      const __m512 hi = _mm512_add_ps(_mm512_load_ps(t + 32), _mm512_load_ps(t + 48));
      _mm512_storeu_ps(out + b * 32, _mm512_mul_ps(_mm512_permutex2var_ps(lo, first, hi), inv));
      _mm512_storeu_ps(out + b * 32 + 16,
                       _mm512_mul_ps(_mm512_permutex2var_ps(lo, second, hi), inv));
    }
  }
}

STRATA_AVX512 void AttendGroup(const Group& g, float scale) {
  PackQueries(g);
  if (!g.packed) {
    for (int64_t c = 0; c < kStepChunks; ++c) g.Prefetch(c, g.max_count, false);
  }
  ScorePass(g);
  if (!g.packed) {
    for (int64_t c = 0; c < 2 * kStepSpans; ++c) g.Prefetch(c, g.max_count, true);
  }
  alignas(64) float sums[kGroupQueries];
  const int64_t row = g.row_len();
  for (int64_t j = 0; j < g.nq; ++j) {
    sums[j] = SoftmaxRowBf16(g.scratch->scores.as<float>() + j * row, g.query(j).count, row, scale,
                             g.scratch->weights.as<uint16_t>() + j * row);
  }
  float* acc = g.scratch->acc.as<float>();
  std::fill(acc, acc + g.nq * 2 * g.d, 0.0f);
  WeightedPass(g);
  WriteOutputs(g, sums);
}

// Packs the whole tile's keys and values, for a tile of many queries.
void PackTile(Group& g) {
  int64_t tile_max = 0;
  for (const AttentionQuery& query : g.tile->queries) tile_max = std::max(tile_max, query.count);
  SetCount(g, tile_max);
  Scratch& scratch = *g.scratch;
  scratch.keys.GrowTo(static_cast<size_t>(g.chunks * kChunkRows * g.d * 2));
  scratch.values.GrowTo(static_cast<size_t>(g.spans * kSpan * g.d * 2));
  for (int64_t c = 0; c < kStepChunks; ++c) g.Prefetch(c, tile_max, false);
  PackKeys(g, tile_max, 0, g.chunks, scratch.keys.as<uint16_t>());
  for (int64_t c = 0; c < 2 * kStepSpans; ++c) g.Prefetch(c, tile_max, true);
  PackValues(g, tile_max, 0, g.spans, scratch.values.as<uint16_t>());
}

}  // namespace

bool Dpbf16AttentionSupported(const KvCacheSpec& spec) {
  return spec.dtype == DType::kBF16 && spec.head_dim % kDimBlock == 0 && spec.head_dim <= 512 &&
         spec.block_size % kChunkRows == 0 && HasAvx512Bf16();
}

void AttendTileDpbf16(const AttentionTile& tile) {
  thread_local Scratch scratch;
  Group g;
  g.tile = &tile;
  g.d = tile.arena->spec().head_dim;
  g.scratch = &scratch;
  ChunkMap map;
  map.Init(tile);
  g.map = &map;
  const auto queries = static_cast<int64_t>(tile.queries.size());
  g.packed = queries > kGroupQueries;
  if (g.packed) {
    PackTile(g);
  } else {
    scratch.keys.GrowTo(static_cast<size_t>(kStepChunks * kChunkRows * g.d * 2));
    scratch.values.GrowTo(static_cast<size_t>(kStepSpans * kSpan * g.d * 2));
  }
  for (g.first = 0; g.first < queries; g.first += kGroupQueries) {
    g.nq = std::min(kGroupQueries, queries - g.first);
    int64_t max_count = 0;
    for (int64_t j = 0; j < g.nq; ++j) max_count = std::max(max_count, g.query(j).count);
    SetCount(g, max_count);
    scratch.q.GrowTo(static_cast<size_t>(kGroupQueries * g.d * 2));
    scratch.scores.GrowTo(static_cast<size_t>(kGroupQueries * g.row_len() * 4));
    scratch.weights.GrowTo(static_cast<size_t>(kGroupQueries * g.row_len() * 2));
    scratch.acc.GrowTo(static_cast<size_t>(kGroupQueries * 2 * g.d * 4));
    AttendGroup(g, tile.scale);
  }
}

}  // namespace strata::engine::cpu
