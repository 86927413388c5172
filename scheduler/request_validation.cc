#include "scheduler/request_validation.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/kv_cache_spec.h"
#include "engine/sampling/sampling_params.h"

namespace strata::scheduler {
namespace {

absl::Status ValidateBlend(const Request& request, const RequestLimits& limits) {
  const BlendOptions& blend = *request.blend;
  if (!(blend.recompute_ratio >= 0.0f && blend.recompute_ratio <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat("blend.recompute_ratio: ", blend.recompute_ratio, " is outside [0, 1]"));
  }
  for (size_t i = 0; i < blend.check_layers.size(); ++i) {
    const int32_t layer = blend.check_layers[i];
    if (layer < 0 || layer >= limits.num_layers) {
      return absl::InvalidArgumentError(absl::StrCat("blend.check_layers[", i, "]: layer ", layer,
                                                     " is outside [0, ", limits.num_layers, ")"));
    }
    if (i > 0 && layer <= blend.check_layers[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("blend.check_layers[", i, "]: layers must be ascending"));
    }
  }
  if (request.chunks.empty()) return absl::InvalidArgumentError("chunks: blending needs chunks");
  if (request.chunk_context_tokens < 0 ||
      request.chunk_context_tokens > request.chunks.front().begin) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chunk_context_tokens: ", request.chunk_context_tokens,
        " is outside [0, the first chunk's start ", request.chunks.front().begin, "]"));
  }
  const auto prompt_len = static_cast<int64_t>(request.prompt_ids.size());
  int64_t previous_end = 0, chunk_blocks = 0;
  const int64_t block_size = std::max<int64_t>(limits.block_size, 1);
  for (size_t i = 0; i < request.chunks.size(); ++i) {
    const ChunkSpan& span = request.chunks[i];
    if (span.length <= 0 || span.begin < previous_end || span.begin + span.length > prompt_len) {
      return absl::InvalidArgumentError(absl::StrCat(
          "chunks[", i, "]: span [", span.begin, ", ", span.begin + span.length,
          ") is empty, out of order or outside the prompt of ", prompt_len, " tokens"));
    }
    previous_end = span.begin + span.length;
    chunk_blocks += BlocksFor(request.chunk_context_tokens + span.length, block_size);
  }
  // A blend step holds the chunks' own blocks while it writes the prompt's.
  const int64_t needed = prompt_len / block_size + 1 + chunk_blocks;
  if (needed > limits.num_device_blocks) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a blend of ", prompt_len, " tokens needs ", needed,
                     " KV blocks with its chunks; the cache holds ", limits.num_device_blocks));
  }
  return absl::OkStatus();
}

}  // namespace

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
  if (request.public_prefix_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("public_prefix_tokens is negative (", request.public_prefix_tokens, ")"));
  }
  if (request.blend) return ValidateBlend(request, limits);
  return absl::OkStatus();
}

}  // namespace strata::scheduler
