// Helpers for the CUDA backend tests (tests/engine/cuda, label "gpu"): the
// CUDA backend and its CPU reference side by side, random-weight configs
// with head_dim 64 and 128, and the comparisons the issue asks for: logits
// within bf16 tolerance and greedy tokens equal wherever the CPU's margin
// between its best two tokens exceeds 0.05.
#ifndef STRATA_TESTS_ENGINE_CUDA_CUDA_TEST_UTIL_H_
#define STRATA_TESTS_ENGINE_CUDA_CUDA_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/random_weights.h"
#include "engine/cuda/cuda_backend.h"
#include "engine/model_weights.h"
#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace strata::engine::cuda::testing {

using cpu::testing::Blocks;
using cpu::testing::FixtureDir;
using cpu::testing::RunChunked;
using cpu::testing::Span;

inline std::unique_ptr<CudaBackend> MakeCudaBackend(const LoadedModel& model,
                                                    BackendOptions options = {},
                                                    CudaBackendOptions cuda_options = {}) {
  if (options.num_kv_blocks == 0) options.num_kv_blocks = 512;
  auto backend = CudaBackend::Create(model, options, cuda_options);
  EXPECT_TRUE(backend.ok()) << backend.status();
  return backend.ok() ? *std::move(backend) : nullptr;
}

inline std::unique_ptr<cpu::CpuBackend> MakeCpuBackend(const LoadedModel& model,
                                                       BackendOptions options = {}) {
  if (options.num_kv_blocks == 0) options.num_kv_blocks = 512;
  return cpu::testing::MakeBackend(model, options);
}

// A Llama-shaped config with random weights, GQA 8:2; head_dim 128 also
// has llama3 rope scaling.
inline ModelConfig RandomConfig(int64_t head_dim) {
  ModelConfig c;
  c.vocab_size = 1000;
  c.num_layers = 2;
  c.head_dim = head_dim;
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.hidden_size = 512;
  c.intermediate_size = 1024;
  c.max_position_embeddings = 4096;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = head_dim == 64 ? 10000.0 : 500000.0;
  if (head_dim == 128) {
    c.rope_scaling.type = RopeType::kLlama3;
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position_embeddings = 1024;
  }
  return c;
}

inline std::vector<TokenId> Prompt(size_t n, int64_t vocab, uint32_t seed) {
  std::vector<TokenId> ids(n);
  for (size_t i = 0; i < n; ++i) {
    ids[i] = static_cast<TokenId>((seed * 7919u + i * 104729u + i * i * 31u) % vocab);
  }
  return ids;
}

struct LogitsComparison {
  float max_abs_diff = 0;
  double relative_error = 0;  // ||gpu - cpu|| / ||cpu||
  int confident_rows = 0;     // rows whose CPU margin exceeds 0.05
  int argmax_mismatches = 0;  // among those
};

inline LogitsComparison CompareLogits(const std::vector<float>& gpu, const std::vector<float>& cpu,
                                      int64_t vocab) {
  LogitsComparison out;
  EXPECT_EQ(gpu.size(), cpu.size());
  if (gpu.size() != cpu.size() || cpu.empty()) {
    out.max_abs_diff = INFINITY;
    out.relative_error = INFINITY;
    return out;
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double d = static_cast<double>(gpu[i]) - cpu[i];
    if (std::isnan(d)) {
      out.max_abs_diff = INFINITY;
      out.relative_error = INFINITY;
      return out;
    }
    out.max_abs_diff = std::max(out.max_abs_diff, static_cast<float>(std::fabs(d)));
    num += d * d;
    den += static_cast<double>(cpu[i]) * cpu[i];
  }
  out.relative_error = std::sqrt(num / std::max(den, 1e-30));
  for (size_t r = 0; r * vocab < cpu.size(); ++r) {
    const float* c = cpu.data() + r * vocab;
    const float* g = gpu.data() + r * vocab;
    const int64_t best = std::max_element(c, c + vocab) - c;
    float second = -INFINITY;
    for (int64_t i = 0; i < vocab; ++i) {
      if (i != best) second = std::max(second, c[i]);
    }
    if (c[best] - second <= 0.05f) continue;
    ++out.confident_rows;
    if (std::max_element(g, g + vocab) - g != best) ++out.argmax_mismatches;
  }
  return out;
}

// The bound both logits comparisons are held to: bf16 GEMM inputs (like
// the CPU's kBf16 precision, ~1e-2 of the logits) plus bf16 Q and P in the
// prefill tensor cores.
inline constexpr double kLogitsRelativeTolerance = 2.5e-2;

inline void ExpectClose(const std::vector<float>& gpu, const std::vector<float>& cpu, int64_t vocab,
                        const std::string& what) {
  const LogitsComparison c = CompareLogits(gpu, cpu, vocab);
  EXPECT_LT(c.relative_error, kLogitsRelativeTolerance) << what;
  EXPECT_EQ(c.argmax_mismatches, 0) << what << ": " << c.confident_rows << " confident rows";
  std::printf("%s: max abs diff %.3g, relative %.3g, %d confident rows\n", what.c_str(),
              c.max_abs_diff, c.relative_error, c.confident_rows);
}

}  // namespace strata::engine::cuda::testing

#endif  // STRATA_TESTS_ENGINE_CUDA_CUDA_TEST_UTIL_H_
