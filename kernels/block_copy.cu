#include <algorithm>

#include "kernels/block_copy.cuh"

namespace strata::kernels {

cudaError_t LaunchBlockCopy(const BlockCopyParams& params, cudaStream_t stream) {
  if (params.count == 0) return cudaSuccess;
  if (params.count < 0 || params.block_bytes <= 0 || params.block_bytes % 16 != 0) {
    return cudaErrorInvalidValue;
  }
  constexpr int kThreads = 256;
  const int64_t vectors = params.block_bytes / 16;
  // About 4 vectors per thread per slice; at most 64 slices per block.
  const int64_t slices = std::clamp<int64_t>(vectors / (4 * kThreads), 1, 64);
  const dim3 grid(static_cast<unsigned>(params.count), static_cast<unsigned>(slices));
  detail::BlockCopyKernel<<<grid, kThreads, 0, stream>>>(params);
  return cudaGetLastError();
}

}  // namespace strata::kernels
