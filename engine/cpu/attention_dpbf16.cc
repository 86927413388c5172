#include "engine/cpu/attention_dpbf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/attention_bf16_math.h"
#include "engine/cpu/kv_layout.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {
namespace {

using attention_internal::Bf16Row;
using attention_internal::ChunkMap;
using attention_internal::kChunkRows;
using attention_internal::PrefetchChunk;
using attention_internal::SoftmaxRowBf16;

constexpr int64_t kSpan = 32;          // keys per span: one row of 32 bf16 weights
constexpr int64_t kDimBlock = 32;      // head dims per 64-byte slice of a row
constexpr int64_t kDimTile = 16;       // output dims per accumulator vector
constexpr int64_t kGroupQueries = 16;  // queries whose score rows are held at once
// Chunks of keys, or spans of values, whose products run per step: enough
// score vectors per vdpbf16ps chain to hide its latency.
constexpr int64_t kStepChunks = 8;
constexpr int64_t kStepSpans = 4;
// How far ahead chunks are requested. On AMD Zen 5, unlike the Intel AMX
// machines (see kPrefetchBytes), the hardware does not fetch the rest of a
// chunk after its first 1 KiB: decode attention read KV at 10 GB/s a thread
// that way against 21 for whole chunks a step (8 chunks) ahead, which beat
// 4, 12 and 16 ahead, bursts per step and prefetches spread through the
// compute loops. That was for chunks a block apart; see Group::Prefetch for
// chunks that follow each other in the arena.
constexpr int64_t kAheadChunks = 8;

struct Scratch {
  AlignedBuffer q;        // [16 queries][d] bf16: dim pairs as 32-bit words
  AlignedBuffer scores;   // [nq][row_len] fp32: q.k, unscaled
  AlignedBuffer weights;  // [nq][row_len] bf16
  AlignedBuffer acc;      // [nq][d / 16 dim tiles][2 chains][16] fp32
  AlignedBuffer tail;     // the values chunk of the group's last key, later rows 0
  AlignedBuffer zeros;    // a values chunk of zeros: keys past the last one's chunk
};

// Up to 16 queries of a tile, with their shapes and scratch.
struct Group {
  const AttentionTile* tile;
  const ChunkMap* map;
  Scratch* scratch;
  int64_t d;
  int64_t first, nq;  // queries [first, first + nq) of the tile
  int64_t max_count, chunks, spans;
  // Decode queries over blocks mostly in arena order (see Prefetch): the
  // kernels walk each chunk whole, in memory order.
  bool stream;

  const AttentionQuery& query(int64_t j) const {
    return tile->queries[static_cast<size_t>(first + j)];
  }
  int64_t row_len() const { return spans * kSpan; }  // of the scores and weights rows
  const uint16_t* Keys(int64_t c) const { return map->Chunk(tile->block_table, c, false); }
  // Values chunk c as the weighted sum may read it: rows of keys at or past
  // max_count are zero (their arena rows may hold anything, and even a zero
  // weight times NaN is NaN); see PrepareTail.
  const uint16_t* Values(int64_t c) const {
    if (c >= chunks) return scratch->zeros.as<uint16_t>();
    if (c == chunks - 1 && max_count % kChunkRows != 0) return scratch->tail.as<uint16_t>();
    return map->Chunk(tile->block_table, c, true);
  }
  // Asks for chunk c ahead of its use. A streaming group skips the chunks
  // that lie right after the previous one in the arena (a head's blocks
  // side by side, kv_arena.h, with block table entries in order): the
  // hardware streams those itself, and requests for them only cost.
  // Decode attention at 2k tokens, one thread, blocks in order: 32 GB/s
  // this way against 25 with every chunk asked for (AMD Zen 5).
  void Prefetch(int64_t c, bool is_value) const {
    if (c >= chunks || (stream && map->FollowsPrevious(tile->block_table, c, is_value))) return;
    PrefetchChunk(map->Chunk(tile->block_table, c, is_value), kChunkRows * d * 2);
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

// The values chunk holding the group's last key, with the rows after it
// zeroed: each 64-byte vector holds tokens 2u (even halves) and 2u + 1.
STRATA_AVX512 void PrepareTail(const Group& g) {
  const int64_t valid = g.max_count % kChunkRows;
  if (valid == 0) return;
  const uint16_t* src = g.map->Chunk(g.tile->block_table, g.chunks - 1, true);
  auto* dst = g.scratch->tail.as<uint16_t>();
  for (int64_t v = 0; v < g.d / kDimTile * (kChunkRows / 2); ++v) {
    const int64_t u = v % (kChunkRows / 2);
    const __mmask32 keep = 2 * u + 1 < valid ? 0xffffffffu : (2 * u < valid ? 0x55555555u : 0u);
    _mm512_store_si512(dst + v * 32, _mm512_maskz_mov_epi16(keep, _mm512_load_si512(src + v * 32)));
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

// out[j][16 c .. 16 c + 16) = q_j . the 16 keys of chunk keys[c], for kJ
// queries and kC chunks: every score a chain over the dim pairs in order.
template <int kJ, int kC, bool kStream>
STRATA_AVX512 void ScoreKernel(const uint16_t* const (&q)[kJ], const uint16_t* const* keys,
                               int64_t d, float* const (&out)[kJ]) {
  __m512 acc[kJ][kC];
  for (int j = 0; j < kJ; ++j)
    for (int c = 0; c < kC; ++c) acc[j][c] = _mm512_setzero_ps();
  if constexpr (kStream) {
    // Chunks side by side (Group::stream): each chunk whole, in memory
    // order, so that they are one stream to the hardware prefetcher; the
    // chunks' chains are independent, and the core overlaps them. Same
    // products, in the same order, as the loop below.
    for (int c = 0; c < kC; ++c) {
      for (int64_t p = 0; p < d / 2; ++p) {
        const auto k = (__m512bh)_mm512_load_si512(keys[c] + p * 32);
        for (int j = 0; j < kJ; ++j) acc[j][c] = _mm512_dpbf16_ps(acc[j][c], k, Word(q[j] + 2 * p));
      }
    }
  } else {
    for (int64_t p = 0; p < d / 2; ++p) {
      __m512bh k[kC];
      for (int c = 0; c < kC; ++c) k[c] = (__m512bh)_mm512_load_si512(keys[c] + p * 32);
      for (int j = 0; j < kJ; ++j) {
        const __m512bh qp = Word(q[j] + 2 * p);
        for (int c = 0; c < kC; ++c) acc[j][c] = _mm512_dpbf16_ps(acc[j][c], k[c], qp);
      }
    }
  }
  for (int j = 0; j < kJ; ++j)
    for (int c = 0; c < kC; ++c) _mm512_store_ps(out[j] + c * 16, acc[j][c]);
}

// ScoreKernel for queries [j, j + kJ) of the group and chunks [c0 + c, c0
// + c + kC), whose keys are keys[c ..].
template <int kJ, int kC>
STRATA_AVX512 void ScoreRun(const Group& g, int64_t j, const uint16_t* const* keys, int64_t c0,
                            int64_t c) {
  const auto* q = g.scratch->q.as<uint16_t>();
  float* scores = g.scratch->scores.as<float>();
  const uint16_t* qs[kJ];
  float* outs[kJ];
  for (int i = 0; i < kJ; ++i) {
    qs[i] = q + (j + i) * g.d;
    outs[i] = scores + (j + i) * g.row_len() + (c0 + c) * kChunkRows;
  }
  if (g.stream) {
    ScoreKernel<kJ, kC, true>(qs, keys + c, g.d, outs);
  } else {
    ScoreKernel<kJ, kC, false>(qs, keys + c, g.d, outs);
  }
}

// Chunks [c0, c0 + n) for queries [j, j + kJ): eight score vectors per
// kernel while they last (enough chains to hide vdpbf16ps's latency), then
// four, two, one.
template <int kJ>
STRATA_AVX512 void ScoreQueries(const Group& g, int64_t j, const uint16_t* const* keys, int64_t c0,
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

// Every query's q.k over chunks [c0, c0 + 8), the keys read where they lie
// in the arena, each chunk asked for a step ahead.
STRATA_AVX512 void ScoreStep(const Group& g, int64_t c0) {
  const int64_t n = std::min(kStepChunks, g.chunks - c0);
  const uint16_t* keys[kStepChunks];
  for (int64_t c = 0; c < n; ++c) {
    g.Prefetch(c0 + c + kAheadChunks, false);
    keys[c] = g.Keys(c0 + c);
  }
  for (int64_t j = 0; j < g.nq; j += 2) {
    if (j + 1 < g.nq) {
      ScoreQueries<2>(g, j, keys, c0, n);
    } else {
      ScoreQueries<1>(g, j, keys, c0, n);
    }
  }
}

// acc[j] (the query's [d / 16 tiles][2 chains][16] sums, tiles [2 b0, 2 b0
// + 2 kB)) += its weights of spans [0, n) times their values, chunks[2 s]
// and chunks[2 s + 1] for span s: token pair u into chain u % 2.
template <int kJ, int kB, bool kStream>
STRATA_AVX512 void WeightedKernel(const uint16_t* const (&w)[kJ], const uint16_t* const* chunks,
                                  int64_t n, int64_t b0, float* const (&acc)[kJ]) {
  __m512 a[kJ][2 * kB][2];
  for (int j = 0; j < kJ; ++j)
    for (int t = 0; t < 2 * kB; ++t)
      for (int e = 0; e < 2; ++e) a[j][t][e] = _mm512_load_ps(acc[j] + ((2 * b0 + t) * 2 + e) * 16);
  if constexpr (kStream) {
    // Chunks side by side: each chunk's tiles in memory order (see
    // ScoreKernel); every chain still takes its token pairs in order.
    for (int64_t s = 0; s < n; ++s) {
      for (int half = 0; half < 2; ++half) {
        const uint16_t* chunk = chunks[2 * s + half];
        for (int t = 0; t < 2 * kB; ++t) {
          for (int64_t u = 8 * half; u < 8 * half + 8; u += 2) {
            for (int e = 0; e < 2; ++e) {
              const auto v =
                  (__m512bh)_mm512_load_si512(chunk + ((2 * b0 + t) * 8 + u % 8 + e) * 32);
              for (int j = 0; j < kJ; ++j) {
                a[j][t][e] = _mm512_dpbf16_ps(a[j][t][e], v, Word(w[j] + s * kSpan + 2 * (u + e)));
              }
            }
          }
        }
      }
    }
  } else {
    for (int64_t s = 0; s < n; ++s) {
      for (int64_t u = 0; u < 16; u += 2) {
        const uint16_t* chunk = chunks[2 * s + u / 8];
        for (int e = 0; e < 2; ++e) {
          __m512bh wp[kJ];
          for (int j = 0; j < kJ; ++j) wp[j] = Word(w[j] + s * kSpan + 2 * (u + e));
          for (int t = 0; t < 2 * kB; ++t) {
            const auto v = (__m512bh)_mm512_load_si512(chunk + ((2 * b0 + t) * 8 + u % 8 + e) * 32);
            for (int j = 0; j < kJ; ++j) a[j][t][e] = _mm512_dpbf16_ps(a[j][t][e], v, wp[j]);
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
STRATA_AVX512 void WeightQueries(const Group& g, int64_t j, const uint16_t* const* chunks,
                                 int64_t s0, int64_t n) {
  const auto* weights = g.scratch->weights.as<uint16_t>();
  float* acc = g.scratch->acc.as<float>();
  const uint16_t* w[kJ];
  float* a[kJ];
  for (int i = 0; i < kJ; ++i) {
    w[i] = weights + (j + i) * g.row_len() + s0 * kSpan;
    a[i] = acc + (j + i) * 2 * g.d;
  }
  int64_t b0 = 0;
  for (; b0 + 2 <= g.d / kDimBlock; b0 += 2) {
    if (g.stream) {
      WeightedKernel<kJ, 2, true>(w, chunks, n, b0, a);
    } else {
      WeightedKernel<kJ, 2, false>(w, chunks, n, b0, a);
    }
  }
  if (b0 < g.d / kDimBlock) {
    if (g.stream) {
      WeightedKernel<kJ, 1, true>(w, chunks, n, b0, a);
    } else {
      WeightedKernel<kJ, 1, false>(w, chunks, n, b0, a);
    }
  }
}

// Every query's weighted sum of the values of spans [s0, s0 + 4), read where
// they lie in the arena (the last chunk from PrepareTail's copy).
STRATA_AVX512 void WeightStep(const Group& g, int64_t s0) {
  const int64_t n = std::min(kStepSpans, g.spans - s0);
  const uint16_t* chunks[2 * kStepSpans];
  for (int64_t c = 0; c < 2 * n; ++c) {
    g.Prefetch(2 * s0 + c + kAheadChunks, true);
    chunks[c] = g.Values(2 * s0 + c);
  }
  for (int64_t j = 0; j < g.nq; j += 2) {
    if (j + 1 < g.nq) {
      WeightQueries<2>(g, j, chunks, s0, n);
    } else {
      WeightQueries<1>(g, j, chunks, s0, n);
    }
  }
}

// Each query's output: its two chains added, over its softmax sum.
STRATA_AVX512 void WriteOutputs(const Group& g, const float* sums) {
  const float* acc = g.scratch->acc.as<float>();
  for (int64_t j = 0; j < g.nq; ++j) {
    const __m512 inv = _mm512_set1_ps(1.0f / sums[j]);
    const float* a = acc + j * 2 * g.d;
    float* out = g.query(j).out;
    for (int64_t t = 0; t < g.d / kDimTile; ++t) {
      const __m512 sum = _mm512_add_ps(_mm512_load_ps(a + t * 32), _mm512_load_ps(a + t * 32 + 16));
      _mm512_storeu_ps(out + t * kDimTile, _mm512_mul_ps(sum, inv));
    }
  }
}

// The group's attention: every q.k, the softmax rows, the weighted sums.
STRATA_AVX512 void Attend(const Group& g) {
  PackQueries(g);
  PrepareTail(g);
  for (int64_t c = 0; c < kAheadChunks; ++c) g.Prefetch(c, false);
  for (int64_t c0 = 0; c0 < g.chunks; c0 += kStepChunks) ScoreStep(g, c0);
  for (int64_t c = 0; c < kAheadChunks; ++c) g.Prefetch(c, true);
  alignas(64) float sums[kGroupQueries];
  const int64_t row = g.row_len();
  for (int64_t j = 0; j < g.nq; ++j) {
    sums[j] = SoftmaxRowBf16(g.scratch->scores.as<float>() + j * row, g.query(j).count, row,
                             g.tile->scale, g.scratch->weights.as<uint16_t>() + j * row);
  }
  float* acc = g.scratch->acc.as<float>();
  std::fill(acc, acc + g.nq * 2 * g.d, 0.0f);
  for (int64_t s0 = 0; s0 < g.spans; s0 += kStepSpans) WeightStep(g, s0);
  WriteOutputs(g, sums);
}

// Whether the group decodes (its queries, one or a GQA group's, all see the
// same keys; prefill's see causal prefixes and reread them from the cache)
// over chunks mostly in arena order, each right after the one before: then
// they stream (Group::stream). At three in four or more; with blocks in
// random order, one thread read KV at 18 GB/s that way against 22 with
// every chunk asked for ahead (AMD Zen 5).
bool StreamsItsChunks(const Group& g) {
  for (int64_t j = 1; j < g.nq; ++j) {
    if (g.query(j).count != g.query(0).count) return false;
  }
  int64_t in_order = 0;
  for (int64_t c = 1; c < g.chunks; ++c)
    in_order += g.map->FollowsPrevious(g.tile->block_table, c, false);
  return 4 * in_order >= 3 * (g.chunks - 1);
}

// Sizes `g` for its queries (set first, nq) and grows its scratch.
void PrepareGroup(Group& g) {
  int64_t max_count = 0;
  for (int64_t j = 0; j < g.nq; ++j) max_count = std::max(max_count, g.query(j).count);
  SetCount(g, max_count);
  g.stream = StreamsItsChunks(g);
  Scratch& scratch = *g.scratch;
  const size_t chunk_bytes = static_cast<size_t>(kChunkRows * g.d * 2);
  scratch.tail.GrowTo(chunk_bytes);
  if (scratch.zeros.size() < chunk_bytes) {
    scratch.zeros.GrowTo(chunk_bytes);
    std::memset(scratch.zeros.data(), 0, scratch.zeros.size());
  }
  scratch.q.GrowTo(static_cast<size_t>(kGroupQueries * g.d * 2));
  // Rows for the group's nq queries only: a decode query's scores need one
  // row of the context's length, not 16.
  scratch.scores.GrowTo(static_cast<size_t>(g.nq * g.row_len() * 4));
  scratch.weights.GrowTo(static_cast<size_t>(g.nq * g.row_len() * 2));
  scratch.acc.GrowTo(static_cast<size_t>(g.nq * 2 * g.d * 4));
}

}  // namespace

bool Dpbf16AttentionSupported(const KvCacheSpec& spec) {
  return KvLayoutFor(spec) == KvLayout::kChunks && HasAvx512Bf16();
}

void AttendTileDpbf16(const AttentionTile& tile) {
  thread_local Scratch scratch;
  ChunkMap map;
  map.Init(tile);
  const auto queries = static_cast<int64_t>(tile.queries.size());
  // Groups one by one: they read the same chunks, which the first leaves in
  // the cache.
  for (int64_t first = 0; first < queries; first += kGroupQueries) {
    Group g;
    g.tile = &tile;
    g.map = &map;
    g.scratch = &scratch;
    g.d = tile.arena->spec().head_dim;
    g.first = first;
    g.nq = std::min(kGroupQueries, queries - first);
    PrepareGroup(g);
    Attend(g);
  }
}

}  // namespace strata::engine::cpu
