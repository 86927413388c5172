#include "engine/sampling/sampling_params.h"

#include <cmath>
#include <cstddef>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace strata::engine {
namespace {

// Every message starts with the field's name so clients can tell which one to fix.
absl::Status Invalid(absl::string_view field, absl::string_view requirement, auto got) {
  return absl::InvalidArgumentError(absl::StrCat(field, " ", requirement, ", got ", got));
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& params, int64_t vocab_size) {
  if (vocab_size <= 0) return Invalid("vocab_size", "must be positive", vocab_size);
  // Written as negated ranges so that NaN fails every check.
  if (!(std::isfinite(params.temperature) && params.temperature >= 0.0f)) {
    return Invalid("temperature", "must be finite and >= 0", params.temperature);
  }
  if (!(params.top_p > 0.0f && params.top_p <= 1.0f)) {
    return Invalid("top_p", "must be in (0, 1]", params.top_p);
  }
  if (params.top_k < 0 || params.top_k > vocab_size) {
    return Invalid("top_k", absl::StrCat("must be in [0, ", vocab_size, "]"), params.top_k);
  }
  if (!(params.min_p >= 0.0f && params.min_p <= 1.0f)) {
    return Invalid("min_p", "must be in [0, 1]", params.min_p);
  }
  if (!(std::isfinite(params.repetition_penalty) && params.repetition_penalty > 0.0f)) {
    return Invalid("repetition_penalty", "must be finite and > 0", params.repetition_penalty);
  }
  if (!(params.presence_penalty >= -2.0f && params.presence_penalty <= 2.0f)) {
    return Invalid("presence_penalty", "must be in [-2, 2]", params.presence_penalty);
  }
  if (!(params.frequency_penalty >= -2.0f && params.frequency_penalty <= 2.0f)) {
    return Invalid("frequency_penalty", "must be in [-2, 2]", params.frequency_penalty);
  }
  if (params.max_tokens < 1) return Invalid("max_tokens", "must be >= 1", params.max_tokens);
  if (params.top_logprobs < 0 || params.top_logprobs > kMaxTopLogprobs) {
    return Invalid("top_logprobs", absl::StrCat("must be in [0, ", kMaxTopLogprobs, "]"),
                   params.top_logprobs);
  }
  for (TokenId id : params.stop_token_ids) {
    if (id < 0 || id >= vocab_size) {
      return Invalid("stop_token_ids", absl::StrCat("must be in [0, ", vocab_size, ")"), id);
    }
  }
  for (size_t i = 0; i < params.stop_strings.size(); ++i) {
    if (params.stop_strings[i].empty()) {
      return Invalid("stop_strings", "must not contain an empty string", absl::StrCat("[", i, "]"));
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::engine
