#include "kernels/embedding.cuh"

namespace strata::kernels {

cudaError_t LaunchEmbedding(const EmbeddingParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  if (params.rows < 0 || params.hidden <= 0) return cudaErrorInvalidValue;
  detail::EmbeddingKernel<<<params.rows, 256, 0, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace strata::kernels
