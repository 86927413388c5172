#include "kernels/sampling.cuh"

namespace strata::kernels {

cudaError_t LaunchSample(const SampleParams& params, cudaStream_t stream) {
  if (params.num_rows == 0) return cudaSuccess;
  if (params.num_rows < 0 || params.vocab <= 0 || params.rows == nullptr ||
      params.results == nullptr) {
    return cudaErrorInvalidValue;
  }
  detail::SampleKernel<<<params.num_rows, detail::kSampleThreads, 0, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace strata::kernels
