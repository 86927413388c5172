#include "kernels/dispatch.cuh"
#include "kernels/kv_append.cuh"

namespace strata::kernels {

cudaError_t LaunchKvAppend(const KvAppendParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  if (params.rows < 0 || params.kv.block_size <= 0) return cudaErrorInvalidValue;
  return DispatchHeadDim(params.kv.head_dim, DType::kBF16, [&](auto dim) {
    detail::KvAppendKernel<decltype(dim)::value><<<params.rows, 128, 0, stream>>>(params);
    return cudaGetLastError();
  });
}

}  // namespace strata::kernels
