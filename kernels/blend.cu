#include "kernels/blend.cuh"
#include "kernels/dispatch.cuh"

namespace strata::kernels {

cudaError_t LaunchBlendPlace(const BlendPlaceParams& params, cudaStream_t stream) {
  if (params.tokens == 0) return cudaSuccess;
  if (params.tokens < 0 || params.kv.block_size <= 0 || params.kv.num_layers <= 0 ||
      params.kv.num_layers > 65535 || params.kv.num_kv_heads <= 0 || params.inv_freq == nullptr) {
    return cudaErrorInvalidValue;
  }
  return DispatchHeadDim(params.kv.head_dim, DType::kBF16, [&](auto dim) {
    const dim3 grid(static_cast<unsigned>(params.tokens),
                    static_cast<unsigned>(params.kv.num_layers));
    detail::BlendPlaceKernel<decltype(dim)::value>
        <<<grid, detail::kBlendPlaceThreads, 0, stream>>>(params);
    return cudaGetLastError();
  });
}

cudaError_t LaunchKvDeviation(const KvDeviationParams& params, cudaStream_t stream) {
  if (params.tokens == 0) return cudaSuccess;
  // float4 loads of the fresh rows.
  if (params.tokens < 0 || params.kv.block_size <= 0 || params.kv.num_kv_heads <= 0 ||
      params.row_stride % 4 != 0 || params.k_offset % 4 != 0 || params.v_offset % 4 != 0) {
    return cudaErrorInvalidValue;
  }
  return DispatchHeadDim(params.kv.head_dim, DType::kBF16, [&](auto dim) {
    const int blocks = (params.tokens + detail::kDeviationWarps - 1) / detail::kDeviationWarps;
    detail::KvDeviationKernel<decltype(dim)::value>
        <<<blocks, detail::kDeviationWarps * 32, 0, stream>>>(params);
    return cudaGetLastError();
  });
}

cudaError_t LaunchRowGather(const RowGatherParams& params, cudaStream_t stream) {
  if (params.count == 0) return cudaSuccess;
  if (params.count < 0 || params.copy_bytes <= 0 || params.copy_bytes % 16 != 0 ||
      params.src_row_bytes % 16 != 0 || params.dst_row_bytes % 16 != 0 ||
      params.copy_bytes > params.src_row_bytes || params.copy_bytes > params.dst_row_bytes) {
    return cudaErrorInvalidValue;
  }
  detail::RowGatherKernel<<<params.count, detail::kGatherThreads, 0, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace strata::kernels
