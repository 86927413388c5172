// The CUDA backend's GEMMs through cuBLASLt: bf16 weights and activations,
// fp32 accumulation, fp32 or bf16 output. A linear layer's weight is
// [n, k] row-major (the checkpoint's layout), so out[m, n] = act[m, k] .
// weight^T is, in cuBLASLt's column-major terms, D(n x m) = W^T(n x k) .
// A(k x m) with op(W) = T. One plan (descriptors and the heuristic's
// algorithm) is cached per shape, output type and operand alignment, so a
// step re-plans nothing, and the calls are capturable in CUDA graphs (the
// workspace is allocated once).
// Not thread-safe: one engine thread.
#ifndef STRATA_ENGINE_CUDA_CUBLASLT_GEMM_H_
#define STRATA_ENGINE_CUDA_CUBLASLT_GEMM_H_

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/cuda/device_memory.h"

namespace strata::engine::cuda {

struct GemmArgs {
  const void* weight = nullptr;  // bf16 [n, k]
  const void* act = nullptr;     // bf16 [m, k]
  void* out = nullptr;           // [m, ldo] fp32 or bf16
  int64_t m = 0, n = 0, k = 0;
  int64_t ldo = 0;  // 0: n
  bool out_bf16 = false;
  bool accumulate = false;  // out += product (fp32 output only)
};

class CublasLtGemm {
 public:
  static absl::StatusOr<std::unique_ptr<CublasLtGemm>> Create(size_t workspace_bytes);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm&) = delete;
  CublasLtGemm& operator=(const CublasLtGemm&) = delete;

  // Enqueues the product on `stream`. INVALID_ARGUMENT for bad shapes;
  // INTERNAL when cuBLASLt has no algorithm or fails.
  absl::Status Matmul(const GemmArgs& args, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  // m, n, k, ldo, out_bf16, alignment bits of the three pointers.
  using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, bool, int, int, int>;

  CublasLtGemm() = default;
  absl::StatusOr<const Plan*> GetPlan(const GemmArgs& args, int64_t ldo);
  static void Destroy(Plan& plan);

  cublasLtHandle_t handle_ = nullptr;
  DeviceBuffer workspace_;
  absl::flat_hash_map<PlanKey, Plan> plans_;
};

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_CUBLASLT_GEMM_H_
