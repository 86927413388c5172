// AVX2 + FMA microkernels for CPUs without AVX512-BF16: bf16 weights are
// widened to fp32 in registers (even k from the low half of each 32-bit
// pair, odd k from the high half) and multiplied with fp32 FMA. Same packed
// layout as the AVX-512 path; different rounding, so the paths agree to
// ~1e-6 relative, not bitwise.
#include <immintrin.h>

#include <cstring>
#include <utility>

#include "engine/cpu/gemm_kernels.h"

namespace strata::engine::cpu::gemm_internal {
namespace {

#define STRATA_AVX2 __attribute__((target("avx2,fma")))

inline float Bf16ToFloat(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

STRATA_AVX2 inline __m256i ColumnMask(int64_t left) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(left < 8 ? left : 8)), lanes);
}

// acc holds four 8-column vectors per panel.
template <int kRows, int kVecs>
STRATA_AVX2 inline void StoreTile(const KernelArgs& p, __m256 (&acc)[kRows][kVecs]) {
  for (int v = 0; v < kVecs; ++v) {
    const int64_t col = (v / 4) * 32 + (v % 4) * 8;
    const int64_t left = ColumnsLeft(p.n_left, col);
    if (left == 0) continue;
    const __m256i mask = ColumnMask(left);
    for (int r = 0; r < kRows; ++r) {
      float* c = p.c + r * p.ldc + col;
      __m256 sum = acc[r][v];
      if (p.accumulate) sum = _mm256_add_ps(_mm256_maskload_ps(c, mask), sum);
      _mm256_maskstore_ps(c, mask, sum);
    }
  }
}

// Per element and k-pair, in order: x_even * w_even, (split: lo_even *
// w_even,) x_odd * w_odd, (split: lo_odd * w_odd). An odd last k has no odd
// term.
template <int kRows, int kPanels, bool kSplit>
STRATA_AVX2 void Bf16Kernel(const KernelArgs& p) {
  constexpr int kVecs = kPanels * 4;
  __m256 acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm256_setzero_ps();
  const auto* a = static_cast<const uint16_t*>(p.a);
  const uint16_t* lo = p.a_lo;
  const auto* b = static_cast<const uint16_t*>(p.b);
  const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
  const int64_t pairs = (p.k + 1) / 2;
  for (int64_t kp = 0; kp < pairs; ++kp) {
    const bool has_odd = 2 * kp + 1 < p.k;
    __m256 x0[kRows], x1[kRows], l0[kRows], l1[kRows];
    for (int r = 0; r < kRows; ++r) {
      const uint16_t* ar = a + r * p.lda + 2 * kp;
      x0[r] = _mm256_set1_ps(Bf16ToFloat(ar[0]));
      x1[r] = _mm256_set1_ps(has_odd ? Bf16ToFloat(ar[1]) : 0.0f);
      if constexpr (kSplit) {
        const uint16_t* lr = lo + r * p.lda + 2 * kp;
        l0[r] = _mm256_set1_ps(Bf16ToFloat(lr[0]));
        l1[r] = _mm256_set1_ps(has_odd ? Bf16ToFloat(lr[1]) : 0.0f);
      }
    }
    for (int v = 0; v < kVecs; ++v) {
      const uint16_t* bv = b + (v / 4) * p.panel_stride + kp * 64 + (v % 4) * 16;
      const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bv));
      const __m256 even = _mm256_castsi256_ps(_mm256_slli_epi32(raw, 16));
      const __m256 odd = _mm256_castsi256_ps(_mm256_and_si256(raw, high));
      for (int r = 0; r < kRows; ++r) {
        acc[r][v] = _mm256_fmadd_ps(x0[r], even, acc[r][v]);
        if constexpr (kSplit) acc[r][v] = _mm256_fmadd_ps(l0[r], even, acc[r][v]);
        if (has_odd) {
          acc[r][v] = _mm256_fmadd_ps(x1[r], odd, acc[r][v]);
          if constexpr (kSplit) acc[r][v] = _mm256_fmadd_ps(l1[r], odd, acc[r][v]);
        }
      }
    }
  }
  StoreTile<kRows, kVecs>(p, acc);
}

template <int kRows, int kPanels, bool kSplit>
STRATA_AVX2 void F32Kernel(const KernelArgs& p) {
  constexpr int kVecs = kPanels * 4;
  __m256 acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm256_setzero_ps();
  const auto* a = static_cast<const float*>(p.a);
  const auto* b = static_cast<const float*>(p.b);
  for (int64_t k = 0; k < p.k; ++k) {
    __m256 x[kRows];
    for (int r = 0; r < kRows; ++r) x[r] = _mm256_set1_ps(a[r * p.lda + k]);
    for (int v = 0; v < kVecs; ++v) {
      const __m256 w = _mm256_loadu_ps(b + (v / 4) * p.panel_stride + k * 32 + (v % 4) * 8);
      for (int r = 0; r < kRows; ++r) acc[r][v] = _mm256_fmadd_ps(x[r], w, acc[r][v]);
    }
  }
  StoreTile<kRows, kVecs>(p, acc);
}

// 16 ymm registers: at most 8 accumulators plus the broadcasts.
template <bool kSplit, bool kF32>
KernelSet MakeSet() {
  KernelSet set;
  set.max_rows = 2;
  set.wide_panels = 2;
  set.wide_max_rows = 1;
  if constexpr (kF32) {
    set.rows[1] = &F32Kernel<1, 1, false>;
    set.rows[2] = &F32Kernel<2, 1, false>;
    set.wide[1] = &F32Kernel<1, 2, false>;
  } else {
    set.rows[1] = &Bf16Kernel<1, 1, kSplit>;
    set.rows[2] = &Bf16Kernel<2, 1, kSplit>;
    set.wide[1] = &Bf16Kernel<1, 2, kSplit>;
  }
  return set;
}

}  // namespace

const KernelSet& Avx2Kernels(Mode mode) {
  static const KernelSet bf16 = MakeSet<false, false>();
  static const KernelSet split = MakeSet<true, false>();
  static const KernelSet f32 = MakeSet<false, true>();
  switch (mode) {
    case Mode::kBf16:
      return bf16;
    case Mode::kBf16Split:
      return split;
    case Mode::kF32:
      return f32;
  }
  return bf16;
}

}  // namespace strata::engine::cpu::gemm_internal
