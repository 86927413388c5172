// RMSNorm fused with the residual add: x += delta, then
// out = bf16(weight * (x / sqrt(mean(x^2) + eps))), the CPU decoder's
// formula (engine/cpu/simd.h RmsNormRow) with fp32 arithmetic. The residual
// stream stays fp32; the bf16 output is the next GEMM's input.
// Launchers return the launch's cudaError_t; pointers are caller-owned
// device memory. Thread-safe.
#ifndef STRATA_KERNELS_RMSNORM_H_
#define STRATA_KERNELS_RMSNORM_H_

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strata::kernels {

struct RmsNormParams {
  float* residual = nullptr;     // [*, n] fp32 residual stream
  const float* delta = nullptr;  // optional [*, n]: added to the residual first
  // Optional: output row i reads residual (and delta) row row_index[i];
  // otherwise row i. Lets the final norm run on the logit rows only.
  const int32_t* row_index = nullptr;
  const float* weight = nullptr;  // [n]
  __nv_bfloat16* out = nullptr;   // [rows, n]
  int rows = 0;
  int n = 0;
  float eps = 1e-6f;
  // Store residual + delta back into residual (the layers); false leaves the
  // residual untouched (the final norm over selected rows).
  bool write_residual = true;
};

cudaError_t LaunchRmsNorm(const RmsNormParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_RMSNORM_H_
