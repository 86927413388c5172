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

// out[i] = weight[i] * (x[i] / sqrt(mean(x^2) + eps)): RMSNorm of one row.
void RmsNormRow(const float* x, const float* weight, int64_t n, float eps, float* out);
// out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g).
void SiluMul(const float* gate, const float* up, int64_t n, float* out);

// Rotary embedding of one head: for i < half, (v[i], v[i + half]) becomes
// (v[i] cos[i] - v[i + half] sin[i], v[i + half] cos[i] + v[i] sin[i]).
void RotateHalves(float* v, const float* cos, const float* sin, int64_t half);

// Whether the AVX-512 (with AVX512-BF16) bodies are in use; engine/cpu files
// with their own AVX-512 kernels follow the same choice.
bool HasAvx512Bf16();

// Which body the dispatcher picked: "avx512bf16", "avx2" or "scalar".
const char* SimdLevelName();

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_SIMD_H_
