#include <algorithm>

#include "kernels/swiglu.cuh"

namespace strata::kernels {

cudaError_t LaunchSwiGlu(const SwiGluParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  if (params.rows < 0 || params.n <= 0) return cudaErrorInvalidValue;
  const int64_t total = static_cast<int64_t>(params.rows) * params.n;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65536);
  detail::SwiGluKernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace strata::kernels
