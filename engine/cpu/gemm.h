// The CPU backend's one GEMM, for every batch size: C[m, n] (+)= A[m, k] .
// W[n, k]^T with W packed once at load into panels made for the kernels.
//
// Batch invariance is the contract: the value of every output element depends
// only on its own row of A, the weights and the path, never on m, on the
// row's position in the batch, on the other rows, or on the thread count.
// Each element is one fp32 accumulator that runs over k in a fixed order from
// 0 to k; work is split across rows and column panels only, never across k.
// So a prompt's logits are the same however it is chunked or batched.
//
// Packed layout (kBf16 weights): panels of kPanel = 32 output columns, k in
// pairs: [n / 32][pairs][32][2] bf16 with pairs = ceil(k / 2) rounded up to
// 16, zero padded, so one 64-byte load feeds one vdpbf16ps with a broadcast
// pair of activations, and 16 pair rows (stride 128 bytes) make one AMX B
// tile per 16 columns. fp32 weights: [n / 32][k][32] fp32.
#ifndef STRATA_ENGINE_CPU_GEMM_H_
#define STRATA_ENGINE_CPU_GEMM_H_

#include <cstdint>
#include <functional>
#include <memory>

#include "engine/cpu/aligned_buffer.h"
#include "engine/cpu/thread_pool.h"
#include "engine/tensor_view.h"

namespace strata::engine::cpu {

// Kernel families. Each is batch-invariant on its own; they differ from each
// other in the last bits (vdpbf16ps vs fp32 FMA rounding).
enum class GemmPath {
  kAmxBf16,     // AMX tiles (tdpbf16ps) for bf16 weights; fp32 as kAvx512Bf16
  kAvx512Bf16,  // AVX-512 with AVX512-BF16: vdpbf16ps on bf16 pairs
  kAvx2,        // AVX2 + FMA: bf16 widened to fp32, FMA
  kScalar,      // portable C++, same layout
};

// Whether this CPU can run `path` (kScalar always can).
bool GemmPathSupported(GemmPath path);
// The fastest supported path, decided once.
GemmPath BestGemmPath();
const char* GemmPathName(GemmPath path);

constexpr int64_t kPanel = 32;  // output columns per packed panel

// A weight matrix W [n, k] in the packed layout above. Immutable after Pack;
// safe to read from many threads.
class PackedMatrix {
 public:
  PackedMatrix() = default;
  // `row(i, dst)` writes W's row i (k floats) to dst; it is called once per
  // row, in order. dtype is kBF16 (values rounded to nearest even) or kF32.
  static PackedMatrix Pack(int64_t n, int64_t k, DType dtype,
                           const std::function<void(int64_t row, float* dst)>& row);

  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  DType dtype() const { return dtype_; }
  int64_t panels() const { return (n_ + kPanel - 1) / kPanel; }
  // Elements (bf16 or fp32) from one panel to the next.
  int64_t panel_stride() const { return panel_stride_; }
  const std::byte* data() const { return data_.get(); }
  // W[row, 0..k) as fp32 (the embedding lookup of tied weights).
  void RowToFloat(int64_t row, float* dst) const;

 private:
  int64_t n_ = 0;
  int64_t k_ = 0;
  DType dtype_ = DType::kBF16;
  int64_t panel_stride_ = 0;
  std::shared_ptr<std::byte> data_;  // in a weight slab (weight_slabs.h)
};

// One GEMM call. A's element type follows the weights: bf16 bit patterns for
// bf16 weights, fp32 for fp32 weights. Borrowed pointers, valid for the call.
struct GemmArgs {
  const void* a = nullptr;         // [m, lda]
  const uint16_t* a_lo = nullptr;  // bf16 weights only: A is a + a_lo (split)
  int64_t lda = 0;                 // elements, >= k
  int64_t m = 0;
  float* c = nullptr;  // [m, ldc]
  int64_t ldc = 0;     // >= n
  // C += product instead of C = product; the product is formed first, so the
  // result is c + (A . W^T) whatever the blocking.
  bool accumulate = false;
};

// Runs on `pool` (nullptr: the calling thread only) with `path`, which must
// be supported. Allocates nothing.
void Gemm(const PackedMatrix& w, const GemmArgs& args, ThreadPool* pool, GemmPath path);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_GEMM_H_
