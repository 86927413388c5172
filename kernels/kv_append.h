// KV append: writes the k and v heads of each row of the QKV GEMM output
// (after RoPE) into its slot of the paged arena as bf16, for one layer.
// A slot is block_id * block_size + position % block_size; the caller maps
// each row's position through its block table (one int per row keeps the
// launch independent of how many sequences share it). Launchers return the
// launch's cudaError_t. Thread-safe; rows must name distinct slots.
#ifndef STRATA_KERNELS_KV_APPEND_H_
#define STRATA_KERNELS_KV_APPEND_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/paged_kv.h"

namespace strata::kernels {

struct KvAppendParams {
  PagedKv kv;
  int layer = 0;
  const float* qkv = nullptr;      // [rows, row_stride] fp32
  int row_stride = 0;              // floats per qkv row
  int k_offset = 0;                // column of k head 0 (num_heads * head_dim)
  int v_offset = 0;                // column of v head 0 ((num_heads + num_kv_heads) * head_dim)
  const int32_t* slots = nullptr;  // [rows]
  int rows = 0;
};

cudaError_t LaunchKvAppend(const KvAppendParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_KV_APPEND_H_
