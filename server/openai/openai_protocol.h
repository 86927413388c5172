// The OpenAI API's JSON, translated to and from what the gRPC service
// speaks: a request body becomes a strata.v1.GenerateRequest (so that both
// front ends share request_conversion's checks, tenant salts and limits),
// and the engine's results become OpenAI completion objects, stream chunks
// and error bodies. No I/O; pure functions, thread-safe.
#ifndef STRATA_SERVER_OPENAI_OPENAI_PROTOCOL_H_
#define STRATA_SERVER_OPENAI_OPENAI_PROTOCOL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "scheduler/request.h"
#include "strata/v1/strata.pb.h"

namespace strata::server::openai {

enum class Endpoint { kCompletions, kChatCompletions };

// A parsed request body.
struct ParsedRequest {
  v1::GenerateRequest request;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// A request error with the body's "param" (the offending field) when known.
struct ApiError {
  int http_status = 400;
  std::string type;  // "invalid_request_error", "authentication_error", "server_error", ...
  std::string message;
  std::string param;  // "" -> null
  std::string code;   // "" -> null
};

// The request of /v1/completions or /v1/chat/completions. `served_model` is
// the only accepted "model" (any other: 404 model_not_found); `session_id`
// comes from the x-session-id header (a body "session_id" wins). Fields the
// server cannot honour (n > 1, echo, best_of, logprobs, tools, suffix) are a
// 400 naming them; unknown fields are ignored, as OpenAI clients send many.
absl::StatusOr<ParsedRequest> ParseRequest(Endpoint endpoint, std::string_view body,
                                           std::string_view served_model,
                                           std::string_view session_id, ApiError* error);

// The error an absl::Status maps to: INVALID_ARGUMENT and FAILED_PRECONDITION
// 400, UNAUTHENTICATED 401, NOT_FOUND 404, RESOURCE_EXHAUSTED 429,
// UNAVAILABLE 503, DEADLINE_EXCEEDED 504, others 500. A message that names a
// proto field ("sampling.temperature: ...", "text: ...") gets the OpenAI
// parameter as `param`.
ApiError ErrorFromStatus(const absl::Status& status, Endpoint endpoint);

// JSON text; invalid UTF-8 in strings becomes U+FFFD instead of failing.
std::string Serialize(const nlohmann::json& body);

// {"error": {"message", "type", "param", "code"}}.
nlohmann::json ErrorBody(const ApiError& error);

// What a finished request produced.
struct Completion {
  std::string id;  // "cmpl-N" or "chatcmpl-N"
  int64_t created = 0;
  std::string model;
  std::string text;
  std::string finish_reason;  // "stop" or "length"
  scheduler::PromptUsage usage;
  int64_t completion_tokens = 0;
};

// The engine's finish reason as OpenAI names it: "length" for kLength,
// "stop" for the rest (stop, abort, prefilled).
std::string OpenAiFinishReason(scheduler::FinishReason reason);

// The non-streaming response object.
nlohmann::json CompletionBody(Endpoint endpoint, const Completion& completion);
// One stream chunk. `text` is the new text; `finish_reason` "" -> null;
// `first` adds the assistant role to a chat delta.
nlohmann::json ChunkBody(Endpoint endpoint, const Completion& head, std::string_view text,
                         std::string_view finish_reason, bool first);
// The final usage-only chunk of stream_options.include_usage.
nlohmann::json UsageChunkBody(Endpoint endpoint, const Completion& completion);
// {"prompt_tokens", "completion_tokens", "total_tokens",
//  "prompt_tokens_details": {"cached_tokens"}}.
nlohmann::json UsageBody(const Completion& completion);

// GET /v1/models.
nlohmann::json ModelsBody(std::string_view model, int64_t created);

}  // namespace strata::server::openai

#endif  // STRATA_SERVER_OPENAI_OPENAI_PROTOCOL_H_
