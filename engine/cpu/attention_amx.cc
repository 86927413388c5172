#include "engine/cpu/attention_amx.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/gemm_kernels.h"
#include "engine/cpu/simd.h"
#include "engine/cpu/simd_math.h"

namespace strata::engine::cpu {
namespace {

#define STRATA_AMX_ATTENTION \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

using simd_internal::Exp512;
using simd_internal::LaneMask;
using simd_internal::Sum512;

constexpr int64_t kChunk = 16;     // keys per score tile (its rows); queries per tile
constexpr int64_t kDimBlock = 32;  // head dims per key tile row (64 bytes)
constexpr int64_t kDimTile = 16;   // output dims per C tile of the weighted sum
constexpr int64_t kDimGroup = 64;  // output dims held in C tiles at once (4 tiles)
constexpr int64_t kAhead = 4;      // chunks of keys / values requested ahead

// Tiles are configured for the group's nq queries only (decode has 1 to a
// few): the scratch then holds nq columns or rows, not 16. A query's column
// or row is computed alike whatever the tile's width or height.
//
// Scores: tile 0 = C [16 keys][nq queries] fp32, 1 = A keys [16][32 dims]
// bf16 (rows straight from the arena), 2 = B q^T [16 dim pairs][nq][2].
STRATA_AMX_ATTENTION void ConfigureScores(int64_t nq) {
  gemm_internal::AmxTileConfig config;
  for (int t = 0; t < 3; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  config.colsb[0] = config.colsb[2] = static_cast<uint16_t>(nq * 4);
  _tile_loadconfig(&config);
}

// Weighted sum: tiles 0-3 = C [nq queries][16 dims] fp32, 4 = A weights
// [nq queries][16 keys] bf16, 5-7 = B values [8 key pairs][16 dims][2] bf16.
STRATA_AMX_ATTENTION void ConfigureWeighted(int64_t nq) {
  gemm_internal::AmxTileConfig config;
  for (int t = 0; t < 4; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = static_cast<uint8_t>(nq);
  }
  config.colsb[4] = 32;
  config.rows[4] = static_cast<uint8_t>(nq);
  for (int t = 5; t < 8; ++t) {  // three B tiles, so loads run ahead of the products
    config.colsb[t] = 64;
    config.rows[t] = 8;
  }
  _tile_loadconfig(&config);
}

struct Scratch {
  AlignedBuffer qt;       // [d / 32][16 dim pairs][16 queries][2] bf16
  AlignedBuffer scores;   // [chunks][16 keys][nq queries] fp32
  AlignedBuffer keys;     // [nq][chunks * 16] fp32: scaled scores, keys in lanes
  AlignedBuffer weights;  // [chunks][nq queries][16 keys] bf16
  AlignedBuffer values;   // [4][8 key pairs][16 dims][2] bf16
  AlignedBuffer out;      // [4][nq (<= 16) queries][16 dims] fp32, rows 64 bytes apart
};

void Grow(AlignedBuffer& buffer, size_t bytes) {
  if (buffer.size() < bytes) buffer = AlignedBuffer(bytes);
}

void Prefetch(const uint16_t* p, int64_t bytes) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t i = 0; i < bytes; i += 64) __builtin_prefetch(c + i, 0, 2);
}

// Up to 16 queries of a tile, with their shapes and scratch.
struct Group {
  const AttentionTile* tile;
  int64_t first, nq;  // queries [first, first + nq) of the tile
  int64_t d, block_size, max_count, chunks;
  Scratch* scratch;

  const AttentionQuery& query(int64_t j) const {
    return tile->queries[static_cast<size_t>(first + j)];
  }
  // Keys or values of tokens [16 c, 16 c + 16): rows of d bf16.
  const uint16_t* Chunk(int64_t c, bool is_value) const {
    const int64_t token = c * kChunk;
    const std::byte* head =
        tile->arena->HeadData(tile->block_table[static_cast<size_t>(token / block_size)],
                              tile->layer, is_value, tile->kv_head);
    return reinterpret_cast<const uint16_t*>(head) + (token % block_size) * d;
  }
};

// In-register transpose of a 16 x 16 fp32 matrix: r[i] becomes column i.
STRATA_AMX_ATTENTION inline void Transpose16(__m512 (&r)[16]) {
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

// q^T as B tiles: [d / 32][16 dim pairs][16 queries][2], absent queries 0.
// Per 32-dim block, query j's 16 dim pairs (one 64-byte row of bf16) become
// column j: a 16 x 16 transpose of 32-bit words.
STRATA_AMX_ATTENTION void PackQueries(const Group& g) {
  // Each query's q sits in its own row of the decoder's qkv buffer, a few KB
  // from the next, where no hardware prefetcher looks: ask for all of them
  // first, so that their misses overlap instead of queueing one by one.
  for (int64_t j = 0; j < g.nq; ++j) {
    const char* q = reinterpret_cast<const char*>(g.query(j).q);
    for (int64_t i = 0; i < g.d * 4; i += 64) __builtin_prefetch(q + i, 0, 3);
  }
  auto* qt = g.scratch->qt.as<uint16_t>();
  for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
    __m512 rows[16];
    for (int64_t j = 0; j < kChunk; ++j) {
      if (j >= g.nq) {
        rows[j] = _mm512_setzero_ps();
        continue;
      }
      const float* q = g.query(j).q + kb * kDimBlock;
      const __m256i lo = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(q));
      const __m256i hi = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(q + 16));
      rows[j] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
    }
    Transpose16(rows);  // rows[p]: dim pair p of every query
    for (int64_t p = 0; p < kChunk; ++p) _mm512_store_ps(qt + kb * 512 + p * 32, rows[p]);
  }
}

// scores[c] = K chunk c . q^T (unscaled); the score tiles are configured.
STRATA_AMX_ATTENTION inline void ScoreChunk(const Group& g, int64_t c) {
  const auto* qt = g.scratch->qt.as<uint16_t>();
  const uint16_t* k = g.Chunk(c, false);
  _tile_zero(0);
  for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
    _tile_loadd(1, k + kb * kDimBlock, g.d * 2);
    _tile_loadd(2, qt + kb * 512, 64);
    _tile_dpbf16ps(0, 1, 2);
  }
  _tile_stored(0, g.scratch->scores.as<float>() + c * kChunk * g.nq, g.nq * 4);
}

// Scores with q resident and two chunks in flight, for head_dim <= 64 (one
// or two 32-dim blocks): tiles 0-1 = C of chunks c and c + 1, 2-3 = q^T
// blocks, 4-5 and 6-7 = the two chunks' key blocks. Each chunk's C gets the
// same products in the same order as ScoreChunk's, so the scores are
// bit-identical; only the two chains now overlap, and q is loaded once.
STRATA_AMX_ATTENTION void ConfigureScoresResident(int64_t nq) {
  gemm_internal::AmxTileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  for (int t : {0, 1, 2, 3}) config.colsb[t] = static_cast<uint16_t>(nq * 4);
  _tile_loadconfig(&config);
}

STRATA_AMX_ATTENTION void ScorePassResident(const Group& g) {
  ConfigureScoresResident(g.nq);
  const auto* qt = g.scratch->qt.as<uint16_t>();
  float* scores = g.scratch->scores.as<float>();
  const bool two_blocks = g.d == 2 * kDimBlock;
  const int64_t stride = g.d * 2;
  const int64_t chunk_bytes = kChunk * g.d * 2;
  _tile_loadd(2, qt, 64);
  if (two_blocks) _tile_loadd(3, qt + 512, 64);
  for (int64_t c = 0; c < std::min(kAhead, g.chunks); ++c) Prefetch(g.Chunk(c, false), chunk_bytes);
  for (int64_t c = 0; c < g.chunks; c += 2) {
    for (int64_t a = c + kAhead; a < std::min(c + kAhead + 2, g.chunks); ++a) {
      Prefetch(g.Chunk(a, false), chunk_bytes);
    }
    const bool pair = c + 1 < g.chunks;
    const uint16_t* k0 = g.Chunk(c, false);
    _tile_zero(0);
    _tile_loadd(4, k0, stride);
    if (two_blocks) _tile_loadd(5, k0 + kDimBlock, stride);
    if (pair) {
      const uint16_t* k1 = g.Chunk(c + 1, false);
      _tile_zero(1);
      _tile_loadd(6, k1, stride);
      if (two_blocks) _tile_loadd(7, k1 + kDimBlock, stride);
    }
    _tile_dpbf16ps(0, 4, 2);
    if (pair) _tile_dpbf16ps(1, 6, 2);
    if (two_blocks) {
      _tile_dpbf16ps(0, 5, 3);
      if (pair) _tile_dpbf16ps(1, 7, 3);
    }
    _tile_stored(0, scores + c * kChunk * g.nq, g.nq * 4);
    if (pair) _tile_stored(1, scores + (c + 1) * kChunk * g.nq, g.nq * 4);
  }
}

// ScoreChunk for every chunk, in order.
STRATA_AMX_ATTENTION void ScorePass(const Group& g) {
  if (g.d <= 2 * kDimBlock) {
    ScorePassResident(g);
    return;
  }
  ConfigureScores(g.nq);
  const int64_t chunk_bytes = kChunk * g.d * 2;
  for (int64_t c = 0; c < std::min(kAhead, g.chunks); ++c) Prefetch(g.Chunk(c, false), chunk_bytes);
  for (int64_t c = 0; c < g.chunks; ++c) {
    if (c + kAhead < g.chunks) Prefetch(g.Chunk(c + kAhead, false), chunk_bytes);
    ScoreChunk(g, c);
  }
}

// Per query: its scaled scores with keys in lanes, [nq][chunks * 16]
// (scratch.keys), from the score tiles' [key][query] layout.
STRATA_AMX_ATTENTION void GatherScores(const Group& g, float scale) {
  const float* scores = g.scratch->scores.as<float>();
  float* keys = g.scratch->keys.as<float>();
  const int64_t stride = g.chunks * kChunk;
  const __m512 scale_v = _mm512_set1_ps(scale);
  const __mmask16 lanes = static_cast<__mmask16>((1u << g.nq) - 1);
  for (int64_t c = 0; c < g.chunks; ++c) {
    const float* chunk = scores + c * kChunk * g.nq;
    if (g.nq == 1) {  // decode without GQA: the chunk's keys are contiguous
      _mm512_store_ps(keys + c * kChunk, _mm512_mul_ps(_mm512_loadu_ps(chunk), scale_v));
      continue;
    }
    __m512 rows[16];
    for (int64_t k = 0; k < kChunk; ++k) rows[k] = _mm512_maskz_loadu_ps(lanes, chunk + k * g.nq);
    Transpose16(rows);  // rows[j]: query j's 16 keys
    for (int64_t j = 0; j < g.nq; ++j) {
      _mm512_store_ps(keys + j * stride + c * kChunk, _mm512_mul_ps(rows[j], scale_v));
    }
  }
}

// Per query: the max of its scores over its keys, then exp(s - max)
// rounded to bf16 as the weight of each of its keys (0 past its count),
// written as its row of the weight tiles ([chunk][query][16 keys]); sums[j]
// = the sum of its rounded weights, per lane over chunks in order, then
// across lanes in a fixed tree. Only the query's own keys enter, in a fixed
// order, so its result does not depend on the others.
STRATA_AMX_ATTENTION void Softmax(const Group& g, float scale, float* sums) {
  GatherScores(g, scale);
  const float* keys = g.scratch->keys.as<float>();
  auto* weights = g.scratch->weights.as<uint16_t>();
  const int64_t stride = g.chunks * kChunk;
  for (int64_t j = 0; j < g.nq; ++j) {
    const int64_t count = g.query(j).count;
    const float* row = keys + j * stride;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t c = 0; c * kChunk < count; ++c) {
      mx = _mm512_mask_max_ps(mx, LaneMask(count - c * kChunk), mx, _mm512_load_ps(row + c * 16));
    }
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t c = 0; c < g.chunks; ++c) {
      const __mmask16 valid = LaneMask(count - c * kChunk);
      __m256i h = _mm256_setzero_si256();
      if (valid != 0) {
        const __m512 e = Exp512(_mm512_sub_ps(_mm512_load_ps(row + c * kChunk), max));
        h = _mm256_maskz_mov_epi16(valid, (__m256i)_mm512_cvtneps_pbh(e));
        sum = _mm512_mask_add_ps(
            sum, valid, sum, _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(weights + (c * g.nq + j) * kChunk), h);
    }
    sums[j] = Sum512(sum);
  }
}

// B tiles of value chunk v for output dims [dim0, dim0 + 16 * tiles): key
// pairs interleaved per dim; keys at or past `valid` are zero.
STRATA_AMX_ATTENTION void PackValues(const uint16_t* v, int64_t d, int64_t dim0, int64_t tiles,
                                     int64_t valid, uint16_t* out) {
  alignas(64) static constexpr uint16_t kInterleave[32] = {
      0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,  37, 6,  38, 7,  39,
      8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  for (int64_t u = 0; u < kChunk / 2; ++u) {
    const uint16_t* r0 = v + 2 * u * d + dim0;
    for (int64_t s = 0; s < tiles; ++s) {
      const __m256i a = 2 * u < valid
                            ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + s * 16))
                            : _mm256_setzero_si256();
      const __m256i b = 2 * u + 1 < valid
                            ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + d + s * 16))
                            : _mm256_setzero_si256();
      const __m512i pair = _mm512_permutex2var_epi16(_mm512_castsi256_si512(a), interleave,
                                                     _mm512_castsi256_si512(b));
      _mm512_store_si512(out + s * 256 + u * 32, pair);
    }
  }
}

// C tiles 0..tiles-1 += weights of chunk c . value chunk c, for output dims
// [dim0, dim0 + 16 * tiles); the weighted-sum tiles are configured.
STRATA_AMX_ATTENTION inline void DotChunk(const Group& g, int64_t c, int64_t dim0, int64_t tiles) {
  auto* values = g.scratch->values.as<uint16_t>();
  PackValues(g.Chunk(c, true), g.d, dim0, tiles, std::min(kChunk, g.max_count - c * kChunk),
             values);
  _tile_loadd(4, g.scratch->weights.as<uint16_t>() + c * g.nq * kChunk, 32);
  // (The tile intrinsics take their register numbers as literals.)
  _tile_loadd(5, values, 64);
  _tile_loadd(6, values + 256, 64);
  _tile_dpbf16ps(0, 4, 5);
  _tile_dpbf16ps(1, 4, 6);
  if (tiles > 2) {
    _tile_loadd(7, values + 512, 64);
    _tile_loadd(5, values + 768, 64);
    _tile_dpbf16ps(2, 4, 7);
    _tile_dpbf16ps(3, 4, 5);
  }
}

STRATA_AMX_ATTENTION inline void StoreAccumulators(float* acc, int64_t tiles) {
  _tile_stored(0, acc, 64);
  _tile_stored(1, acc + 256, 64);
  if (tiles > 2) {
    _tile_stored(2, acc + 512, 64);
    _tile_stored(3, acc + 768, 64);
  }
}

// Tiles of output dims [dim0, dim0 + 16 * tiles) for `g`'s scratch `out`
// (acc, [tiles][16 queries][16 dims]) -> its queries' outputs / sums.
void WriteOutputs(const Group& g, const float* acc, const float* sums, int64_t dim0,
                  int64_t tiles) {
  for (int64_t j = 0; j < g.nq; ++j) {
    const float inv = 1.0f / sums[j];
    float* dst = g.query(j).out + dim0;
    for (int64_t s = 0; s < tiles; ++s) {
      for (int64_t i = 0; i < kDimTile; ++i) dst[s * 16 + i] = acc[s * 256 + j * 16 + i] * inv;
    }
  }
}

// out rows (16 queries x 16 * tiles dims) = weights . value chunks, over
// every chunk in order, for dims [dim0, dim0 + 16 * tiles).
STRATA_AMX_ATTENTION void WeightedGroup(const Group& g, int64_t dim0, int64_t tiles) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t chunk_bytes = kChunk * g.d * 2;
  for (int64_t c = 0; c < std::min(kAhead, g.chunks); ++c) Prefetch(g.Chunk(c, true), chunk_bytes);
  for (int64_t c = 0; c < g.chunks; ++c) {
    if (c + kAhead < g.chunks) Prefetch(g.Chunk(c + kAhead, true), chunk_bytes);
    DotChunk(g, c, dim0, tiles);
  }
  StoreAccumulators(g.scratch->out.as<float>(), tiles);
}

STRATA_AMX_ATTENTION void AttendGroup(const Group& g, float scale) {
  PackQueries(g);
  ScorePass(g);
  alignas(64) float sums[16];
  Softmax(g, scale, sums);
  ConfigureWeighted(g.nq);
  const float* out = g.scratch->out.as<float>();
  for (int64_t dim0 = 0; dim0 < g.d; dim0 += kDimGroup) {
    const int64_t tiles = std::min(kDimGroup, g.d - dim0) / kDimTile;  // 2 or 4
    WeightedGroup(g, dim0, tiles);
    WriteOutputs(g, out, sums, dim0, tiles);
  }
  _tile_release();
}

}  // namespace

bool AmxAttentionSupported(const KvCacheSpec& spec) {
  return spec.dtype == DType::kBF16 && spec.head_dim % kDimBlock == 0 && spec.head_dim <= 512 &&
         spec.block_size % kChunk == 0 && gemm_internal::AmxUsable();
}

void AttendTileAmx(const AttentionTile& tile) {
  thread_local Scratch scratch;
  const KvCacheSpec& spec = tile.arena->spec();
  Group g;
  g.tile = &tile;
  g.d = spec.head_dim;
  g.block_size = spec.block_size;
  g.scratch = &scratch;
  const auto queries = static_cast<int64_t>(tile.queries.size());
  for (g.first = 0; g.first < queries; g.first += kChunk) {
    g.nq = std::min(kChunk, queries - g.first);
    g.max_count = 0;
    for (int64_t j = 0; j < g.nq; ++j) g.max_count = std::max(g.max_count, g.query(j).count);
    g.chunks = (g.max_count + kChunk - 1) / kChunk;
    Grow(scratch.qt, static_cast<size_t>(g.d / kDimBlock * 1024));
    Grow(scratch.scores, static_cast<size_t>(g.chunks * 1024));
    Grow(scratch.keys, static_cast<size_t>(g.chunks * 1024));
    Grow(scratch.weights, static_cast<size_t>(g.chunks * 512));
    Grow(scratch.values, 4 * 512);
    Grow(scratch.out, 4 * 1024);
    AttendGroup(g, tile.scale);
  }
}

}  // namespace strata::engine::cpu
