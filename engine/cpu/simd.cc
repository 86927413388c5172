#include "engine/cpu/simd.h"

// GCC 12's AVX-512 intrinsic headers initialise "undefined" vectors from
// themselves (__Y = __Y), which -Wuninitialized flags once inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace strata::engine::cpu {
namespace {

#define STRATA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

inline float Bf16ToFloat(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

inline uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

enum class Level { kScalar, kAvx2, kAvx512 };

Level DetectLevel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bf16")) {
    return Level::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Level::kAvx2;
  return Level::kScalar;
}

Level GetLevel() {
  static const Level level = DetectLevel();
  return level;
}

// --------------------------------------------------------------- AVX-512 ---

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

STRATA_AVX512 inline __m512 LoadBf16x16(const uint16_t* p) {
  __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

STRATA_AVX512 inline __m512 LoadBf16x16Masked(const uint16_t* p, __mmask16 mask) {
  __m256i raw = _mm256_maskz_loadu_epi16(mask, p);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

STRATA_AVX512 void ConvertF32ToBf16_512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), (__m256i)v);
  }
  for (; i < n; ++i) dst[i] = FloatToBf16(src[i]);
}

template <bool kBf16>
STRATA_AVX512 void Scores512(const float* q, const void* keys, int64_t count, int64_t d,
                             float scale, float* scores) {
  const int64_t full = d / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (d - full)) - 1);
  for (int64_t t = 0; t < count; ++t) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t i = 0; i < full; i += 16) {
      __m512 kv;
      if constexpr (kBf16) {
        kv = LoadBf16x16(static_cast<const uint16_t*>(keys) + t * d + i);
      } else {
        kv = _mm512_loadu_ps(static_cast<const float*>(keys) + t * d + i);
      }
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), kv, acc);
    }
    if (tail != 0) {
      __m512 kv;
      if constexpr (kBf16) {
        kv = LoadBf16x16Masked(static_cast<const uint16_t*>(keys) + t * d + full, tail);
      } else {
        kv = _mm512_maskz_loadu_ps(tail, static_cast<const float*>(keys) + t * d + full);
      }
      acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, q + full), kv, acc);
    }
    scores[t] = Sum512(acc) * scale;
  }
}

template <bool kBf16>
STRATA_AVX512 void Values512(const float* weights, const void* values, int64_t count, int64_t d,
                             float* out) {
  int64_t i = 0;
  for (; i < d; i += 16) {
    const int64_t left = d - i;
    const __mmask16 mask =
        left >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << left) - 1);
    __m512 acc = _mm512_maskz_loadu_ps(mask, out + i);
    for (int64_t t = 0; t < count; ++t) {
      __m512 vv;
      if constexpr (kBf16) {
        vv = LoadBf16x16Masked(static_cast<const uint16_t*>(values) + t * d + i, mask);
      } else {
        vv = _mm512_maskz_loadu_ps(mask, static_cast<const float*>(values) + t * d + i);
      }
      acc = _mm512_fmadd_ps(_mm512_set1_ps(weights[t]), vv, acc);
    }
    _mm512_mask_storeu_ps(out + i, mask, acc);
  }
}

}  // namespace

void ConvertF32ToBf16(const float* src, uint16_t* dst, int64_t n) {
  if (GetLevel() == Level::kAvx512) {
    ConvertF32ToBf16_512(src, dst, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = FloatToBf16(src[i]);
}

void ConvertBf16ToF32(const uint16_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = Bf16ToFloat(src[i]);
}

void ConvertF32ToBf16Split(const float* src, uint16_t* hi, uint16_t* lo, int64_t n) {
  ConvertF32ToBf16(src, hi, n);
  for (int64_t i = 0; i < n; ++i) lo[i] = FloatToBf16(src[i] - Bf16ToFloat(hi[i]));
}

void AttentionScoresBf16(const float* q, const uint16_t* keys, int64_t count, int64_t d,
                         float scale, float* scores) {
  if (GetLevel() == Level::kAvx512) {
    Scores512<true>(q, keys, count, d, scale, scores);
    return;
  }
  for (int64_t t = 0; t < count; ++t) {
    float acc = 0.0f;
    for (int64_t i = 0; i < d; ++i) acc += q[i] * Bf16ToFloat(keys[t * d + i]);
    scores[t] = acc * scale;
  }
}

void AttentionScoresF32(const float* q, const float* keys, int64_t count, int64_t d, float scale,
                        float* scores) {
  if (GetLevel() == Level::kAvx512) {
    Scores512<false>(q, keys, count, d, scale, scores);
    return;
  }
  for (int64_t t = 0; t < count; ++t) {
    float acc = 0.0f;
    for (int64_t i = 0; i < d; ++i) acc += q[i] * keys[t * d + i];
    scores[t] = acc * scale;
  }
}

void AttentionValuesBf16(const float* weights, const uint16_t* values, int64_t count, int64_t d,
                         float* out) {
  if (GetLevel() == Level::kAvx512) {
    Values512<true>(weights, values, count, d, out);
    return;
  }
  for (int64_t t = 0; t < count; ++t)
    for (int64_t i = 0; i < d; ++i) out[i] += weights[t] * Bf16ToFloat(values[t * d + i]);
}

void AttentionValuesF32(const float* weights, const float* values, int64_t count, int64_t d,
                        float* out) {
  if (GetLevel() == Level::kAvx512) {
    Values512<false>(weights, values, count, d, out);
    return;
  }
  for (int64_t t = 0; t < count; ++t)
    for (int64_t i = 0; i < d; ++i) out[i] += weights[t] * values[t * d + i];
}

const char* SimdLevelName() {
  switch (GetLevel()) {
    case Level::kAvx512:
      return "avx512bf16";
    case Level::kAvx2:
      return "avx2";
    case Level::kScalar:
      return "scalar";
  }
  return "?";
}

}  // namespace strata::engine::cpu
