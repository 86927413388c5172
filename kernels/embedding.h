// Embedding gather: token ids -> fp32 rows of the residual stream.
// Launchers return the launch's cudaError_t; inputs are device memory owned
// by the caller, valid until the stream reaches the kernel. Thread-safe.
#ifndef STRATA_KERNELS_EMBEDDING_H_
#define STRATA_KERNELS_EMBEDDING_H_

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace strata::kernels {

struct EmbeddingParams {
  const __nv_bfloat16* table = nullptr;  // [vocab, hidden]
  const int32_t* token_ids = nullptr;    // [rows], each in [0, vocab) (validated by the caller)
  float* out = nullptr;                  // [rows, hidden]
  int rows = 0;
  int hidden = 0;
};

// out[r, :] = float(table[token_ids[r], :]).
cudaError_t LaunchEmbedding(const EmbeddingParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_EMBEDDING_H_
