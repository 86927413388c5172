// KV append kernel (kernels/kv_append.h).
#ifndef STRATA_KERNELS_KV_APPEND_CUH_
#define STRATA_KERNELS_KV_APPEND_CUH_

#include "kernels/common.cuh"
#include "kernels/kv_append.h"

namespace strata::kernels::detail {

// One block per row; each thread converts 8 consecutive elements of one
// head and stores them as one 16-byte vector.
template <int kHeadDim>
__global__ void KvAppendKernel(KvAppendParams p) {
  constexpr int kChunks = kHeadDim / 8;  // 16-byte vectors per head
  const int row = blockIdx.x;
  const int32_t slot = p.slots[row];
  const int32_t block = slot / p.kv.block_size;
  const int offset = slot - block * p.kv.block_size;
  const float* src = p.qkv + static_cast<int64_t>(row) * p.row_stride;
  const int per_kind = p.kv.num_kv_heads * kChunks;
  for (int c = threadIdx.x; c < 2 * per_kind; c += blockDim.x) {
    const bool value = c >= per_kind;
    const int rest = value ? c - per_kind : c;
    const int head = rest / kChunks;
    const int chunk = rest - head * kChunks;
    const float* from = src + (value ? p.v_offset : p.k_offset) + head * kHeadDim + chunk * 8;
    float tmp[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) tmp[i] = from[i];
    __nv_bfloat16* to =
        PagedHead(p.kv, block, p.layer, value, head) + offset * kHeadDim + chunk * 8;
    *reinterpret_cast<uint4*>(to) = FloatToBf16x8(tmp);
  }
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_KV_APPEND_CUH_
