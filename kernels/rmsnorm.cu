#include "kernels/rmsnorm.cuh"

namespace strata::kernels {

cudaError_t LaunchRmsNorm(const RmsNormParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  if (params.rows < 0 || params.n <= 0) return cudaErrorInvalidValue;
  const int threads = params.n >= 4096 ? 1024 : (params.n >= 1024 ? 512 : 128);
  detail::RmsNormKernel<<<params.rows, threads, 0, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace strata::kernels
