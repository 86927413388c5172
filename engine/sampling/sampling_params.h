// What a request asks of token selection and of stopping. Shared by the
// backends (which sample) and the scheduler (which stops sequences).
#ifndef STRATA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_
#define STRATA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace strata::engine {

using TokenId = int32_t;

struct SamplingParams {
  float temperature = 1.0f;         // 0 means greedy
  int32_t top_k = 0;                // 0 disables
  float top_p = 1.0f;               // 1 disables
  float min_p = 0.0f;               // 0 disables; relative to the top probability
  float repetition_penalty = 1.0f;  // 1 disables; over prompt and output tokens
  float presence_penalty = 0.0f;    // over output tokens
  float frequency_penalty = 0.0f;   // over output tokens
  std::optional<uint64_t> seed;     // reproducible output when set
  int32_t max_tokens = 16;
  std::vector<TokenId> stop_token_ids;  // in addition to the model's EOS
  std::vector<std::string> stop_strings;
  bool ignore_eos = false;
  int32_t top_logprobs = 0;     // how many alternatives to return (0: none)
  bool return_logprob = false;  // logprob of the chosen token
};

// The most alternatives a request may ask for, as in the OpenAI API.
inline constexpr int32_t kMaxTopLogprobs = 20;

// INVALID_ARGUMENT naming the field for out-of-range values (negative
// temperature, top_p outside (0, 1], top_k < 0, max_tokens < 1, ...).
// NaN and infinite floats are rejected too; stop token ids must lie in
// [0, vocab_size) and stop strings must be non-empty. Pure; thread-safe.
absl::Status ValidateSamplingParams(const SamplingParams& params, int64_t vocab_size);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_SAMPLING_SAMPLING_PARAMS_H_
