// FlashAttention-2 style paged prefill kernel (kernels/attention_prefill.h).
//
// Fragment layouts of mma.sync.m16n8k16 (bf16 in, fp32 out), with
// g = lane / 4 and t = lane % 4:
//   A (16x16, row): a0 = (g, 2t..2t+1), a1 = (g+8, 2t..), a2 = (g, 2t+8..), a3 = (g+8, 2t+8..)
//   B (16x8, col):  b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g)
//   C (16x8):       c0,c1 = (g, 2t..2t+1), c2,c3 = (g+8, 2t..2t+1)
// K tiles feed B of S = Q.K^T through ldmatrix (rows = keys), V tiles feed
// B of O = P.V through ldmatrix.trans; P goes from C layout to A layout in
// registers. Shared rows are padded by 16 bytes so the 8 rows an ldmatrix
// reads fall in distinct banks.
#ifndef STRATA_KERNELS_ATTENTION_PREFILL_CUH_
#define STRATA_KERNELS_ATTENTION_PREFILL_CUH_

#include <cfloat>

#include "kernels/attention_prefill.h"
#include "kernels/common.cuh"

namespace strata::kernels::detail {

constexpr int kPrefillWarps = 4;
constexpr int kPrefillKeys = 64;  // keys per K/V tile
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

__device__ __forceinline__ void MmaBf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void LdMatrixX2(uint32_t& r0, uint32_t& r1, const void* smem) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r0), "=r"(r1)
               : "r"(addr));
}

__device__ __forceinline__ void LdMatrixX2Trans(uint32_t& r0, uint32_t& r1, const void* smem) {
  const auto addr = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r0), "=r"(r1)
               : "r"(addr));
}

// Loads keys [key0, key0 + 64) of one kv head (K or V) into a padded shared
// tile, zeros past `key_end` so that masked products stay finite.
template <int kHeadDim>
__device__ __forceinline__ void LoadKvTile(const PrefillAttentionParams& p, const int32_t* table,
                                           int kv_head, bool value, int key0, int key_end,
                                           __nv_bfloat16 (*tile)[kHeadDim + 8]) {
  constexpr int kChunks = kHeadDim / 8;
  for (int i = threadIdx.x; i < kPrefillKeys * kChunks; i += kPrefillWarps * 32) {
    const int r = i / kChunks, c = i % kChunks;
    const int key = key0 + r;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (key < key_end) {
      const int32_t block = table[key / p.kv.block_size];
      v = *reinterpret_cast<const uint4*>(PagedHead(p.kv, block, p.layer, value, kv_head) +
                                          (key % p.kv.block_size) * kHeadDim + c * 8);
    }
    *reinterpret_cast<uint4*>(&tile[r][c * 8]) = v;
  }
}

// grid: (tile, kv_head). 128 threads.
template <int kHeadDim>
__global__ void __launch_bounds__(kPrefillWarps * 32)
    PrefillAttentionKernel(PrefillAttentionParams p) {
  constexpr int kSteps = kHeadDim / 16;    // k-steps of Q.K^T
  constexpr int kDimTiles = kHeadDim / 8;  // n-tiles of O
  __shared__ __align__(16) __nv_bfloat16 k_tile[kPrefillKeys][kHeadDim + 8];
  __shared__ __align__(16) __nv_bfloat16 v_tile[kPrefillKeys][kHeadDim + 8];

  const PrefillTile tile = p.tiles[blockIdx.x];
  const PrefillSequence seq = p.sequences[tile.sequence];
  const int kv_head = blockIdx.y;
  const int group = p.num_heads / p.kv.num_kv_heads;
  const int vectors = seq.num_tokens * group;
  const int last_vector = min(tile.first_vector + kPrefillTileVectors, vectors) - 1;
  // Positions ascend within a sequence: the tile's last token sees the most.
  const int32_t* positions = p.positions != nullptr ? p.positions + seq.first_row : nullptr;
  const int key_end = (positions != nullptr ? positions[last_vector / group]
                                            : seq.start_position + last_vector / group) +
                      1;
  const int32_t* table = p.tables.tables + static_cast<int64_t>(seq.table) * p.tables.stride;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g = lane / 4, t = lane % 4;
  // This thread's two query vectors (rows g and g + 8 of the warp's 16).
  int vec[2], limit[2];
  bool valid[2];
  const float* q_ptr[2];
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    vec[r] = tile.first_vector + warp * 16 + g + 8 * r;
    valid[r] = vec[r] < vectors;
    const int token = valid[r] ? vec[r] / group : 0;
    const int head = kv_head * group + (valid[r] ? vec[r] % group : 0);
    // The last key it may see: its own absolute position.
    limit[r] = !valid[r] ? 0 : positions != nullptr ? positions[token] : seq.start_position + token;
    q_ptr[r] = p.q + static_cast<int64_t>(seq.first_row + token) * p.q_row_stride + head * kHeadDim;
  }
  uint32_t qa[kSteps][4];
#pragma unroll
  for (int s = 0; s < kSteps; ++s) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {  // columns 2t.. and 2t+8..
      const int col = s * 16 + 2 * t + 8 * half;
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        const float x0 = valid[r] ? q_ptr[r][col] : 0.0f;
        const float x1 = valid[r] ? q_ptr[r][col + 1] : 0.0f;
        qa[s][2 * half + r] = PackBf16(x0, x1);
      }
    }
  }

  float o[kDimTiles][4];
#pragma unroll
  for (int j = 0; j < kDimTiles; ++j) o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
  float row_max[2] = {-FLT_MAX, -FLT_MAX};
  float row_sum[2] = {0.0f, 0.0f};  // this thread's share; summed over the quad at the end
  const float scale_log2 = p.scale * kLog2e;

  for (int key0 = 0; key0 < key_end; key0 += kPrefillKeys) {
    __syncthreads();  // the previous tile is no longer read
    LoadKvTile<kHeadDim>(p, table, kv_head, false, key0, key_end, k_tile);
    LoadKvTile<kHeadDim>(p, table, kv_head, true, key0, key_end, v_tile);
    __syncthreads();

    float s[kPrefillKeys / 8][4];
#pragma unroll
    for (int j = 0; j < kPrefillKeys / 8; ++j) {
      s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
      for (int k = 0; k < kSteps; ++k) {
        uint32_t b0, b1;
        const int l = lane % 16;
        LdMatrixX2(b0, b1, &k_tile[j * 8 + l % 8][k * 16 + (l / 8) * 8]);
        MmaBf16(s[j], qa[k], b0, b1);
      }
    }
    // Mask, scale into the log2 domain, and take the tile's row maxima.
    float tile_max[2] = {-FLT_MAX, -FLT_MAX};
#pragma unroll
    for (int j = 0; j < kPrefillKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + j * 8 + 2 * t + (e & 1);
        const int r = e >> 1;
        s[j][e] = key <= limit[r] ? s[j][e] * scale_log2 : -INFINITY;
        tile_max[r] = fmaxf(tile_max[r], s[j][e]);
      }
    }
    float alpha[2];
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(kFullMask, tile_max[r], 1));
      tile_max[r] = fmaxf(tile_max[r], __shfl_xor_sync(kFullMask, tile_max[r], 2));
      const float new_max = fmaxf(row_max[r], tile_max[r]);
      alpha[r] = exp2f(row_max[r] - new_max);
      row_max[r] = new_max;
      row_sum[r] *= alpha[r];
    }
#pragma unroll
    for (int j = 0; j < kPrefillKeys / 8; ++j) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        s[j][e] = exp2f(s[j][e] - row_max[e >> 1]);
        row_sum[e >> 1] += s[j][e];
      }
    }
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      o[j][0] *= alpha[0];
      o[j][1] *= alpha[0];
      o[j][2] *= alpha[1];
      o[j][3] *= alpha[1];
    }
    // O += P.V, 16 keys per k-step.
#pragma unroll
    for (int k = 0; k < kPrefillKeys / 16; ++k) {
      const uint32_t pa[4] = {
          PackBf16(s[2 * k][0], s[2 * k][1]), PackBf16(s[2 * k][2], s[2 * k][3]),
          PackBf16(s[2 * k + 1][0], s[2 * k + 1][1]), PackBf16(s[2 * k + 1][2], s[2 * k + 1][3])};
#pragma unroll
      for (int j = 0; j < kDimTiles; ++j) {
        uint32_t b0, b1;
        LdMatrixX2Trans(b0, b1, &v_tile[k * 16 + lane % 16][j * 8]);
        MmaBf16(o[j], pa, b0, b1);
      }
    }
  }

#pragma unroll
  for (int r = 0; r < 2; ++r) {
    row_sum[r] += __shfl_xor_sync(kFullMask, row_sum[r], 1);
    row_sum[r] += __shfl_xor_sync(kFullMask, row_sum[r], 2);
  }
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    if (!valid[r]) continue;
    const int token = vec[r] / group;
    const int head = kv_head * group + vec[r] % group;
    __nv_bfloat16* out =
        p.out + static_cast<int64_t>(seq.first_row + token) * p.out_row_stride + head * kHeadDim;
    const float inv = 1.0f / row_sum[r];
#pragma unroll
    for (int j = 0; j < kDimTiles; ++j) {
      *reinterpret_cast<__nv_bfloat162*>(out + j * 8 + 2 * t) =
          __floats2bfloat162_rn(o[j][2 * r] * inv, o[j][2 * r + 1] * inv);
    }
  }
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_ATTENTION_PREFILL_CUH_
