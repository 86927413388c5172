// Token sampling on the GPU, one thread block per sampled row, following
// engine/sampling/sampler.h step for step: penalties (repetition once per
// distinct prompt/output token, then frequency and presence over output
// counts), then temperature 0 -> argmax (ties to the lowest id, NaN never
// wins); otherwise temperature, top-k, top-p (the smallest best-first set
// reaching top_p of the mass, ties by lower id), min-p, and one inverse-CDF
// draw with the row's uniform. Logprobs come from the raw logits.
//
// The uniform is computed on the host (engine::PhiloxUniform(seed, number
// of outputs) for seeded requests), so a seeded request's draw is a pure
// function of (seed, step) as on the CPU. One difference remains: the CPU
// walks its surviving candidates in the order its selection left them,
// which is implementation-defined; the GPU walks them in token-id order. The
// two pick from the same distribution with the same uniform, but may pick
// different tokens for the same seed. Greedy results are identical.
//
// Launchers return the launch's cudaError_t. Thread-safe.
#ifndef STRATA_KERNELS_SAMPLING_H_
#define STRATA_KERNELS_SAMPLING_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace strata::kernels {

inline constexpr int kMaxSampledTopLogprobs = 20;

struct SampleRow {
  int32_t logits_row = 0;    // row of the logits matrix
  float temperature = 0.0f;  // not > 0: greedy
  int32_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  float min_p = 0.0f;        // 0: off
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  double uniform = 0.0;        // the draw, in [0, 1)
  int32_t history_offset = 0;  // first id of its history in SampleParams::history
  int32_t prompt_count = 0;    // history: prompt ids, then output ids
  int32_t output_count = 0;
  int32_t top_logprobs = 0;    // 0 .. kMaxSampledTopLogprobs
  int32_t return_logprob = 0;  // bool
};

struct SampleResult {
  int32_t token = 0;
  float logprob = 0.0f;
  int32_t top_ids[kMaxSampledTopLogprobs] = {};
  float top_logprobs[kMaxSampledTopLogprobs] = {};
};

struct SampleParams {
  const float* logits = nullptr;  // [*, vocab] fp32
  int vocab = 0;
  // A row's logits are logits row (SampleRow::logits_row - first_logits_row),
  // so rows numbered across a whole step can sample one chunk of it.
  int first_logits_row = 0;
  const SampleRow* rows = nullptr;  // [num_rows] device
  int num_rows = 0;
  const int32_t* history = nullptr;  // token ids the rows' histories index
  // Scratch, [num_rows, vocab] each: penalised logits and token counts.
  // Only rows with a penalty touch them; contents need no initialisation.
  float* work = nullptr;
  int32_t* counts = nullptr;
  SampleResult* results = nullptr;  // [num_rows] device
};

cudaError_t LaunchSample(const SampleParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_SAMPLING_H_
