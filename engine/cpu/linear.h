// A linear layer's weight matrix on the CPU, packed once at load for the
// batch-invariant GEMM (engine/cpu/gemm.h), and the call that applies it to
// any number of rows: decode (bandwidth-bound) and prefill (compute-bound)
// take the same kernels' per-row arithmetic, so a row's output does not
// depend on the batch it is in.
#ifndef STRATA_ENGINE_CPU_LINEAR_H_
#define STRATA_ENGINE_CPU_LINEAR_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/gemm.h"
#include "engine/cpu/thread_pool.h"
#include "engine/tensor_view.h"

namespace strata::engine::cpu {

// Shared by all layers of one backend; used from the engine thread only.
struct GemmContext {
  ThreadPool* pool = nullptr;  // borrowed; nullptr runs on the caller alone
  GemmPath path = BestGemmPath();
};

class Linear {
 public:
  // Stacks the rows of `parts` (each [n_i, k], any dtype, same k) into one
  // [sum n_i, k] matrix in `compute` (kBF16 or kF32), packed. INVALID_ARGUMENT
  // on a shape mismatch.
  static absl::StatusOr<Linear> Create(const std::vector<const TensorView*>& parts,
                                       DType compute);

  int64_t rows() const { return weights_.n(); }  // output features
  int64_t cols() const { return weights_.k(); }  // input features
  DType dtype() const { return weights_.dtype(); }
  // Row `row` of the weight matrix as fp32 (embedding lookups of tied
  // weights); dst holds cols() floats.
  void RowToFloat(int64_t row, float* dst) const { weights_.RowToFloat(row, dst); }

  // dst[m, n] (+)= src[m, k] . W[n, k]^T for m < rows; src in dtype() with
  // leading dimension cols(), dst fp32 with leading dimension dst_stride
  // (0: rows()). With src_lo (bf16 only), the input is src + src_lo (split
  // precision). `accumulate` adds the product to dst (residual).
  void Forward(const GemmContext& context, const void* src, const uint16_t* src_lo, int64_t m,
               float* dst, bool accumulate, int64_t dst_stride = 0) const;

 private:
  PackedMatrix weights_;
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_LINEAR_H_
