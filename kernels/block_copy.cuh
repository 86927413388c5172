// Block gather/scatter kernel (kernels/block_copy.h).
#ifndef STRATA_KERNELS_BLOCK_COPY_CUH_
#define STRATA_KERNELS_BLOCK_COPY_CUH_

#include "kernels/block_copy.h"
#include "kernels/common.cuh"

namespace strata::kernels::detail {

// grid.x: one block list entry; grid.y: slices of that block. 16-byte
// accesses, four in flight per thread before the first store.
__global__ void BlockCopyKernel(BlockCopyParams p) {
  const int64_t vectors = p.block_bytes / 16;
  const uint4* src =
      reinterpret_cast<const uint4*>(p.src + p.src_blocks[blockIdx.x] * p.block_bytes);
  uint4* dst = reinterpret_cast<uint4*>(p.dst + p.dst_blocks[blockIdx.x] * p.block_bytes);
  const int64_t stride = static_cast<int64_t>(gridDim.y) * blockDim.x;
  int64_t i = blockIdx.y * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  for (; i + 3 * stride < vectors; i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) v[k] = src[i + k * stride];
#pragma unroll
    for (int k = 0; k < 4; ++k) dst[i + k * stride] = v[k];
  }
  for (; i < vectors; i += stride) dst[i] = src[i];
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_BLOCK_COPY_CUH_
