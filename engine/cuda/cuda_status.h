// CUDA and cuBLASLt return codes as absl::Status, for engine/cuda. A failed
// CUDA call on the data plane becomes INTERNAL (or RESOURCE_EXHAUSTED for an
// allocation), naming the call, never an abort.
#ifndef STRATA_ENGINE_CUDA_CUDA_STATUS_H_
#define STRATA_ENGINE_CUDA_CUDA_STATUS_H_

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace strata::engine::cuda {

inline absl::Status CudaStatus(cudaError_t error, const char* what) {
  if (error == cudaSuccess) return absl::OkStatus();
  const std::string message =
      absl::StrCat(what, ": ", cudaGetErrorName(error), " (", cudaGetErrorString(error), ")");
  if (error == cudaErrorMemoryAllocation) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

inline absl::Status CublasStatus(cublasStatus_t status, const char* what) {
  if (status == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": cuBLAS status ", static_cast<int>(status));
  if (status == CUBLAS_STATUS_ALLOC_FAILED) return absl::ResourceExhaustedError(message);
  return absl::InternalError(message);
}

}  // namespace strata::engine::cuda

// Returns from the enclosing function (absl::Status or StatusOr) on failure.
#define STRATA_CUDA_RETURN_IF_ERROR(call)                                                      \
  do {                                                                                         \
    if (::absl::Status strata_cuda_status = ::strata::engine::cuda::CudaStatus((call), #call); \
        !strata_cuda_status.ok()) {                                                            \
      return strata_cuda_status;                                                               \
    }                                                                                          \
  } while (0)

#define STRATA_RETURN_IF_ERROR(expr)                                  \
  do {                                                                \
    if (::absl::Status strata_status = (expr); !strata_status.ok()) { \
      return strata_status;                                           \
    }                                                                 \
  } while (0)

#endif  // STRATA_ENGINE_CUDA_CUDA_STATUS_H_
