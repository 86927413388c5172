// Embedding gather kernel (kernels/embedding.h).
#ifndef STRATA_KERNELS_EMBEDDING_CUH_
#define STRATA_KERNELS_EMBEDDING_CUH_

#include "kernels/common.cuh"
#include "kernels/embedding.h"

namespace strata::kernels::detail {

// One block per row; consecutive threads read consecutive elements.
__global__ void EmbeddingKernel(EmbeddingParams p) {
  const int row = blockIdx.x;
  const __nv_bfloat16* src = p.table + static_cast<int64_t>(p.token_ids[row]) * p.hidden;
  float* dst = p.out + static_cast<int64_t>(row) * p.hidden;
  for (int i = threadIdx.x; i < p.hidden; i += blockDim.x) dst[i] = __bfloat162float(src[i]);
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_EMBEDDING_CUH_
