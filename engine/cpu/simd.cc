#include "engine/cpu/simd.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/cpu/simd_math.h"

namespace strata::engine::cpu {
namespace {

using simd_internal::Exp512;
using simd_internal::LaneMask;
using simd_internal::Sum512;

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

// Every element goes through the same instruction (masked tail), so its
// rounding does not depend on where a caller's range starts or ends.
STRATA_AVX512 void ConvertF32ToBf16_512(const float* src, uint16_t* dst, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = LaneMask(n - i);
    __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, src + i));
    _mm256_mask_storeu_epi16(dst + i, mask, (__m256i)v);
  }
}

STRATA_AVX512 void ConvertSplit512(const float* src, uint16_t* hi, uint16_t* lo, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = LaneMask(n - i);
    const __m512 x = _mm512_maskz_loadu_ps(mask, src + i);
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(x);
    const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    const __m256i l = (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(x, hf));
    _mm256_mask_storeu_epi16(hi + i, mask, h);
    _mm256_mask_storeu_epi16(lo + i, mask, l);
  }
}

STRATA_AVX512 void RmsNorm512(const float* x, const float* weight, int64_t n, float eps,
                              float* out) {
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(LaneMask(n - i), x + i);
    sum = _mm512_fmadd_ps(v, v, sum);
  }
  const float scale = 1.0f / std::sqrt(Sum512(sum) / static_cast<float>(n) + eps);
  const __m512 s = _mm512_set1_ps(scale);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = LaneMask(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), s);
    _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, weight + i), v));
  }
}

STRATA_AVX512 void SiluMul512(const float* gate, const float* up, int64_t n, float* out) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 mask = LaneMask(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(mask, gate + i);
    const __m512 e = Exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + i, mask, _mm512_mul_ps(silu, _mm512_maskz_loadu_ps(mask, up + i)));
  }
}

STRATA_AVX512 void RotateHalves512(float* v, const float* cos, const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; i += 16) {
    const __mmask16 mask = LaneMask(half - i);
    const __m512 a = _mm512_maskz_loadu_ps(mask, v + i);
    const __m512 b = _mm512_maskz_loadu_ps(mask, v + half + i);
    const __m512 c = _mm512_maskz_loadu_ps(mask, cos + i);
    const __m512 s = _mm512_maskz_loadu_ps(mask, sin + i);
    _mm512_mask_storeu_ps(v + i, mask, _mm512_sub_ps(_mm512_mul_ps(a, c), _mm512_mul_ps(b, s)));
    _mm512_mask_storeu_ps(v + half + i, mask,
                          _mm512_add_ps(_mm512_mul_ps(b, c), _mm512_mul_ps(a, s)));
  }
}

}  // namespace

void RotateHalves(float* v, const float* cos, const float* sin, int64_t half) {
  if (GetLevel() == Level::kAvx512) {
    RotateHalves512(v, cos, sin, half);
    return;
  }
  for (int64_t i = 0; i < half; ++i) {
    const float a = v[i], b = v[i + half];
    v[i] = a * cos[i] - b * sin[i];
    v[i + half] = b * cos[i] + a * sin[i];
  }
}

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
  if (GetLevel() == Level::kAvx512) {
    ConvertSplit512(src, hi, lo, n);
    return;
  }
  ConvertF32ToBf16(src, hi, n);
  for (int64_t i = 0; i < n; ++i) lo[i] = FloatToBf16(src[i] - Bf16ToFloat(hi[i]));
}

void RmsNormRow(const float* x, const float* weight, int64_t n, float eps, float* out) {
  if (GetLevel() == Level::kAvx512) {
    RmsNorm512(x, weight, n, eps, out);
    return;
  }
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float scale = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = weight[i] * (x[i] * scale);
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  if (GetLevel() == Level::kAvx512) {
    SiluMul512(gate, up, n, out);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

bool HasAvx512Bf16() { return GetLevel() == Level::kAvx512; }

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
