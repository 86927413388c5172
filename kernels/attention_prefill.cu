#include "kernels/attention_prefill.cuh"
#include "kernels/dispatch.cuh"

namespace strata::kernels {

cudaError_t LaunchPrefillAttention(const PrefillAttentionParams& params, cudaStream_t stream) {
  if (params.num_tiles == 0) return cudaSuccess;
  const int kv_heads = params.kv.num_kv_heads;
  if (params.num_tiles < 0 || kv_heads <= 0 || params.num_heads % kv_heads != 0) {
    return cudaErrorInvalidValue;
  }
  return DispatchHeadDim(params.kv.head_dim, DType::kBF16, [&](auto dim) {
    const dim3 grid(static_cast<unsigned>(params.num_tiles), static_cast<unsigned>(kv_heads));
    detail::PrefillAttentionKernel<decltype(dim)::value>
        <<<grid, detail::kPrefillWarps * 32, 0, stream>>>(params);
    return cudaGetLastError();
  });
}

}  // namespace strata::kernels
