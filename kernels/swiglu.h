// SwiGLU: out = bf16(silu(gate) * up), silu(g) = g / (1 + e^-g), over the
// fused gate/up GEMM's fp32 output (each row: intermediate gate values, then
// intermediate up values). The bf16 output is the down projection's input.
// Launchers return the launch's cudaError_t. Thread-safe.
#ifndef STRATA_KERNELS_SWIGLU_H_
#define STRATA_KERNELS_SWIGLU_H_

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strata::kernels {

struct SwiGluParams {
  const float* gate_up = nullptr;  // [rows, 2 * n]
  __nv_bfloat16* out = nullptr;    // [rows, n]
  int rows = 0;
  int n = 0;  // intermediate size
};

cudaError_t LaunchSwiGlu(const SwiGluParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_SWIGLU_H_
