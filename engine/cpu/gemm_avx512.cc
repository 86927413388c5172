// AVX-512 microkernels: vdpbf16ps on packed bf16 pairs (kBf16, kBf16Split)
// and vfmadd231ps on packed fp32 (kF32). Compiled with target attributes so
// the rest of the binary stays baseline x86-64; only called on CPUs that
// report avx512bf16 (see GemmPathSupported).
#include "engine/cpu/gemm_kernels.h"

// GCC 12's AVX-512 intrinsic headers initialise "undefined" vectors from
// themselves (__Y = __Y), which -Wuninitialized flags once inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cstring>
#include <utility>

namespace strata::engine::cpu::gemm_internal {
namespace {

#define STRATA_AVX512 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

// How far ahead of the current k-pair the streamed weights are prefetched in
// the small-m (bandwidth-bound) kernels: 16 pairs of a panel are 2 KiB.
constexpr int64_t kPrefetchPairs = 16;

inline int32_t LoadPair(const uint16_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

STRATA_AVX512 inline __mmask16 ColumnMask(int64_t left) {
  return left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

// Writes acc (one 16-column vector per v, two per panel) to C rows.
template <int kRows, int kVecs>
STRATA_AVX512 inline void StoreTile(const KernelArgs& p, __m512 (&acc)[kRows][kVecs]) {
  for (int v = 0; v < kVecs; ++v) {
    const int64_t col = (v / 2) * 32 + (v % 2) * 16;
    const int64_t left = ColumnsLeft(p.n_left, col);
    if (left == 0) continue;
    const __mmask16 mask = ColumnMask(left);
    for (int r = 0; r < kRows; ++r) {
      float* c = p.c + r * p.ldc + col;
      __m512 sum = acc[r][v];
      if (p.accumulate) sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, c), sum);
      _mm512_mask_storeu_ps(c, mask, sum);
    }
  }
}

// kRows x kPanels panels; per element: for each k-pair in order, one
// vdpbf16ps with the hi pair, then (split) one with the lo pair.
template <int kRows, int kPanels, bool kSplit, bool kPrefetch>
STRATA_AVX512 void Bf16Kernel(const KernelArgs& p) {
  constexpr int kVecs = kPanels * 2;
  __m512 acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_setzero_ps();
  const auto* a = static_cast<const uint16_t*>(p.a);
  const uint16_t* lo = p.a_lo;
  const auto* b = static_cast<const uint16_t*>(p.b);
  const int64_t pairs = p.k / 2;
  for (int64_t kp = 0; kp < pairs; ++kp) {
    __m512i bv[kVecs];
    for (int q = 0; q < kPanels; ++q) {
      const uint16_t* bq = b + q * p.panel_stride + kp * 64;
      if constexpr (kPrefetch) {
        _mm_prefetch(reinterpret_cast<const char*>(bq + kPrefetchPairs * 64), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(bq + kPrefetchPairs * 64 + 32), _MM_HINT_T0);
      }
      bv[2 * q] = _mm512_loadu_si512(bq);
      bv[2 * q + 1] = _mm512_loadu_si512(bq + 32);
    }
    for (int r = 0; r < kRows; ++r) {
      const __m512i x = _mm512_set1_epi32(LoadPair(a + r * p.lda + 2 * kp));
      for (int v = 0; v < kVecs; ++v)
        acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)x, (__m512bh)bv[v]);
      if constexpr (kSplit) {
        const __m512i xl = _mm512_set1_epi32(LoadPair(lo + r * p.lda + 2 * kp));
        for (int v = 0; v < kVecs; ++v)
          acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)xl, (__m512bh)bv[v]);
      }
    }
  }
  if (p.k % 2 != 0) {  // last odd k: its pair partner is 0 (so is the weight)
    __m512i bv[kVecs];
    for (int q = 0; q < kPanels; ++q) {
      const uint16_t* bq = b + q * p.panel_stride + pairs * 64;
      bv[2 * q] = _mm512_loadu_si512(bq);
      bv[2 * q + 1] = _mm512_loadu_si512(bq + 32);
    }
    for (int r = 0; r < kRows; ++r) {
      const __m512i x = _mm512_set1_epi32(a[r * p.lda + p.k - 1]);
      for (int v = 0; v < kVecs; ++v)
        acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)x, (__m512bh)bv[v]);
      if constexpr (kSplit) {
        const __m512i xl = _mm512_set1_epi32(lo[r * p.lda + p.k - 1]);
        for (int v = 0; v < kVecs; ++v)
          acc[r][v] = _mm512_dpbf16_ps(acc[r][v], (__m512bh)xl, (__m512bh)bv[v]);
      }
    }
  }
  StoreTile<kRows, kVecs>(p, acc);
}

// fp32: per element, one FMA per k in order.
template <int kRows, int kPanels, bool kSplit, bool kPrefetch>
STRATA_AVX512 void F32Kernel(const KernelArgs& p) {
  constexpr int kVecs = kPanels * 2;
  __m512 acc[kRows][kVecs];
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_setzero_ps();
  const auto* a = static_cast<const float*>(p.a);
  const auto* b = static_cast<const float*>(p.b);
  for (int64_t k = 0; k < p.k; ++k) {
    __m512 bv[kVecs];
    for (int q = 0; q < kPanels; ++q) {
      const float* bq = b + q * p.panel_stride + k * 32;
      if constexpr (kPrefetch) {
        _mm_prefetch(reinterpret_cast<const char*>(bq + kPrefetchPairs * 32), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(bq + kPrefetchPairs * 32 + 16), _MM_HINT_T0);
      }
      bv[2 * q] = _mm512_loadu_ps(bq);
      bv[2 * q + 1] = _mm512_loadu_ps(bq + 16);
    }
    for (int r = 0; r < kRows; ++r) {
      const __m512 x = _mm512_set1_ps(a[r * p.lda + k]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
    }
  }
  StoreTile<kRows, kVecs>(p, acc);
}


// Fills the tables of one mode: rows[1..12] with one panel, wide[1..3] with
// four panels (8 to 24 accumulators). Small row counts prefetch the weights,
// which they stream from memory rather than reuse from cache.
template <bool kSplit, bool kF32, size_t... kRows>
KernelSet MakeSet(std::index_sequence<kRows...>) {
  KernelSet set;
  set.max_rows = kMaxRows;
  set.wide_panels = 4;
  set.wide_max_rows = 3;
  if constexpr (kF32) {
    ((set.rows[kRows + 1] = &F32Kernel<kRows + 1, 1, false, (kRows < 4)>), ...);
    set.wide[1] = &F32Kernel<1, 4, false, true>;
    set.wide[2] = &F32Kernel<2, 4, false, true>;
    set.wide[3] = &F32Kernel<3, 4, false, true>;
  } else {
    ((set.rows[kRows + 1] = &Bf16Kernel<kRows + 1, 1, kSplit, (kRows < 4)>), ...);
    set.wide[1] = &Bf16Kernel<1, 4, kSplit, true>;
    set.wide[2] = &Bf16Kernel<2, 4, kSplit, true>;
    set.wide[3] = &Bf16Kernel<3, 4, kSplit, true>;
  }
  return set;
}

}  // namespace

const KernelSet& Avx512Kernels(Mode mode) {
  static const KernelSet bf16 = MakeSet<false, false>(std::make_index_sequence<kMaxRows>());
  static const KernelSet split = MakeSet<true, false>(std::make_index_sequence<kMaxRows>());
  static const KernelSet f32 = MakeSet<false, true>(std::make_index_sequence<kMaxRows>());
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
