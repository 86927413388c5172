// Paged decode attention, split-K: one query token per sequence (its newest
// position) against all of its keys, read through its block table. Each
// (query, kv head, partition) block scores its share of the keys for up to
// eight query heads of that kv head (GQA: the keys are read once for the
// group), keeps an online softmax across 256-key chunks, and writes an
// unnormalised partial; a second kernel merges the partitions and writes
// bf16 outputs. Splitting the keys keeps the GPU busy at batch 1 with long
// contexts; the partition count is a launch constant (grid.x), so a CUDA
// graph captured once serves every context length.
// fp32 arithmetic on bf16 K/V, like the CPU backend's attention.
// Launchers return the launch's cudaError_t. Thread-safe.
#ifndef STRATA_KERNELS_ATTENTION_DECODE_H_
#define STRATA_KERNELS_ATTENTION_DECODE_H_

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_kv.h"

namespace strata::kernels {

// Keys scored together in shared memory; a partition is a whole number of chunks.
inline constexpr int kDecodeChunkKeys = 256;
// Query heads per block: larger GQA groups use several blocks per kv head.
inline constexpr int kDecodeHeadsPerBlock = 8;

struct DecodeAttentionParams {
  PagedKv kv;
  int layer = 0;
  const float* q = nullptr;  // query head h of batch row r: q + r * q_row_stride + h * head_dim
  int q_row_stride = 0;
  __nv_bfloat16* out = nullptr;  // same indexing with out_row_stride
  int out_row_stride = 0;
  const int32_t* rows = nullptr;          // [num_queries] batch row of each query
  const int32_t* context_lens = nullptr;  // [num_queries] keys 0 .. len - 1, len >= 1
  BlockTables tables;                     // query i's table is row i
  int num_queries = 0;
  int num_heads = 0;
  float scale = 1.0f;  // applied to q.k before the softmax
  int num_partitions = 1;
  // Workspace: DecodeAttentionWorkspaceBytes(num_queries, num_heads, head_dim, num_partitions).
  float* workspace = nullptr;
};

// Bytes of workspace one launch needs.
inline int64_t DecodeAttentionWorkspaceBytes(int num_queries, int num_heads, int head_dim,
                                             int num_partitions) {
  return static_cast<int64_t>(num_queries) * num_heads * num_partitions * (head_dim + 2) * 4;
}

// A partition count for a launch whose longest context is max_context keys:
// enough partitions of at least one chunk to reach ~2 blocks per SM, at most
// max_partitions.
int DecodePartitions(int num_queries, int num_kv_heads, int max_context, int num_sms,
                     int max_partitions);

cudaError_t LaunchDecodeAttention(const DecodeAttentionParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_ATTENTION_DECODE_H_
