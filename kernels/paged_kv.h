// The paged KV arena as the kernels see it. Same layout as the CPU backend's
// (engine/cpu/kv_arena.h), so a block moved between tiers is byte-compatible
// across backends: block b is one contiguous region of block_elements
// elements laid out [layer][k|v][kv_head][token in block][head_dim].
// Plain C++ (host and device). The struct borrows device memory.
#ifndef STRATA_KERNELS_PAGED_KV_H_
#define STRATA_KERNELS_PAGED_KV_H_

#include <cuda_bf16.h>

#include <cstdint>

namespace strata::kernels {

struct PagedKv {
  __nv_bfloat16* data = nullptr;  // block 0; device memory
  int64_t block_elements = 0;     // 2 * num_layers * num_kv_heads * block_size * head_dim
  int num_layers = 0;
  int num_kv_heads = 0;
  int block_size = 0;  // tokens per block
  int head_dim = 0;
};

// Block tables of the sequences of one launch: sequence s's i-th block is
// tables[s * stride + i]. Device memory, borrowed.
struct BlockTables {
  const int32_t* tables = nullptr;
  int stride = 0;
};

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_PAGED_KV_H_
