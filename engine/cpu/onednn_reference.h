// oneDNN's bf16 matmul as a yardstick: the benchmark reports the CPU
// backend's prefill throughput as a fraction of what oneDNN (Debian libdnnl,
// on the same OpenMP threads) reaches on the same GEMM shape in the same run.
// Nothing in the forward pass uses oneDNN.
#ifndef STRATA_ENGINE_CPU_ONEDNN_REFERENCE_H_
#define STRATA_ENGINE_CPU_ONEDNN_REFERENCE_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace strata::engine::cpu {

struct MatmulThroughput {
  double gflops = 0;   // 2 * m * n * k / median seconds
  double seconds = 0;  // median of the timed runs
  std::string implementation;  // oneDNN's kernel name, e.g. "brg:avx512_core_amx"
};

// Times C[m, n] = A[m, k] . B[k, n] in bf16 with fp32 output (B in the
// layout oneDNN prefers, reordered untimed, as packed weights would be),
// `reps` times after one warm-up run, on `threads` OpenMP threads.
// INVALID_ARGUMENT for non-positive sizes; INTERNAL if oneDNN fails (for
// example a CPU without bf16 support).
absl::StatusOr<MatmulThroughput> MeasureOnednnBf16Matmul(int64_t m, int64_t n, int64_t k,
                                                          int threads, int reps);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_ONEDNN_REFERENCE_H_
