// Paged prefill attention: causal, variable-length, GQA, reading K/V
// through block tables; FlashAttention-2 style. A work tile is 64 query
// vectors of one sequence that share one kv head, flattened as
// token * group + head-in-group (as the CPU backend's tiles are), so each K/V
// tile is loaded into shared memory once for the whole GQA group. Four
// warps each own 16 query vectors; Q.K^T and P.V run on bf16 tensor cores
// (mma.sync m16n8k16, fp32 accumulation) with an online softmax in fp32.
// A sequence's tokens computed now are at positions start_position ..
// start_position + num_tokens - 1 and attend to every key up to their own
// position: earlier chunks' keys (already in the arena) and this step's.
// With per-query positions (CacheBlend, after a check layer kept only some
// tokens) a sequence's rows carry arbitrary ascending absolute positions,
// each attending keys [0, its position]: the exact causal mask by position.
// Launchers return the launch's cudaError_t. Thread-safe.
#ifndef STRATA_KERNELS_ATTENTION_PREFILL_H_
#define STRATA_KERNELS_ATTENTION_PREFILL_H_

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/paged_kv.h"

namespace strata::kernels {

inline constexpr int kPrefillTileVectors = 64;

struct PrefillSequence {
  int32_t first_row = 0;       // batch row of its first token
  int32_t num_tokens = 0;      // >= 1
  int32_t start_position = 0;  // position of its first token
  int32_t table = 0;           // its row of BlockTables
};

struct PrefillTile {
  int32_t sequence = 0;      // index into the sequences array
  int32_t first_vector = 0;  // query vectors [first, first + 64) of that sequence
};

struct PrefillAttentionParams {
  PagedKv kv;
  int layer = 0;
  const float* q = nullptr;  // query head h of batch row r: q + r * q_row_stride + h * head_dim
  int q_row_stride = 0;
  __nv_bfloat16* out = nullptr;  // same indexing with out_row_stride
  int out_row_stride = 0;
  const PrefillSequence* sequences = nullptr;  // device
  const PrefillTile* tiles = nullptr;          // device, [num_tiles]
  BlockTables tables;
  int num_tiles = 0;
  int num_heads = 0;
  float scale = 1.0f;
  // Optional, device, [batch rows]: the absolute position of each batch row,
  // strictly ascending within a sequence; start_position is then ignored.
  // Null: row first_row + t is at start_position + t.
  const int32_t* positions = nullptr;
};

// The tiles of `sequences` for a GQA group of `group` query heads per kv
// head, the ones with the most keys first so that the long causal tiles
// start early and the short ones fill the tail. `row_positions`, when not
// empty, is PrefillAttentionParams::positions on the host (the key counts
// then follow it).
inline std::vector<PrefillTile> MakePrefillTiles(const std::vector<PrefillSequence>& sequences,
                                                 int group,
                                                 const std::vector<int32_t>& row_positions = {}) {
  struct Work {
    PrefillTile tile;
    int64_t keys;
  };
  std::vector<Work> work;
  for (size_t s = 0; s < sequences.size(); ++s) {
    const PrefillSequence& seq = sequences[s];
    const int64_t vectors = static_cast<int64_t>(seq.num_tokens) * group;
    for (int64_t first = 0; first < vectors; first += kPrefillTileVectors) {
      const int64_t last_token =
          (std::min<int64_t>(first + kPrefillTileVectors, vectors) - 1) / group;
      const int64_t last_position =
          row_positions.empty() ? seq.start_position + last_token
                                : row_positions[static_cast<size_t>(seq.first_row + last_token)];
      work.push_back({{static_cast<int32_t>(s), static_cast<int32_t>(first)}, last_position + 1});
    }
  }
  std::stable_sort(work.begin(), work.end(),
                   [](const Work& a, const Work& b) { return a.keys > b.keys; });
  std::vector<PrefillTile> tiles;
  tiles.reserve(work.size());
  for (const Work& w : work) tiles.push_back(w.tile);
  return tiles;
}

cudaError_t LaunchPrefillAttention(const PrefillAttentionParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_ATTENTION_PREFILL_H_
