#include "engine/cpu/attention_amx.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/attention_bf16_math.h"
#include "engine/cpu/gemm_kernels.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {
namespace {

#define STRATA_AMX_ATTENTION \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

using attention_internal::Bf16Row;
using attention_internal::ChunkMap;
using attention_internal::PrefetchChunk;
using attention_internal::SoftmaxRowBf16;
using attention_internal::Transpose16;

constexpr int64_t kChunk = 16;     // keys per score tile; queries per group
constexpr int64_t kSpan = 32;      // keys per weighted-sum product (a weight row)
constexpr int64_t kDimBlock = 32;  // head dims per score product (64 bytes)
constexpr int64_t kDimTile = 16;   // output dims per C tile of the weighted sum
constexpr int64_t kDimGroup = 64;  // output dims held in C tiles at once (4 tiles)
constexpr int64_t kAhead = 4;      // chunks of keys / values requested ahead
// A tile of at least this many queries (prefill) packs its keys and values
// once for all its groups, instead of each group re-reading them in the
// arena's layout: two groups already halve the packing.
constexpr int64_t kPackedTileQueries = 2 * kChunk;

// Tiles are configured for the group's nq queries only (decode has 1 to a
// few): the scratch then holds nq columns or rows, not 16. A query's column
// or row is computed alike whatever the tile's width or height.
//
// Scores, keys as rows (decode): tile 0 = C [16 keys][nq queries] fp32, 1 =
// A keys [16][32 dims] bf16 (rows straight from the arena), 2 = B q^T [16
// dim pairs][nq][2].
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
// [nq queries][32 keys] bf16, 5-7 = B values [16 key pairs][16 dims][2] bf16.
STRATA_AMX_ATTENTION void ConfigureWeighted(int64_t nq) {
  gemm_internal::AmxTileConfig config;
  for (int t = 0; t < 5; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = static_cast<uint8_t>(nq);
  }
  for (int t = 5; t < 8; ++t) {  // three B tiles, so loads run ahead of the products
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  _tile_loadconfig(&config);
}

struct Scratch {
  AlignedBuffer qt;           // [d / 32][16 dim pairs][16 queries][2] bf16
  AlignedBuffer qa;           // [16 queries][d] bf16
  AlignedBuffer tile_scores;  // [chunks][16 keys][nq queries] fp32
  AlignedBuffer scores;       // [nq][spans * 32] fp32: q.k, unscaled
  AlignedBuffer weights;      // [nq][spans * 32] bf16
  AlignedBuffer values;       // [d / 16][16 key pairs][16 dims][2] bf16: one span
  AlignedBuffer keys_t;       // packed tile: [chunks][d / 32][16 dim pairs][16 keys][2]
  AlignedBuffer values_p;     // packed tile: [spans][d / 16][16 key pairs][16 dims][2]
  AlignedBuffer out;          // [4][nq (<= 16) queries][16 dims] fp32, rows 64 bytes apart
};

// Up to 16 queries of a tile, with their shapes and scratch.
struct Group {
  const AttentionTile* tile;
  int64_t first, nq;  // queries [first, first + nq) of the tile
  int64_t d, max_count, chunks, spans;
  bool packed;  // the scratch's keys_t and values_p hold the whole tile's
  Scratch* scratch;
  const ChunkMap* map;

  const AttentionQuery& query(int64_t j) const {
    return tile->queries[static_cast<size_t>(first + j)];
  }
  int64_t stride() const { return spans * kSpan; }  // of the scores and weights rows
  // Keys or values of tokens [16 c, 16 c + 16), rows d apart (one block).
  const uint16_t* Chunk(int64_t c, bool is_value) const {
    return map->Chunk(tile->block_table, c, is_value);
  }
};

// Asks for the q rows and (to write) the output rows of the tile's queries
// [first, first + n): each sits a few KB from the next in the decoder's
// buffers, where no hardware prefetcher looks, so their misses should
// overlap the work before they are needed.
void PrefetchRows(const AttentionTile& tile, int64_t first, int64_t n, int64_t d) {
  for (int64_t j = first; j < first + n; ++j) {
    const AttentionQuery& query = tile.queries[static_cast<size_t>(j)];
    const char* q = reinterpret_cast<const char*>(query.q);
    char* out = reinterpret_cast<char*>(query.out);
    for (int64_t i = 0; i < d * 4; i += 64) {
      __builtin_prefetch(q + i, 0, 3);
      __builtin_prefetch(out + i, 1, 3);
    }
  }
}

// q^T as B tiles: [d / 32][16 dim pairs][16 queries][2], absent queries 0.
// Per 32-dim block, query j's 16 dim pairs (one 64-byte row of bf16) become
// column j: a 16 x 16 transpose of 32-bit words.
STRATA_AMX_ATTENTION void PackQueriesT(const Group& g) {
  auto* qt = g.scratch->qt.as<uint16_t>();
  for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
    __m512 rows[16];
    for (int64_t j = 0; j < kChunk; ++j) {
      rows[j] = j < g.nq ? Bf16Row(g.query(j).q + kb * kDimBlock) : _mm512_setzero_ps();
    }
    Transpose16(rows);  // rows[p]: dim pair p of every query
    for (int64_t p = 0; p < kChunk; ++p) _mm512_store_ps(qt + kb * 512 + p * 32, rows[p]);
  }
}

// q as A tiles: [16 queries][d] bf16 (rows past nq are not read).
STRATA_AMX_ATTENTION void PackQueryRows(const Group& g) {
  auto* qa = g.scratch->qa.as<uint16_t>();
  for (int64_t j = 0; j < g.nq; ++j) {
    for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
      _mm512_store_ps(qa + j * g.d + kb * kDimBlock, Bf16Row(g.query(j).q + kb * kDimBlock));
    }
  }
}

// tile_scores[c] = K chunk c . q^T; the score tiles are configured.
STRATA_AMX_ATTENTION inline void ScoreChunk(const Group& g, int64_t c, float* out) {
  const auto* qt = g.scratch->qt.as<uint16_t>();
  const uint16_t* k = g.Chunk(c, false);
  _tile_zero(0);
  for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
    _tile_loadd(1, k + kb * kDimBlock, g.d * 2);
    _tile_loadd(2, qt + kb * 512, 64);
    _tile_dpbf16ps(0, 1, 2);
  }
  _tile_stored(0, out + c * kChunk * g.nq, g.nq * 4);
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

STRATA_AMX_ATTENTION void ScorePassResident(const Group& g, float* out) {
  ConfigureScoresResident(g.nq);
  const auto* qt = g.scratch->qt.as<uint16_t>();
  const bool two_blocks = g.d == 2 * kDimBlock;
  const int64_t stride = g.d * 2;
  _tile_loadd(2, qt, 64);
  if (two_blocks) _tile_loadd(3, qt + 512, 64);
  for (int64_t c = 0; c < std::min(kAhead, g.chunks); ++c) PrefetchChunk(g.Chunk(c, false));
  for (int64_t c = 0; c < g.chunks; c += 2) {
    for (int64_t a = c + kAhead; a < std::min(c + kAhead + 2, g.chunks); ++a) {
      PrefetchChunk(g.Chunk(a, false));
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
    _tile_stored(0, out + c * kChunk * g.nq, g.nq * 4);
    if (pair) _tile_stored(1, out + (c + 1) * kChunk * g.nq, g.nq * 4);
  }
}

// Keys as rows: [chunks][16 keys][nq] into `out`, chunk by chunk in order.
STRATA_AMX_ATTENTION void ScorePassKeyRows(const Group& g, float* out) {
  if (g.d <= 2 * kDimBlock) {
    ScorePassResident(g, out);
    return;
  }
  ConfigureScores(g.nq);
  for (int64_t c = 0; c < std::min(kAhead, g.chunks); ++c) PrefetchChunk(g.Chunk(c, false));
  for (int64_t c = 0; c < g.chunks; ++c) {
    if (c + kAhead < g.chunks) PrefetchChunk(g.Chunk(c + kAhead, false));
    ScoreChunk(g, c, out);
  }
}

// The scores as [nq][stride] rows (scratch.scores) from the key-row tiles'
// [key][query] layout: one 16 x 16 transpose per chunk.
STRATA_AMX_ATTENTION void GatherScores(const Group& g) {
  const float* tiles = g.scratch->tile_scores.as<float>();
  float* scores = g.scratch->scores.as<float>();
  const __mmask16 lanes = static_cast<__mmask16>((1u << g.nq) - 1);
  for (int64_t c = 0; c < g.chunks; ++c) {
    const float* chunk = tiles + c * kChunk * g.nq;
    __m512 rows[16];
    for (int64_t k = 0; k < kChunk; ++k) rows[k] = _mm512_maskz_loadu_ps(lanes, chunk + k * g.nq);
    Transpose16(rows);  // rows[j]: query j's 16 keys
    for (int64_t j = 0; j < g.nq; ++j) {
      _mm512_store_ps(scores + j * g.stride() + c * kChunk, rows[j]);
    }
  }
}

// Scores against packed keys: tiles 0-1 = C [nq queries][16 keys] fp32, 2-3
// = A q blocks [nq][32 dims] bf16, 4-7 = B key blocks [16 dim pairs][16
// keys][2].
STRATA_AMX_ATTENTION void ConfigurePackedScores(int64_t nq) {
  gemm_internal::AmxTileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = t < 4 ? static_cast<uint8_t>(nq) : 16;
  }
  _tile_loadconfig(&config);
}

// Scores with the tile's packed keys (queries as rows, C [nq][16 keys]),
// stored straight into scratch.scores. Each score is the same dot product,
// dim pairs in the same order, as with keys as rows: q and k only trade
// places in each pair's products.
STRATA_AMX_ATTENTION void ScorePassPacked(const Group& g) {
  const auto* qa = g.scratch->qa.as<uint16_t>();
  const auto* kt = g.scratch->keys_t.as<uint16_t>();
  float* scores = g.scratch->scores.as<float>();
  const int64_t blocks = g.d / kDimBlock, row_bytes = g.stride() * 4;
  if (blocks <= 2) {  // tiles 0-1 = C of chunks c, c + 1; 2-3 = q; 4-5, 6-7 = keys
    ConfigurePackedScores(g.nq);
    _tile_loadd(2, qa, g.d * 2);
    if (blocks == 2) _tile_loadd(3, qa + kDimBlock, g.d * 2);
    for (int64_t c = 0; c < g.chunks; c += 2) {
      const bool pair = c + 1 < g.chunks;
      const uint16_t* k0 = kt + c * blocks * 512;
      _tile_zero(0);
      _tile_loadd(4, k0, 64);
      if (blocks == 2) _tile_loadd(5, k0 + 512, 64);
      if (pair) {
        _tile_zero(1);
        _tile_loadd(6, k0 + blocks * 512, 64);
        if (blocks == 2) _tile_loadd(7, k0 + blocks * 512 + 512, 64);
      }
      _tile_dpbf16ps(0, 2, 4);
      if (pair) _tile_dpbf16ps(1, 2, 6);
      if (blocks == 2) {
        _tile_dpbf16ps(0, 3, 5);
        if (pair) _tile_dpbf16ps(1, 3, 7);
      }
      _tile_stored(0, scores + c * kChunk, row_bytes);
      if (pair) _tile_stored(1, scores + (c + 1) * kChunk, row_bytes);
    }
    return;
  }
  ConfigurePackedScores(g.nq);  // tile 0 = C, 2 = q block, 4 = key block
  for (int64_t c = 0; c < g.chunks; ++c) {
    _tile_zero(0);
    for (int64_t kb = 0; kb < blocks; ++kb) {
      _tile_loadd(2, qa + kb * kDimBlock, g.d * 2);
      _tile_loadd(4, kt + (c * blocks + kb) * 512, 64);
      _tile_dpbf16ps(0, 2, 4);
    }
    _tile_stored(0, scores + c * kChunk, row_bytes);
  }
}

// Per query: its bf16 softmax weights and their sum (SoftmaxRowBf16).
STRATA_AMX_ATTENTION void Softmax(const Group& g, float scale, float* sums) {
  const float* scores = g.scratch->scores.as<float>();
  auto* weights = g.scratch->weights.as<uint16_t>();
  const int64_t stride = g.stride();
  for (int64_t j = 0; j < g.nq; ++j) {
    sums[j] =
        SoftmaxRowBf16(scores + j * stride, g.query(j).count, stride, scale, weights + j * stride);
  }
}

// B tiles of the values of keys [32 s, 32 s + 32) for output dims [dim0,
// dim0 + 16 * tiles): [tiles][16 key pairs][16 dims][2], key pairs
// interleaved per dim; keys at or past `max_count` are zero (their arena
// rows may hold anything, and even a zero weight times NaN is NaN).
STRATA_AMX_ATTENTION void PackValueSpan(const Group& g, int64_t s, int64_t dim0, int64_t tiles,
                                        uint16_t* out) {
  alignas(64) static constexpr uint16_t kInterleave[32] = {
      0, 32, 1, 33, 2,  34, 3,  35, 4,  36, 5,  37, 6,  38, 7,  39,
      8, 40, 9, 41, 10, 42, 11, 43, 12, 44, 13, 45, 14, 46, 15, 47};
  const __m512i interleave = _mm512_load_si512(kInterleave);
  const int64_t valid = std::min(kSpan, g.max_count - s * kSpan);
  for (int64_t c = 0; c < 2; ++c) {  // the span's two 16-key chunks (one block each)
    const int64_t chunk_valid = valid - c * kChunk;
    if (chunk_valid <= 0) {  // past the end of the KV: no rows to read
      for (int64_t t = 0; t < tiles; ++t) {
        for (int64_t u = 0; u < kChunk / 2; ++u) {
          _mm512_store_si512(out + t * 512 + (c * 8 + u) * 32, _mm512_setzero_si512());
        }
      }
      continue;
    }
    const uint16_t* v = g.Chunk(2 * s + c, true) + dim0;
    for (int64_t u = 0; u < kChunk / 2; ++u) {
      const uint16_t* r0 = v + 2 * u * g.d;
      for (int64_t t = 0; t < tiles; ++t) {
        const __m256i a = 2 * u < chunk_valid
                              ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + t * 16))
                              : _mm256_setzero_si256();
        const __m256i b =
            2 * u + 1 < chunk_valid
                ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + g.d + t * 16))
                : _mm256_setzero_si256();
        const __m512i pair = _mm512_permutex2var_epi16(_mm512_castsi256_si512(a), interleave,
                                                       _mm512_castsi256_si512(b));
        _mm512_store_si512(out + t * 512 + (c * 8 + u) * 32, pair);
      }
    }
  }
}

// Once per packed tile (g spans the tile's largest count): every chunk's
// keys as score B tiles, [16 dim pairs][16 keys][2] per 32-dim block, and
// every span's values as weighted-sum B tiles.
STRATA_AMX_ATTENTION void PackTile(const Group& g) {
  auto* kt = g.scratch->keys_t.as<uint16_t>();
  const int64_t blocks = g.d / kDimBlock;
  for (int64_t c = 0; c < g.chunks; ++c) {
    const uint16_t* k = g.Chunk(c, false);
    const int64_t valid = std::min(kChunk, g.max_count - c * kChunk);
    for (int64_t kb = 0; kb < blocks; ++kb) {
      __m512 rows[16];
      for (int64_t i = 0; i < kChunk; ++i) {
        rows[i] = i < valid ? _mm512_loadu_ps(k + i * g.d + kb * kDimBlock) : _mm512_setzero_ps();
      }
      Transpose16(rows);  // rows[p]: dim pair p of the 16 keys
      for (int64_t p = 0; p < kChunk; ++p) {
        _mm512_store_ps(kt + (c * blocks + kb) * 512 + p * 32, rows[p]);
      }
    }
  }
  const int64_t dim_tiles = g.d / kDimTile;
  auto* vp = g.scratch->values_p.as<uint16_t>();
  for (int64_t s = 0; s < g.spans; ++s) PackValueSpan(g, s, 0, dim_tiles, vp + s * dim_tiles * 512);
}

// C tiles 0..tiles-1 += the weights of span s . its values `v` ([tiles][16
// key pairs][16 dims][2]); the weighted-sum tiles are configured.
STRATA_AMX_ATTENTION inline void DotSpan(const Group& g, int64_t s, const uint16_t* v,
                                         int64_t tiles) {
  _tile_loadd(4, g.scratch->weights.as<uint16_t>() + s * kSpan, g.stride() * 2);
  // (The tile intrinsics take their register numbers as literals.)
  _tile_loadd(5, v, 64);
  _tile_loadd(6, v + 512, 64);
  _tile_dpbf16ps(0, 4, 5);
  _tile_dpbf16ps(1, 4, 6);
  if (tiles > 2) {
    _tile_loadd(7, v + 1024, 64);
    _tile_loadd(5, v + 1536, 64);
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
// (acc, [tiles][16 queries][16 dims]) -> its queries' outputs / sums. (As a
// plain loop this was a sixth of a 512-token prefill's attention.)
STRATA_AMX_ATTENTION void WriteOutputs(const Group& g, const float* acc, const float* sums,
                                       int64_t dim0, int64_t tiles) {
  for (int64_t j = 0; j < g.nq; ++j) {
    const __m512 inv = _mm512_set1_ps(1.0f / sums[j]);
    float* dst = g.query(j).out + dim0;
    for (int64_t s = 0; s < tiles; ++s) {
      _mm512_storeu_ps(dst + s * 16, _mm512_mul_ps(_mm512_load_ps(acc + s * 256 + j * 16), inv));
    }
  }
}

// out rows (nq queries x 16 * tiles dims) = weights . values, over every
// span in order, for dims [dim0, dim0 + 16 * tiles). A packed tile's values
// are ready; otherwise each span is packed here, just before its products.
STRATA_AMX_ATTENTION void WeightedGroup(const Group& g, int64_t dim0, int64_t tiles) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t dim_tiles = g.d / kDimTile;
  if (g.packed) {
    const auto* vp = g.scratch->values_p.as<uint16_t>() + dim0 * 32;
    for (int64_t s = 0; s < g.spans; ++s) DotSpan(g, s, vp + s * dim_tiles * 512, tiles);
  } else {
    auto* values = g.scratch->values.as<uint16_t>();
    for (int64_t c = 0; c < std::min(kAhead, g.chunks); ++c) {
      PrefetchChunk(g.Chunk(c, true));
    }
    for (int64_t s = 0; s < g.spans; ++s) {
      for (int64_t c = 2 * s + kAhead; c < std::min(2 * s + kAhead + 2, g.chunks); ++c) {
        PrefetchChunk(g.Chunk(c, true));
      }
      PackValueSpan(g, s, dim0, tiles, values);
      DotSpan(g, s, values, tiles);
    }
  }
  StoreAccumulators(g.scratch->out.as<float>(), tiles);
}

STRATA_AMX_ATTENTION void AttendGroup(const Group& g, float scale) {
  if (g.packed) {
    PackQueryRows(g);
    ScorePassPacked(g);
  } else {
    PackQueriesT(g);
    // One query's [key][query] tiles are already its row.
    float* tiles = g.nq == 1 ? g.scratch->scores.as<float>() : g.scratch->tile_scores.as<float>();
    ScorePassKeyRows(g, tiles);
    if (g.nq > 1) GatherScores(g);
  }
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

// Sizes a group of `count` keys at most: its chunks and spans.
void SetCount(Group& g, int64_t max_count) {
  g.max_count = max_count;
  g.chunks = (max_count + kChunk - 1) / kChunk;
  g.spans = (max_count + kSpan - 1) / kSpan;
}

// Grows what the group's path uses: q as rows for a packed tile; q^T, the
// key-row score tiles and one span of packed values otherwise.
void GrowScratch(Scratch& scratch, const Group& g) {
  const auto chunks = static_cast<size_t>(g.chunks), d = static_cast<size_t>(g.d);
  const auto row = static_cast<size_t>(g.stride());
  if (g.packed) {
    scratch.qa.GrowTo(16 * d * 2);
  } else {
    scratch.qt.GrowTo(d / kDimBlock * 1024);
    scratch.tile_scores.GrowTo(chunks * 1024);
    scratch.values.GrowTo(d * kSpan * 2);
  }
  scratch.scores.GrowTo(16 * row * 4);
  scratch.weights.GrowTo(16 * row * 2);
  scratch.out.GrowTo(4 * 1024);
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
  g.scratch = &scratch;
  ChunkMap map;
  map.Init(tile);
  g.map = &map;
  const auto queries = static_cast<int64_t>(tile.queries.size());
  g.packed = queries >= kPackedTileQueries;
  if (g.packed) {
    g.first = g.nq = 0;
    int64_t tile_max = 0;
    for (const AttentionQuery& query : tile.queries) tile_max = std::max(tile_max, query.count);
    SetCount(g, tile_max);
    scratch.keys_t.GrowTo(static_cast<size_t>(g.chunks * g.d * kChunk * 2));
    scratch.values_p.GrowTo(static_cast<size_t>(g.spans * g.d * kSpan * 2));
    PackTile(g);
  }
  PrefetchRows(tile, 0, std::min(kChunk, queries), g.d);
  for (g.first = 0; g.first < queries; g.first += kChunk) {
    g.nq = std::min(kChunk, queries - g.first);
    // The next group's rows, a whole group's work ahead.
    PrefetchRows(tile, g.first + g.nq, std::min(kChunk, queries - g.first - g.nq), g.d);
    int64_t max_count = 0;
    for (int64_t j = 0; j < g.nq; ++j) max_count = std::max(max_count, g.query(j).count);
    SetCount(g, max_count);
    GrowScratch(scratch, g);
    AttendGroup(g, tile.scale);
  }
}

}  // namespace strata::engine::cpu
