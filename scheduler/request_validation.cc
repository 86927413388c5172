#include "scheduler/request_validation.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/sampling/sampling_params.h"

namespace strata::scheduler {

absl::Status ValidateRequest(const Request& request, const RequestLimits& limits) {
  if (request.prompt_ids.empty()) return absl::InvalidArgumentError("prompt is empty");
  for (size_t i = 0; i < request.prompt_ids.size(); ++i) {
    const TokenId id = request.prompt_ids[i];
    if (id < 0 || id >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat("prompt token id ", id, " at position ", i,
                                                     " is outside the vocabulary [0, ",
                                                     limits.vocab_size, ")"));
    }
  }
  const int64_t prompt_len = static_cast<int64_t>(request.prompt_ids.size());
  if (limits.max_prompt_tokens > 0 && prompt_len > limits.max_prompt_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", prompt_len,
                                                   " tokens exceeds max_prompt_tokens (",
                                                   limits.max_prompt_tokens, ")"));
  }
  if (prompt_len >= limits.max_model_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt of ", prompt_len,
                     " tokens leaves no room to generate within the model's context of ",
                     limits.max_model_len, " tokens"));
  }
  // The prompt and its first sampled token must fit at once: no preemption
  // can make room for a sequence larger than the whole arena.
  const int64_t blocks_needed = prompt_len / std::max<int64_t>(limits.block_size, 1) + 1;
  if (blocks_needed > limits.num_device_blocks) {
    return absl::ResourceExhaustedError(absl::StrCat("prompt of ", prompt_len, " tokens needs ",
                                                     blocks_needed, " KV blocks; the cache holds ",
                                                     limits.num_device_blocks));
  }
  if (absl::Status valid = engine::ValidateSamplingParams(request.sampling, limits.vocab_size);
      !valid.ok()) {
    // The sampling validator names the field alone; say which message holds it.
    return absl::Status(valid.code(), absl::StrCat("sampling.", std::string(valid.message())));
  }
  return absl::OkStatus();
}

}  // namespace strata::scheduler
