#include <algorithm>

#include "kernels/attention_decode.cuh"
#include "kernels/dispatch.cuh"

namespace strata::kernels {

int DecodePartitions(int num_queries, int num_kv_heads, int max_context, int num_sms,
                     int max_partitions) {
  const int chunks = std::max(1, (max_context + kDecodeChunkKeys - 1) / kDecodeChunkKeys);
  const int blocks = std::max(1, num_queries * num_kv_heads);
  const int wanted = std::max(1, (2 * num_sms + blocks - 1) / blocks);
  return std::clamp(std::min(wanted, chunks), 1, std::max(1, max_partitions));
}

cudaError_t LaunchDecodeAttention(const DecodeAttentionParams& params, cudaStream_t stream) {
  if (params.num_queries == 0) return cudaSuccess;
  const int kv_heads = params.kv.num_kv_heads;
  if (params.num_queries < 0 || kv_heads <= 0 || params.num_heads % kv_heads != 0 ||
      params.num_partitions < 1 || params.workspace == nullptr) {
    return cudaErrorInvalidValue;
  }
  const int group = params.num_heads / kv_heads;
  const int head_chunks = (group + kDecodeHeadsPerBlock - 1) / kDecodeHeadsPerBlock;
  return DispatchHeadDim(params.kv.head_dim, DType::kBF16, [&](auto dim) {
    constexpr int kDim = decltype(dim)::value;
    const dim3 grid(static_cast<unsigned>(params.num_partitions),
                    static_cast<unsigned>(kv_heads * head_chunks),
                    static_cast<unsigned>(params.num_queries));
    detail::DecodePartitionKernel<kDim><<<grid, detail::kDecodeThreads, 0, stream>>>(params);
    cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    const dim3 combine(static_cast<unsigned>(params.num_heads),
                       static_cast<unsigned>(params.num_queries));
    detail::DecodeCombineKernel<kDim><<<combine, kDim, 0, stream>>>(params);
    return cudaGetLastError();
  });
}

}  // namespace strata::kernels
