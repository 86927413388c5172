// Checks a request against the model's limits without touching any queue:
// the rules of the admission gate (scheduler/admission_gate.h).
// Pure; thread-safe.
#ifndef STRATA_SCHEDULER_REQUEST_VALIDATION_H_
#define STRATA_SCHEDULER_REQUEST_VALIDATION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "scheduler/request.h"

namespace strata::scheduler {

struct RequestLimits {
  int64_t vocab_size = 0;
  int64_t max_model_len = 0;      // prompt + output, the model's context
  int64_t max_prompt_tokens = 0;  // 0: max_model_len - 1
  int64_t block_size = 16;
  int64_t num_device_blocks = 0;
  int64_t num_layers = 0;  // for blend check layers
};

// INVALID_ARGUMENT naming the field: an empty prompt, a token id outside
// [0, vocab_size), a prompt over max_prompt_tokens or leaving no room to
// generate within max_model_len, bad sampling values
// (engine::ValidateSamplingParams). RESOURCE_EXHAUSTED when the prompt alone
// needs more KV blocks than the device holds. With `blend`: INVALID_ARGUMENT
// "chunks[i]: ..." for a span that is empty, out of order or outside the
// prompt, "blend.recompute_ratio: ..." outside [0, 1] and
// "blend.check_layers[i]: ..." for a layer not ascending in [0, num_layers);
// RESOURCE_EXHAUSTED when the prompt and its chunks' own blocks do not fit
// on the device together; INVALID_ARGUMENT for a negative
// public_prefix_tokens.
absl::Status ValidateRequest(const Request& request, const RequestLimits& limits);

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_REQUEST_VALIDATION_H_
