// Runtime-dispatched SIMD helpers of the CPU backend (the GEMM lives in
// gemm.h). Each entry point picks an AVX-512 (with AVX512-BF16) or scalar
// body once, at first use, from __builtin_cpu_supports; the bodies are
// compiled with target attributes so the rest of the binary stays baseline.
//
// bf16 values are passed as uint16_t bit patterns. Every function is pure,
// reentrant and thread-safe (callers split work across threads). Results of
// one output element never depend on how callers split the work or on how
// many rows are processed together: accumulation order is fixed per element.
#ifndef STRATA_ENGINE_CPU_SIMD_H_
#define STRATA_ENGINE_CPU_SIMD_H_

#include <cstdint>

namespace strata::engine::cpu {

// fp32 -> bf16, round to nearest even (NaN stays NaN).
void ConvertF32ToBf16(const float* src, uint16_t* dst, int64_t n);
// hi = bf16(src), lo = bf16(src - hi): hi + lo carries ~16 mantissa bits.
void ConvertF32ToBf16Split(const float* src, uint16_t* hi, uint16_t* lo, int64_t n);
void ConvertBf16ToF32(const uint16_t* src, float* dst, int64_t n);

// scores[t] = scale * dot(q, key_t) for t < count, where key_t = keys + t * d
// holds bf16 (KvBf16) or fp32 (KvF32) elements.
void AttentionScoresBf16(const float* q, const uint16_t* keys, int64_t count, int64_t d,
                         float scale, float* scores);
void AttentionScoresF32(const float* q, const float* keys, int64_t count, int64_t d,
                        float scale, float* scores);
// out[0..d) += sum_t weights[t] * value_t, in order t = 0, 1, ...
void AttentionValuesBf16(const float* weights, const uint16_t* values, int64_t count, int64_t d,
                         float* out);
void AttentionValuesF32(const float* weights, const float* values, int64_t count, int64_t d,
                        float* out);

// Which body the dispatcher picked: "avx512bf16", "avx2" or "scalar".
const char* SimdLevelName();

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_SIMD_H_
