#include <algorithm>

#include "kernels/dispatch.cuh"
#include "kernels/rope.cuh"

namespace strata::kernels {

cudaError_t LaunchRopeTable(const RopeTableParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  if (params.rows < 0 || params.half <= 0) return cudaErrorInvalidValue;
  const int64_t total = static_cast<int64_t>(params.rows) * params.half;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65536);
  detail::RopeTableKernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(params);
  return cudaGetLastError();
}

cudaError_t LaunchQkvRope(const QkvRopeParams& params, cudaStream_t stream) {
  if (params.rows == 0) return cudaSuccess;
  if (params.rows < 0 || params.num_heads <= 0 || params.num_kv_heads <= 0) {
    return cudaErrorInvalidValue;
  }
  if ((params.q_norm == nullptr) != (params.k_norm == nullptr)) return cudaErrorInvalidValue;
  constexpr int kWarps = 4;
  const int heads = params.num_heads + 2 * params.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(params.rows), (heads + kWarps - 1) / kWarps);
  return DispatchHeadDim(params.head_dim, DType::kBF16, [&](auto dim) {
    detail::QkvRopeKernel<decltype(dim)::value><<<grid, kWarps * 32, 0, stream>>>(params);
    return cudaGetLastError();
  });
}

}  // namespace strata::kernels
