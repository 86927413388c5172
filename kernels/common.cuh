// Device helpers shared by the kernel families: warp and block reductions,
// 16-byte bf16 vectors, and the paged KV arena's addressing. Included by
// kernels/*.cu only.
#ifndef STRATA_KERNELS_COMMON_CUH_
#define STRATA_KERNELS_COMMON_CUH_

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/paged_kv.h"

namespace strata::kernels {

constexpr unsigned kFullMask = 0xffffffffu;

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the total. `scratch` is 32 floats of shared memory, reusable
// right after the call returns.
__device__ __forceinline__ float BlockSum(float v, float* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // a previous call may still be reading scratch
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x >> 5);
  return WarpSum(lane < warps ? scratch[lane] : 0.0f);
}

// Eight bf16 (one 16-byte load) widened to fp32.
__device__ __forceinline__ void Bf16x8ToFloat(const uint4& v, float* out) {
  const __nv_bfloat162* pairs = reinterpret_cast<const __nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(pairs[i]);
    out[2 * i] = f.x;
    out[2 * i + 1] = f.y;
  }
}

// Eight fp32 rounded (to nearest even) into one 16-byte bf16 vector.
__device__ __forceinline__ uint4 FloatToBf16x8(const float* in) {
  uint4 v;
  __nv_bfloat162* pairs = reinterpret_cast<__nv_bfloat162*>(&v);
#pragma unroll
  for (int i = 0; i < 4; ++i) pairs[i] = __floats2bfloat162_rn(in[2 * i], in[2 * i + 1]);
  return v;
}

// First element of one head's [block_size][head_dim] keys (or values) of
// `block` in `layer`, in the arena layout of kernels/paged_kv.h.
__device__ __forceinline__ __nv_bfloat16* PagedHead(const PagedKv& kv, int32_t block, int layer,
                                                    bool value, int kv_head) {
  const int64_t index =
      (static_cast<int64_t>(layer) * 2 + (value ? 1 : 0)) * kv.num_kv_heads + kv_head;
  return kv.data + static_cast<int64_t>(block) * kv.block_elements +
         index * static_cast<int64_t>(kv.block_size) * kv.head_dim;
}

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_COMMON_CUH_
