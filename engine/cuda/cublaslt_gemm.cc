#include "engine/cuda/cublaslt_gemm.h"

#include <bit>

#include "absl/strings/str_cat.h"
#include "engine/cuda/cuda_status.h"

namespace strata::engine::cuda {
namespace {

// The largest power of two (at most 256) dividing the address: what the
// heuristic may assume of the operand.
int AlignmentOf(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  if (address == 0) return 256;
  return static_cast<int>(std::min<uintptr_t>(256, address & (~address + 1)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CublasLtGemm>> CublasLtGemm::Create(size_t workspace_bytes) {
  auto gemm = std::unique_ptr<CublasLtGemm>(new CublasLtGemm());
  if (absl::Status s = CublasStatus(cublasLtCreate(&gemm->handle_), "cublasLtCreate"); !s.ok()) {
    return s;
  }
  absl::StatusOr<DeviceBuffer> workspace = DeviceBuffer::Allocate(workspace_bytes);
  if (!workspace.ok()) return workspace.status();
  gemm->workspace_ = *std::move(workspace);
  return gemm;
}

CublasLtGemm::~CublasLtGemm() {
  for (auto& [key, plan] : plans_) Destroy(plan);
  if (handle_ != nullptr) (void)cublasLtDestroy(handle_);
}

void CublasLtGemm::Destroy(Plan& plan) {
  if (plan.a != nullptr) (void)cublasLtMatrixLayoutDestroy(plan.a);
  if (plan.b != nullptr) (void)cublasLtMatrixLayoutDestroy(plan.b);
  if (plan.c != nullptr) (void)cublasLtMatrixLayoutDestroy(plan.c);
  if (plan.desc != nullptr) (void)cublasLtMatmulDescDestroy(plan.desc);
  plan = Plan();
}

absl::StatusOr<const CublasLtGemm::Plan*> CublasLtGemm::GetPlan(const GemmArgs& args, int64_t ldo) {
  const int align_w = AlignmentOf(args.weight), align_a = AlignmentOf(args.act),
            align_o = AlignmentOf(args.out);
  const PlanKey key{args.m, args.n, args.k, ldo, args.out_bf16, align_w, align_a, align_o};
  if (auto it = plans_.find(key); it != plans_.end()) return &it->second;

  Plan plan;
  const cudaDataType_t out_type = args.out_bf16 ? CUDA_R_16BF : CUDA_R_32F;
  absl::Status status = CublasStatus(
      cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F), "MatmulDescCreate");
  const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
  if (status.ok()) {
    status = CublasStatus(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                                         &transpose, sizeof(transpose)),
                          "TRANSA");
  }
  if (status.ok()) {
    status = CublasStatus(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)),
        "TRANSB");
  }
  // Column-major: W is k x n (ld k), act is k x m (ld k), out is n x m (ld ldo).
  if (status.ok()) {
    status =
        CublasStatus(cublasLtMatrixLayoutCreate(&plan.a, CUDA_R_16BF, static_cast<uint64_t>(args.k),
                                                static_cast<uint64_t>(args.n), args.k),
                     "layout W");
  }
  if (status.ok()) {
    status =
        CublasStatus(cublasLtMatrixLayoutCreate(&plan.b, CUDA_R_16BF, static_cast<uint64_t>(args.k),
                                                static_cast<uint64_t>(args.m), args.k),
                     "layout act");
  }
  if (status.ok()) {
    status =
        CublasStatus(cublasLtMatrixLayoutCreate(&plan.c, out_type, static_cast<uint64_t>(args.n),
                                                static_cast<uint64_t>(args.m), ldo),
                     "layout out");
  }
  cublasLtMatmulPreference_t preference = nullptr;
  if (status.ok()) {
    status = CublasStatus(cublasLtMatmulPreferenceCreate(&preference), "PreferenceCreate");
  }
  if (status.ok()) {
    const uint64_t workspace = workspace_.size();
    const uint32_t aligns[3] = {static_cast<uint32_t>(align_w), static_cast<uint32_t>(align_a),
                                static_cast<uint32_t>(align_o)};
    (void)cublasLtMatmulPreferenceSetAttribute(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                               &workspace, sizeof(workspace));
    (void)cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aligns[0], sizeof(uint32_t));
    (void)cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &aligns[1], sizeof(uint32_t));
    (void)cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &aligns[2], sizeof(uint32_t));
    (void)cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &aligns[2], sizeof(uint32_t));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    status = CublasStatus(cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b, plan.c,
                                                         plan.c, preference, 1, &result, &found),
                          "AlgoGetHeuristic");
    if (status.ok() && found == 0) {
      status = absl::InternalError(absl::StrCat("cuBLASLt has no bf16 algorithm for m=", args.m,
                                                " n=", args.n, " k=", args.k));
    }
    if (status.ok()) plan.algo = result.algo;
  }
  if (preference != nullptr) (void)cublasLtMatmulPreferenceDestroy(preference);
  if (!status.ok()) {
    Destroy(plan);
    return status;
  }
  return &plans_.emplace(key, plan).first->second;
}

absl::Status CublasLtGemm::Matmul(const GemmArgs& args, cudaStream_t stream) {
  if (args.m == 0) return absl::OkStatus();
  const int64_t ldo = args.ldo == 0 ? args.n : args.ldo;
  if (args.m < 0 || args.n <= 0 || args.k <= 0 || ldo < args.n ||
      (args.accumulate && args.out_bf16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad GEMM shape m=", args.m, " n=", args.n, " k=", args.k, " ldo=", ldo));
  }
  absl::StatusOr<const Plan*> plan = GetPlan(args, ldo);
  if (!plan.ok()) return plan.status();
  const float alpha = 1.0f;
  const float beta = args.accumulate ? 1.0f : 0.0f;
  return CublasStatus(
      cublasLtMatmul(handle_, (*plan)->desc, &alpha, args.weight, (*plan)->a, args.act, (*plan)->b,
                     &beta, args.out, (*plan)->c, args.out, (*plan)->c, &(*plan)->algo,
                     workspace_.data(), workspace_.size(), stream),
      "cublasLtMatmul");
}

}  // namespace strata::engine::cuda
