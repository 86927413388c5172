// Conversion between the wire (strata.v1 messages) and the engine's plain
// values (scheduler::Request, TokenEvent, EngineSnapshot). Every check of a
// request's content lives here, so that each bad input fails at once with
// INVALID_ARGUMENT and a message that starts with the proto field's path
// ("input: ...", "token_ids[3]: ...", "chunks[1].text: ...",
// "sampling.temperature: ...").
//
// Pure functions; thread-safe as far as the borrowed tokenizer is (it is).
#ifndef STRATA_SERVER_GRPC_REQUEST_CONVERSION_H_
#define STRATA_SERVER_GRPC_REQUEST_CONVERSION_H_

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/sampling/sampling_params.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/engine_service.h"
#include "scheduler/request.h"
#include "server/grpc/auth.h"
#include "server/grpc/blend_conversion.h"
#include "strata/v1/strata.pb.h"

namespace strata::server {

// What conversion checks requests against. Pointees are borrowed.
struct ConversionContext {
  const engine::Tokenizer* tokenizer = nullptr;
  int64_t vocab_size = 0;
  // Longest prompt accepted (> 0; the caller resolves "0 = context - 1").
  int64_t max_prompt_tokens = 0;
  // Most bytes of text one request may carry, all text fields together,
  // checked before any tokenizing so that an oversized prompt costs no
  // tokenizer time. 0: no byte limit (the token limit still applies, and
  // tokenizing stops at the first chunk past it).
  int64_t max_prompt_bytes = 0;
  int32_t default_max_tokens = 16;
  // The configured shared public prefix, tokenized once; empty: none.
  std::vector<engine::TokenId> shared_prefix_ids;
  // CacheBlend defaults for `chunks` inputs (scheduler.blend.*).
  BlendDefaults blend;
  // The model's chat template for `messages` input; null: the model has none
  // (such requests get FAILED_PRECONDITION).
  const engine::ChatTemplate* chat_template = nullptr;
};

// The prompt of a Generate/Complete request or of a prefetch: text
// (tokenized, special tokens per add_special_tokens, default true), token ids
// (checked against the vocabulary) or chunks (concatenated in order; only the
// first chunk gets the special tokens) or chat messages (rendered by the chat
// template, then tokenized without adding special tokens). INVALID_ARGUMENT
// naming the field for a missing or empty input, an id outside the
// vocabulary, text that is not UTF-8, an empty chunk, a conversation the
// template rejects ("messages: <its message>"), text over max_prompt_bytes,
// or a prompt over max_prompt_tokens; FAILED_PRECONDITION "messages: ..."
// when the model has no chat template.
absl::StatusOr<std::vector<engine::TokenId>> PromptFromRequest(const v1::GenerateRequest& request,
                                                               const ConversionContext& context);
absl::StatusOr<std::vector<engine::TokenId>> PromptFromPrefetch(const v1::Prefetch& prefetch,
                                                                const ConversionContext& context);

// Sampling parameters with the server's defaults for unset fields, checked
// by engine::ValidateSamplingParams; INVALID_ARGUMENT "sampling.<field>: ...".
absl::StatusOr<engine::SamplingParams> SamplingFromProto(const v1::SamplingParams& sampling,
                                                         const ConversionContext& context);

// The whole engine request of a Generate/Complete call: prompt (a chunks
// input with blending on keeps its chunk spans: blend_conversion.h), sampling,
// affinity and priority from the message, the cache salt from `tenant`
// (never from the body), and the public-prefix length when the prompt starts
// with the shared prefix. The deadline is the caller's to set.
absl::StatusOr<scheduler::Request> RequestFromProto(const v1::GenerateRequest& request,
                                                    const ConversionContext& context,
                                                    const Tenant& tenant);

// The engine request of a CacheControl prefetch (kind kPrefill): a chunks
// input with blending on (Prefetch.blend, else scheduler.blend.enable)
// caches each chunk on its own.
absl::StatusOr<scheduler::Request> PrefetchRequestFromProto(const v1::Prefetch& prefetch,
                                                            const ConversionContext& context,
                                                            const Tenant& tenant);

// The length of the shared prefix `prompt` starts with, or 0.
int64_t SharedPrefixLength(absl::Span<const engine::TokenId> prompt,
                           absl::Span<const engine::TokenId> shared_prefix);

// Appends the event's token (with its logprobs when asked for) to `tokens`;
// nothing for an event without a token.
void AppendToken(const scheduler::TokenEvent& event, const engine::SamplingParams& sampling,
                 const engine::Tokenizer& tokenizer,
                 google::protobuf::RepeatedPtrField<v1::GeneratedToken>* tokens);

// kStop, kLength, kAbort -> their proto enum; the rest (kPrefilled, and
// kDeadline and kError, which end the call with a status) UNSPECIFIED.
v1::FinishReason FinishReasonToProto(scheduler::FinishReason reason);

// The status a finished event ends its call with: OK for stop, length,
// abort and prefilled; DEADLINE_EXCEEDED for deadline; the event's error
// (INTERNAL if it carries none) for error.
absl::Status StatusOfFinishedEvent(const scheduler::TokenEvent& event);

// Usage from the engine's prompt accounting and the server's timings (ttft < 0:
// no token was produced, reported as 0).
void FillUsage(const scheduler::PromptUsage& prompt, int64_t generated_tokens, double ttft_s,
               double total_s, v1::Usage* usage);

// The cache statistics of CacheControl.
void FillCacheStats(const scheduler::EngineSnapshot& snapshot, int64_t block_size,
                    v1::CacheStats* stats);

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_REQUEST_CONVERSION_H_
