// Internal to the CPU backend's .cc files: AVX-512 building blocks shared by
// simd.cc and attention.cc. Every function is lane-wise or reduces in a fixed
// tree, so a value's result never depends on its neighbours or on how a
// caller groups its work. Include only from files that compile these bodies
// under target attributes and call them after checking HasAvx512Bf16().
#ifndef STRATA_ENGINE_CPU_SIMD_MATH_H_
#define STRATA_ENGINE_CPU_SIMD_MATH_H_

// GCC 12's AVX-512 intrinsic headers initialise "undefined" vectors from
// themselves (__Y = __Y), which -Wuninitialized flags once inlined.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <cstdint>

#define STRATA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

namespace strata::engine::cpu::simd_internal {

// The first `left` lanes (all 16 when left >= 16).
STRATA_AVX512 inline __mmask16 LaneMask(int64_t left) {
  if (left >= 16) return static_cast<__mmask16>(0xffff);
  return left <= 0 ? static_cast<__mmask16>(0) : static_cast<__mmask16>((1u << left) - 1);
}

// Horizontal sum in a fixed order (GCC 12's _mm512_reduce_add_ps trips
// -Wuninitialized inside its own header).
STRATA_AVX512 inline float Sum512(__m512 v) {
  __m256 lo = _mm512_castps512_ps256(v);
  __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  __m256 s8 = _mm256_add_ps(lo, hi);
  __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}

STRATA_AVX512 inline __m512 LoadBf16Masked(const uint16_t* p, __mmask16 mask) {
  __m256i raw = _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

// e^x per lane, within ~2 ulp: x = n ln2 + r with |r| <= ln2 / 2, a degree-7
// Taylor polynomial in r, scaled by 2^n. Underflows to 0 below about -104,
// overflows to +inf above about 88.7.
STRATA_AVX512 inline __m512 Exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-104.0f));
  x = _mm512_min_ps(x, _mm512_set1_ps(100.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

}  // namespace strata::engine::cpu::simd_internal

#endif  // STRATA_ENGINE_CPU_SIMD_MATH_H_
