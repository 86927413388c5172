// SwiGLU kernel (kernels/swiglu.h).
#ifndef STRATA_KERNELS_SWIGLU_CUH_
#define STRATA_KERNELS_SWIGLU_CUH_

#include "kernels/common.cuh"
#include "kernels/swiglu.h"

namespace strata::kernels::detail {

// Grid-stride over rows * n elements; expf, not __expf, to stay within an
// ulp or two of the CPU's silu.
__global__ void SwiGluKernel(SwiGluParams p) {
  const int64_t total = static_cast<int64_t>(p.rows) * p.n;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / p.n;
    const int64_t col = i - row * p.n;
    const float* gu = p.gate_up + row * 2 * p.n;
    const float g = gu[col];
    const float u = gu[p.n + col];
    p.out[i] = __float2bfloat16_rn(g / (1.0f + expf(-g)) * u);
  }
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_SWIGLU_CUH_
