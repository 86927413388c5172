// Split-K paged decode attention kernels (kernels/attention_decode.h).
#ifndef STRATA_KERNELS_ATTENTION_DECODE_CUH_
#define STRATA_KERNELS_ATTENTION_DECODE_CUH_

#include <cfloat>

#include "kernels/attention_decode.h"
#include "kernels/common.cuh"

namespace strata::kernels::detail {

constexpr int kDecodeThreads = 128;

// Workspace views: acc [q, h, p, D], then max [q, h, p], then sum [q, h, p].
struct DecodeWorkspace {
  float* acc;
  float* max;
  float* sum;
};

__device__ __forceinline__ DecodeWorkspace SplitWorkspace(const DecodeAttentionParams& p,
                                                          int head_dim) {
  const int64_t slots = static_cast<int64_t>(p.num_queries) * p.num_heads * p.num_partitions;
  return {p.workspace, p.workspace + slots * head_dim, p.workspace + slots * (head_dim + 1)};
}

// grid: (partition, kv_head * head_chunks, query). kLanes lanes hold one key
// (8 dims each, one 16-byte load), so a warp covers 32 / kLanes keys at once.
template <int kHeadDim>
__global__ void __launch_bounds__(kDecodeThreads) DecodePartitionKernel(DecodeAttentionParams p) {
  constexpr int kLanes = kHeadDim / 8;
  constexpr int kSlots = kDecodeThreads / kLanes;  // keys in flight per block
  constexpr int kH = kDecodeHeadsPerBlock;
  __shared__ float q_s[kH][kHeadDim];
  __shared__ float score[kH][kDecodeChunkKeys];
  __shared__ float run_max[kH], run_sum[kH], rescale[kH];
  __shared__ float reduce[kSlots][kH][kHeadDim];

  const int num_kv_heads = p.kv.num_kv_heads;
  const int group = p.num_heads / num_kv_heads;
  const int head_chunks = (group + kH - 1) / kH;
  const int kv_head = blockIdx.y / head_chunks;
  const int first_head = kv_head * group + (blockIdx.y % head_chunks) * kH;
  const int heads = min(kH, kv_head * group + group - first_head);
  const int query = blockIdx.z;
  const int partition = blockIdx.x;
  const int context = p.context_lens[query];
  const int chunks = (context + kDecodeChunkKeys - 1) / kDecodeChunkKeys;
  const int per_partition = (chunks + p.num_partitions - 1) / p.num_partitions;
  const int chunk_begin = partition * per_partition;
  const int chunk_end = min(chunks, chunk_begin + per_partition);
  const DecodeWorkspace ws = SplitWorkspace(p, kHeadDim);
  const int64_t slot_base =
      (static_cast<int64_t>(query) * p.num_heads + first_head) * p.num_partitions + partition;
  if (chunk_begin >= chunk_end) {  // nothing here: an empty partial
    if (threadIdx.x < heads) {
      ws.max[slot_base + threadIdx.x * p.num_partitions] = -FLT_MAX;
      ws.sum[slot_base + threadIdx.x * p.num_partitions] = 0.0f;
    }
    return;
  }
  const int row = p.rows[query];
  for (int i = threadIdx.x; i < kH * kHeadDim; i += kDecodeThreads) {
    const int h = i / kHeadDim;
    q_s[h][i % kHeadDim] = h < heads ? p.q[static_cast<int64_t>(row) * p.q_row_stride +
                                           (first_head + h) * kHeadDim + i % kHeadDim]
                                     : 0.0f;
  }
  if (threadIdx.x < kH) {
    run_max[threadIdx.x] = -FLT_MAX;
    run_sum[threadIdx.x] = 0.0f;
    rescale[threadIdx.x] = 1.0f;
  }
  const int32_t* table = p.tables.tables + static_cast<int64_t>(query) * p.tables.stride;
  const int lane_dim = (threadIdx.x % kLanes) * 8;
  const int key_slot = threadIdx.x / kLanes;
  float acc[kH][8];
#pragma unroll
  for (int h = 0; h < kH; ++h) {
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[h][i] = 0.0f;
  }
  __syncthreads();

  for (int chunk = chunk_begin; chunk < chunk_end; ++chunk) {
    const int key0 = chunk * kDecodeChunkKeys;
    // Scores: each lane group dots one key with every head's q.
    for (int k = key_slot; k < kDecodeChunkKeys; k += kSlots) {
      const int key = key0 + k;
      float kf[8];
      if (key < context) {
        const int32_t block = table[key / p.kv.block_size];
        const __nv_bfloat16* src = PagedHead(p.kv, block, p.layer, false, kv_head) +
                                   (key % p.kv.block_size) * kHeadDim + lane_dim;
        Bf16x8ToFloat(*reinterpret_cast<const uint4*>(src), kf);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) kf[i] = 0.0f;
      }
#pragma unroll
      for (int h = 0; h < kH; ++h) {
        if (h >= heads) break;  // uniform across the block
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < 8; ++i) dot += q_s[h][lane_dim + i] * kf[i];
#pragma unroll
        for (int offset = kLanes / 2; offset > 0; offset >>= 1) {
          dot += __shfl_xor_sync(kFullMask, dot, offset);
        }
        if (threadIdx.x % kLanes == 0) score[h][k] = key < context ? dot * p.scale : -INFINITY;
      }
    }
    __syncthreads();
    // Online softmax per head: one warp per head.
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    for (int h = warp; h < heads; h += kDecodeThreads / 32) {
      float m = -FLT_MAX;
      for (int k = lane; k < kDecodeChunkKeys; k += 32) m = fmaxf(m, score[h][k]);
      m = WarpMax(m);
      const float old_max = run_max[h];
      const float new_max = fmaxf(old_max, m);
      float s = 0.0f;
      for (int k = lane; k < kDecodeChunkKeys; k += 32) {
        const float e = expf(score[h][k] - new_max);  // -inf (masked) -> 0
        score[h][k] = e;
        s += e;
      }
      s = WarpSum(s);
      if (lane == 0) {
        const float alpha = expf(old_max - new_max);
        rescale[h] = alpha;
        run_sum[h] = run_sum[h] * alpha + s;
        run_max[h] = new_max;
      }
    }
    __syncthreads();
    // Weighted values: each lane group accumulates 8 dims over its keys.
#pragma unroll
    for (int h = 0; h < kH; ++h) {
#pragma unroll
      for (int i = 0; i < 8; ++i) acc[h][i] *= rescale[h];
    }
    const int last = min(kDecodeChunkKeys, context - key0);
    for (int k = key_slot; k < last; k += kSlots) {
      const int key = key0 + k;
      const int32_t block = table[key / p.kv.block_size];
      const __nv_bfloat16* src = PagedHead(p.kv, block, p.layer, true, kv_head) +
                                 (key % p.kv.block_size) * kHeadDim + lane_dim;
      float vf[8];
      Bf16x8ToFloat(*reinterpret_cast<const uint4*>(src), vf);
#pragma unroll
      for (int h = 0; h < kH; ++h) {
        if (h >= heads) break;
        const float w = score[h][k];
#pragma unroll
        for (int i = 0; i < 8; ++i) acc[h][i] += w * vf[i];
      }
    }
    __syncthreads();  // score is rewritten by the next chunk
  }
  // Sum the key slots' accumulators and write the partial.
#pragma unroll
  for (int h = 0; h < kH; ++h) {
#pragma unroll
    for (int i = 0; i < 8; ++i) reduce[key_slot][h][lane_dim + i] = acc[h][i];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < heads * kHeadDim; i += kDecodeThreads) {
    const int h = i / kHeadDim, d = i % kHeadDim;
    float total = 0.0f;
    for (int s = 0; s < kSlots; ++s) total += reduce[s][h][d];
    ws.acc[(slot_base + static_cast<int64_t>(h) * p.num_partitions) * kHeadDim + d] = total;
  }
  if (threadIdx.x < heads) {
    ws.max[slot_base + threadIdx.x * p.num_partitions] = run_max[threadIdx.x];
    ws.sum[slot_base + threadIdx.x * p.num_partitions] = run_sum[threadIdx.x];
  }
}

// grid: (head, query); one thread per dim. Merges the partitions' partials
// with their maxima, skipping empty ones, and writes the bf16 output.
template <int kHeadDim>
__global__ void DecodeCombineKernel(DecodeAttentionParams p) {
  const int head = blockIdx.x;
  const int query = blockIdx.y;
  const int d = threadIdx.x;
  const DecodeWorkspace ws = SplitWorkspace(p, kHeadDim);
  const int64_t base = (static_cast<int64_t>(query) * p.num_heads + head) * p.num_partitions;
  float best = -FLT_MAX;
  for (int i = 0; i < p.num_partitions; ++i) {
    if (ws.sum[base + i] > 0.0f) best = fmaxf(best, ws.max[base + i]);
  }
  float total = 0.0f, value = 0.0f;
  for (int i = 0; i < p.num_partitions; ++i) {
    const float sum = ws.sum[base + i];
    if (!(sum > 0.0f)) continue;
    const float w = expf(ws.max[base + i] - best);
    total += sum * w;
    value += ws.acc[(base + i) * kHeadDim + d] * w;
  }
  const int row = p.rows[query];
  p.out[static_cast<int64_t>(row) * p.out_row_stride + head * kHeadDim + d] =
      __float2bfloat16_rn(value / total);
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_ATTENTION_DECODE_CUH_
