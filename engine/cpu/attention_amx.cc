#include "engine/cpu/attention_amx.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/attention_bf16_math.h"
#include "engine/cpu/gemm_kernels.h"
#include "engine/cpu/kv_layout.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {
namespace {

#define STRATA_AMX_ATTENTION \
  __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

using attention_internal::Bf16Row;
using attention_internal::ChunkMap;
using attention_internal::PrefetchChunk;
using attention_internal::SoftmaxRowBf16;

constexpr int64_t kChunk = 16;     // keys per score tile; queries per group
constexpr int64_t kSpan = 32;      // keys per weighted-sum product (a weight row)
constexpr int64_t kDimBlock = 32;  // head dims per score product (64 bytes)
constexpr int64_t kDimTile = 16;   // output dims per C tile of the weighted sum
constexpr int64_t kDimGroup = 64;  // output dims held in C tiles at once (4 tiles)
constexpr int64_t kAhead = 4;      // chunks of keys / values requested ahead
// A tile of at least this many queries (prefill) packs its values once for
// all its groups, instead of each group packing each span: two groups
// already halve the packing.
constexpr int64_t kPackedTileQueries = 2 * kChunk;

// Tiles are configured for the group's nq queries only (decode has 1 to a
// few): the scratch then holds nq rows, not 16. A query's row is computed
// alike whatever the tile's height.
//
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
  AlignedBuffer qa;        // [16 queries][d] bf16
  AlignedBuffer scores;    // [nq][spans * 32] fp32: q.k, unscaled
  AlignedBuffer weights;   // [nq][spans * 32] bf16
  AlignedBuffer values;    // [d / 16][16 key pairs][16 dims][2] bf16: one span
  AlignedBuffer values_p;  // packed tile: [spans][d / 16][16 key pairs][16 dims][2]
  AlignedBuffer out;       // [4][nq (<= 16) queries][16 dims] fp32, rows 64 bytes apart
};

// Up to 16 queries of a tile, with their shapes and scratch.
struct Group {
  const AttentionTile* tile;
  int64_t first, nq;  // queries [first, first + nq) of the tile
  int64_t d, max_count, chunks, spans;
  bool packed;  // the scratch's values_p hold the whole tile's
  Scratch* scratch;
  const ChunkMap* map;

  const AttentionQuery& query(int64_t j) const {
    return tile->queries[static_cast<size_t>(first + j)];
  }
  int64_t stride() const { return spans * kSpan; }  // of the scores and weights rows
  // Keys or values of tokens [16 c, 16 c + 16), in the arena's chunk
  // layout (kv_layout.h): keys [d / 32][16 dim pairs][16 keys][2] (a score B
  // tile per 32 dims), values [d / 16][8 key pairs][16 dims][2].
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

// q as A tiles: [16 queries][d] bf16 (rows past nq are not read).
STRATA_AMX_ATTENTION void PackQueryRows(const Group& g) {
  auto* qa = g.scratch->qa.as<uint16_t>();
  for (int64_t j = 0; j < g.nq; ++j) {
    for (int64_t kb = 0; kb < g.d / kDimBlock; ++kb) {
      _mm512_store_ps(qa + j * g.d + kb * kDimBlock, Bf16Row(g.query(j).q + kb * kDimBlock));
    }
  }
}

// Scores: tiles 0-1 = C [nq queries][16 keys] fp32, 2-3 = A q blocks [nq][32
// dims] bf16, 4-7 = B key blocks [16 dim pairs][16 keys][2], straight from
// the arena's chunks.
STRATA_AMX_ATTENTION void ConfigureScores(int64_t nq) {
  gemm_internal::AmxTileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = t < 4 ? static_cast<uint8_t>(nq) : 16;
  }
  _tile_loadconfig(&config);
}

// Every query's scores (queries as rows, C [nq][16 keys]), stored straight
// into scratch.scores, each a chain over the dim pairs in order. A tile of
// a few queries (decode) asks for each chunk kAhead chunks ahead.
STRATA_AMX_ATTENTION void ScorePass(const Group& g) {
  const auto* qa = g.scratch->qa.as<uint16_t>();
  float* scores = g.scratch->scores.as<float>();
  const int64_t blocks = g.d / kDimBlock, row_bytes = g.stride() * 4;
  const auto prefetch = [&g](int64_t c) {
    if (!g.packed && c < g.chunks) PrefetchChunk(g.Chunk(c, false));
  };
  for (int64_t c = 0; c < kAhead; ++c) prefetch(c);
  ConfigureScores(g.nq);
  if (blocks <= 2) {  // tiles 0-1 = C of chunks c, c + 1; 2-3 = q; 4-5, 6-7 = keys
    _tile_loadd(2, qa, g.d * 2);
    if (blocks == 2) _tile_loadd(3, qa + kDimBlock, g.d * 2);
    for (int64_t c = 0; c < g.chunks; c += 2) {
      prefetch(c + kAhead);
      prefetch(c + kAhead + 1);
      const bool pair = c + 1 < g.chunks;
      const uint16_t* k0 = g.Chunk(c, false);
      _tile_zero(0);
      _tile_loadd(4, k0, 64);
      if (blocks == 2) _tile_loadd(5, k0 + 512, 64);
      if (pair) {
        const uint16_t* k1 = g.Chunk(c + 1, false);
        _tile_zero(1);
        _tile_loadd(6, k1, 64);
        if (blocks == 2) _tile_loadd(7, k1 + 512, 64);
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
  for (int64_t c = 0; c < g.chunks; ++c) {  // tile 0 = C, 2 = q block, 4 = key block
    prefetch(c + kAhead);
    const uint16_t* k = g.Chunk(c, false);
    _tile_zero(0);
    for (int64_t kb = 0; kb < blocks; ++kb) {
      _tile_loadd(2, qa + kb * kDimBlock, g.d * 2);
      _tile_loadd(4, k + kb * 512, 64);
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
// dim0 + 16 * tiles): [tiles][16 key pairs][16 dims][2]. The arena's chunks
// hold each tile's 8 key pairs as 512 contiguous elements, so this copies
// two pieces per tile; keys at or past `max_count` are zero (their arena
// rows may hold anything, and even a zero weight times NaN is NaN).
STRATA_AMX_ATTENTION void PackValueSpan(const Group& g, int64_t s, int64_t dim0, int64_t tiles,
                                        uint16_t* out) {
  const int64_t valid = std::min(kSpan, g.max_count - s * kSpan);
  for (int64_t c = 0; c < 2; ++c) {  // the span's two 16-key chunks
    const int64_t chunk_valid = valid - c * kChunk;
    const uint16_t* v = chunk_valid > 0 ? g.Chunk(2 * s + c, true) + dim0 * kChunk : nullptr;
    for (int64_t t = 0; t < tiles; ++t) {
      for (int64_t u = 0; u < kChunk / 2; ++u) {
        // Even halves hold key 2u, odd halves key 2u + 1.
        const __mmask32 keep =
            2 * u + 1 < chunk_valid ? 0xffffffffu : (2 * u < chunk_valid ? 0x55555555u : 0u);
        const __m512i pair =
            keep == 0 ? _mm512_setzero_si512()
                      : _mm512_maskz_mov_epi16(keep, _mm512_load_si512(v + (t * 8 + u) * 32));
        _mm512_store_si512(out + t * 512 + (c * 8 + u) * 32, pair);
      }
    }
  }
}

// Once per packed tile (g spans the tile's largest count): every span's
// values as weighted-sum B tiles. (Keys need no packing: the arena's chunks
// are score B tiles.)
STRATA_AMX_ATTENTION void PackTile(const Group& g) {
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
  PackQueryRows(g);
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

// Sizes a group of `count` keys at most: its chunks and spans.
void SetCount(Group& g, int64_t max_count) {
  g.max_count = max_count;
  g.chunks = (max_count + kChunk - 1) / kChunk;
  g.spans = (max_count + kSpan - 1) / kSpan;
}

// Grows what the group's path uses: one span of packed values unless the
// tile's are packed already.
void GrowScratch(Scratch& scratch, const Group& g) {
  const auto d = static_cast<size_t>(g.d);
  const auto row = static_cast<size_t>(g.stride());
  scratch.qa.GrowTo(16 * d * 2);
  if (!g.packed) scratch.values.GrowTo(d * kSpan * 2);
  scratch.scores.GrowTo(16 * row * 4);
  scratch.weights.GrowTo(16 * row * 2);
  scratch.out.GrowTo(4 * 1024);
}

}  // namespace

bool AmxAttentionSupported(const KvCacheSpec& spec) {
  return KvLayoutFor(spec) == KvLayout::kChunks && gemm_internal::AmxUsable();
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
