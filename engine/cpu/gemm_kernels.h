// Internal to gemm*.cc: the microkernel interface that the per-ISA files
// implement. A microkernel computes `mr` rows of A against `np` consecutive
// panels over the whole of k, one fp32 accumulator per output element running
// over k in order. Every (mr, np) variant performs, for each element, exactly
// the same sequence of operations, so a row's result does not depend on
// which variant computed it.
#ifndef STRATA_ENGINE_CPU_GEMM_KERNELS_H_
#define STRATA_ENGINE_CPU_GEMM_KERNELS_H_

#include <cstdint>

namespace strata::engine::cpu::gemm_internal {

struct KernelArgs {
  const void* a;         // first row of the group
  const uint16_t* a_lo;  // split precision residuals, or null
  int64_t lda;
  const void* b;         // first panel
  int64_t panel_stride;  // elements
  int64_t k;
  float* c;  // output column of the first panel's first column
  int64_t ldc;
  int64_t n_left;  // valid output columns from the first panel's start on
  bool accumulate;
};

using Kernel = void (*)(const KernelArgs&);

constexpr int kMaxRows = 12;

// Kernels of one path and mode. `rows[mr]` (1 <= mr <= max_rows) computes
// mr rows against one panel; `wide[mr]` (1 <= mr <= wide_max_rows) computes
// mr rows against wide_panels panels, for small m where one panel's few
// accumulators would leave the FMA units waiting on latency.
struct KernelSet {
  int max_rows = 1;
  Kernel rows[kMaxRows + 1] = {};
  int wide_panels = 1;
  int wide_max_rows = 0;
  Kernel wide[kMaxRows + 1] = {};
};

enum class Mode { kBf16, kBf16Split, kF32 };

const KernelSet& Avx512Kernels(Mode mode);
const KernelSet& Avx2Kernels(Mode mode);
const KernelSet& ScalarKernels(Mode mode);

// The AMX path works on whole row ranges rather than microkernel calls: it
// packs A into tiles' layout per thread and configures the tiles itself.
struct AmxProblem {
  const uint16_t* a;
  const uint16_t* a_lo;  // split residuals, or null
  int64_t lda;
  const uint16_t* b;  // packed panels (pairs padded to a multiple of 16)
  int64_t panel_stride;
  int64_t n, k;
  float* c;
  int64_t ldc;
  bool accumulate;
};

// CPU support for amx-bf16 and the OS's permission for tile state (asked for
// once).
bool AmxUsable();
// The 64-byte operand of ldtilecfg (palette 1), for the AMX paths
// (gemm_amx.cc, attention_amx.cc).
struct AmxTileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
// Rows [m0, m1) against panels [p0, p1) on the calling thread.
void AmxRange(const AmxProblem& problem, int64_t m0, int64_t m1, int64_t p0, int64_t p1);

// Column mask helper shared by the kernels: columns of a 16- or 8-wide
// vector starting `first` columns into the valid range.
inline int64_t ColumnsLeft(int64_t n_left, int64_t first) {
  const int64_t left = n_left - first;
  return left < 0 ? 0 : left;
}

}  // namespace strata::engine::cpu::gemm_internal

#endif  // STRATA_ENGINE_CPU_GEMM_KERNELS_H_
