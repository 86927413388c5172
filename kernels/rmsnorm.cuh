// RMSNorm + residual add kernel (kernels/rmsnorm.h).
#ifndef STRATA_KERNELS_RMSNORM_CUH_
#define STRATA_KERNELS_RMSNORM_CUH_

#include "kernels/common.cuh"
#include "kernels/rmsnorm.h"

namespace strata::kernels::detail {

// One block per output row. Pass 1 forms x = residual + delta (stored back
// when asked) and the sum of squares; pass 2 re-reads x, which the same
// thread wrote, so no barrier is needed between the passes beyond BlockSum's.
__global__ void RmsNormKernel(RmsNormParams p) {
  __shared__ float scratch[32];
  const int out_row = blockIdx.x;
  const int64_t row = p.row_index != nullptr ? p.row_index[out_row] : out_row;
  float* x = p.residual + row * p.n;
  const float* d = p.delta != nullptr ? p.delta + row * p.n : nullptr;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < p.n; i += blockDim.x) {
    float v = x[i];
    if (d != nullptr) {
      v += d[i];
      if (p.write_residual) x[i] = v;
    }
    sum += v * v;
  }
  sum = BlockSum(sum, scratch);
  const float scale = 1.0f / sqrtf(sum / static_cast<float>(p.n) + p.eps);
  __nv_bfloat16* out = p.out + static_cast<int64_t>(out_row) * p.n;
  for (int i = threadIdx.x; i < p.n; i += blockDim.x) {
    float v = x[i];
    if (d != nullptr && !p.write_residual) v += d[i];
    out[i] = __float2bfloat16_rn(p.weight[i] * (v * scale));
  }
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_RMSNORM_CUH_
