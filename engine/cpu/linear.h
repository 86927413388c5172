// A linear layer's weight matrix on the CPU, converted once at load to the
// compute dtype, and the GEMM that applies it. Large batches go through a
// oneDNN matmul (bf16 x bf16 -> fp32, or fp32 for exact small models); small
// batches of bf16 rows (decode) through a bandwidth-bound SIMD GEMV on the
// backend's thread pool, which streams the weights once for all rows.
#ifndef STRATA_ENGINE_CPU_LINEAR_H_
#define STRATA_ENGINE_CPU_LINEAR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/cpu/thread_pool.h"
#include "engine/tensor_view.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace strata::engine::cpu {

// 64-byte aligned heap bytes. Owns its memory.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t bytes);
  std::byte* data() const { return data_.get(); }
  size_t size() const { return size_; }
  template <typename T>
  T* as() const {
    return reinterpret_cast<T*>(data_.get());
  }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t size_ = 0;
};

// Shared by all layers of one backend: the oneDNN engine and stream and the
// pool. Used from the engine thread only.
struct GemmContext {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  ThreadPool* pool = nullptr;  // borrowed
  // Batches of at most this many rows take the GEMV path (bf16 only).
  int64_t gemv_max_rows = 4;
};

class Linear {
 public:
  // Stacks the rows of `parts` (each [n_i, k], any dtype, same k) into one
  // [sum n_i, k] matrix in `compute` (kBF16 or kF32). INVALID_ARGUMENT on a
  // shape mismatch.
  static absl::StatusOr<Linear> Create(const std::vector<const TensorView*>& parts,
                                       DType compute);

  int64_t rows() const { return n_; }  // output features
  int64_t cols() const { return k_; }  // input features
  DType dtype() const { return dtype_; }
  const std::byte* weight_data() const { return weights_.data(); }

  // dst[m, n] (+)= src[m, k] . W[n, k]^T for m < rows; src in dtype(), dst
  // fp32 with leading dimension rows(). With src_lo (bf16 only), the input is
  // src + src_lo (split precision). `accumulate` adds into dst (residual).
  void Forward(GemmContext& context, const void* src, const uint16_t* src_lo, int64_t m,
               float* dst, bool accumulate);

 private:
  void Matmul(GemmContext& context, const void* src, int64_t m, float* dst, bool accumulate);
  dnnl::matmul& Primitive(GemmContext& context, int64_t m, bool accumulate);

  int64_t n_ = 0;
  int64_t k_ = 0;
  DType dtype_ = DType::kBF16;
  AlignedBuffer weights_;  // [n, k] row-major
  std::unordered_map<int64_t, dnnl::matmul> primitives_;  // by m * 2 + accumulate
};

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_LINEAR_H_
