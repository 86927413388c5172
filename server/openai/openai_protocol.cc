#include "server/openai/openai_protocol.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"

namespace strata::server::openai {
namespace {

using nlohmann::json;

absl::Status Fail(ApiError* error, std::string param, std::string message, int status = 400,
                  std::string code = "") {
  *error = ApiError{.http_status = status,
                    .type = "invalid_request_error",
                    .message = std::move(message),
                    .param = std::move(param),
                    .code = std::move(code)};
  return absl::InvalidArgumentError(error->message);
}

// `obj[key]` is the boolean true (no accessor that throws on a wrong type).
bool IsTrue(const json& obj, const char* key) {
  return obj.is_object() && obj.contains(key) && obj[key].is_boolean() && obj[key].get<bool>();
}

// Reads the optional numeric field `name` into `set`; a 400 naming it when
// it is present but not a number (null counts as absent, as in OpenAI's API).
template <typename Setter>
absl::Status Number(const json& body, const char* name, bool integer, ApiError* error, Setter set) {
  if (!body.contains(name) || body[name].is_null()) return absl::OkStatus();
  const json& value = body[name];
  if (!value.is_number() || (integer && !value.is_number_integer())) {
    return Fail(error, name,
                absl::StrCat(name, ": expected ", integer ? "an integer" : "a number", ", got ",
                             Serialize(value)));
  }
  set(value);
  return absl::OkStatus();
}

absl::Status Sampling(const json& body, v1::SamplingParams& s, ApiError* error) {
  struct FloatField {
    const char* name;
    void (v1::SamplingParams::*set)(float);
  };
  for (const FloatField& f :
       {FloatField{"temperature", &v1::SamplingParams::set_temperature},
        FloatField{"top_p", &v1::SamplingParams::set_top_p},
        FloatField{"min_p", &v1::SamplingParams::set_min_p},
        FloatField{"presence_penalty", &v1::SamplingParams::set_presence_penalty},
        FloatField{"frequency_penalty", &v1::SamplingParams::set_frequency_penalty},
        FloatField{"repetition_penalty", &v1::SamplingParams::set_repetition_penalty}}) {
    absl::Status read =
        Number(body, f.name, false, error, [&](const json& v) { (s.*f.set)(v.get<float>()); });
    if (!read.ok()) return read;
  }
  absl::Status read =
      Number(body, "top_k", true, error, [&](const json& v) { s.set_top_k(v.get<int32_t>()); });
  if (read.ok()) {
    read = Number(body, "seed", true, error,
                  [&](const json& v) { s.set_seed(static_cast<uint64_t>(v.get<int64_t>())); });
  }
  // Chat's newer name wins over max_tokens.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (!read.ok()) return read;
    read = Number(body, name, true, error, [&](const json& v) {
      const int64_t n = v.get<int64_t>();
      s.set_max_tokens(n > INT32_MAX   ? INT32_MAX
                       : n < INT32_MIN ? INT32_MIN
                                       : static_cast<int32_t>(n));
    });
  }
  if (!read.ok()) return read;
  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& stop = body["stop"];
    if (stop.is_string()) {
      s.add_stop(stop.get<std::string>());
    } else if (stop.is_array()) {
      for (const json& item : stop) {
        if (!item.is_string())
          return Fail(error, "stop", "stop: expected a string or a list of strings");
        s.add_stop(item.get<std::string>());
      }
    } else {
      return Fail(error, "stop", "stop: expected a string or a list of strings");
    }
  }
  if (body.contains("ignore_eos") && body["ignore_eos"].is_boolean()) {
    s.set_ignore_eos(body["ignore_eos"].get<bool>());
  }
  return absl::OkStatus();
}

// Options the server cannot honour: refused by name rather than ignored.
absl::Status Unsupported(const json& body, Endpoint endpoint, ApiError* error) {
  if (body.contains("n") && !body["n"].is_null() && body["n"] != 1) {
    return Fail(error, "n", "n: only 1 choice per request is supported");
  }
  if (body.contains("best_of") && !body["best_of"].is_null() && body["best_of"] != 1) {
    return Fail(error, "best_of", "best_of: only 1 is supported");
  }
  if (body.contains("echo") && body["echo"] != false && !body["echo"].is_null()) {
    return Fail(error, "echo", "echo: not supported");
  }
  const json logprobs = body.contains("logprobs") ? body["logprobs"] : json();
  if (!logprobs.is_null() && logprobs != false) {
    return Fail(error, "logprobs", "logprobs: not supported by this endpoint");
  }
  for (const char* name : {"tools", "functions", "suffix"}) {
    if (body.contains(name) && !body[name].is_null() &&
        !(body[name].is_array() && body[name].empty())) {
      return Fail(error, name, absl::StrCat(name, ": not supported"));
    }
  }
  if (endpoint == Endpoint::kChatCompletions && body.contains("response_format")) {
    const json& format = body["response_format"];
    if (!format.is_object() || (format.contains("type") && format["type"] != "text")) {
      return Fail(error, "response_format",
                  "response_format: only {\"type\": \"text\"} is supported");
    }
  }
  return absl::OkStatus();
}

// A message's content: a string, or a list of parts of which only text
// parts are supported.
absl::StatusOr<std::string> MessageContent(const json& content, const std::string& param,
                                           ApiError* error) {
  if (content.is_string()) return content.get<std::string>();
  if (content.is_null()) return std::string();
  if (!content.is_array()) {
    return Fail(error, param, absl::StrCat(param, ": expected a string or a list of parts"));
  }
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
        !part.contains("text") || !part["text"].is_string()) {
      return Fail(error, param,
                  absl::StrCat(param, "[", i,
                               "]: only {\"type\": \"text\", \"text\": ...} parts are supported"));
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

absl::Status ChatInput(const json& body, v1::GenerateRequest& request, ApiError* error) {
  if (!body.contains("messages")) return Fail(error, "messages", "messages: is required");
  const json& messages = body["messages"];
  if (!messages.is_array()) return Fail(error, "messages", "messages: expected a list");
  if (messages.empty()) return Fail(error, "messages", "messages: is empty");
  v1::ChatMessages* chat = request.mutable_messages();
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string param = absl::StrCat("messages[", i, "]");
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return Fail(error, param, absl::StrCat(param, ": expected an object with a string role"));
    }
    absl::StatusOr<std::string> content =
        MessageContent(m.contains("content") ? m["content"] : json(), param + ".content", error);
    if (!content.ok()) return content.status();
    v1::ChatMessage* out = chat->add_messages();
    out->set_role(m["role"].get<std::string>());
    out->set_content(*std::move(content));
  }
  return absl::OkStatus();
}

absl::Status CompletionInput(const json& body, v1::GenerateRequest& request, ApiError* error) {
  if (!body.contains("prompt")) return Fail(error, "prompt", "prompt: is required");
  json prompt = body["prompt"];
  // A batch of one is the same as its element.
  if (prompt.is_array() && prompt.size() == 1 && (prompt[0].is_string() || prompt[0].is_array())) {
    prompt = json(prompt[0]);
  }
  if (prompt.is_string()) {
    request.set_text(prompt.get<std::string>());
    return absl::OkStatus();
  }
  if (prompt.is_array() && !prompt.empty() && prompt[0].is_number_integer()) {
    for (const json& id : prompt) {
      if (!id.is_number_integer())
        return Fail(error, "prompt", "prompt: token ids must be integers");
      request.mutable_token_ids()->add_ids(id.get<int32_t>());
    }
    // Token ids are the prompt as given: no BOS added.
    return absl::OkStatus();
  }
  return Fail(error, "prompt",
              "prompt: expected a string or a list of token ids (one prompt per request)");
}

}  // namespace

absl::StatusOr<ParsedRequest> ParseRequest(Endpoint endpoint, std::string_view body,
                                           std::string_view served_model,
                                           std::string_view session_id, ApiError* error) {
  const json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return Fail(error, "", "the request body is not valid JSON");
  if (!parsed.is_object()) return Fail(error, "", "the request body must be a JSON object");
  if (!parsed.contains("model") || !parsed["model"].is_string()) {
    return Fail(error, "model", "model: is required (a string)");
  }
  const std::string model = parsed["model"].get<std::string>();
  if (model != served_model) {
    return Fail(error, "model",
                absl::StrCat("The model `", model, "` does not exist; this server serves `",
                             std::string(served_model), "`"),
                404, "model_not_found");
  }
  if (absl::Status s = Unsupported(parsed, endpoint, error); !s.ok()) return s;
  ParsedRequest out;
  absl::Status input = endpoint == Endpoint::kChatCompletions
                           ? ChatInput(parsed, out.request, error)
                           : CompletionInput(parsed, out.request, error);
  if (!input.ok()) return input;
  if (absl::Status s = Sampling(parsed, *out.request.mutable_sampling(), error); !s.ok()) return s;
  const json stream = parsed.contains("stream") ? parsed["stream"] : json(false);
  if (!stream.is_boolean() && !stream.is_null())
    return Fail(error, "stream", "stream: expected a boolean");
  out.stream = stream.is_boolean() && stream.get<bool>();
  if (parsed.contains("stream_options")) {
    out.include_usage = IsTrue(parsed["stream_options"], "include_usage");
  }
  out.request.set_session_id(std::string(session_id));
  if (parsed.contains("session_id") && parsed["session_id"].is_string()) {
    out.request.set_session_id(parsed["session_id"].get<std::string>());
  }
  if (parsed.contains("priority") && parsed["priority"].is_number_integer()) {
    out.request.set_priority(parsed["priority"].get<int32_t>());
  }
  return out;
}

ApiError ErrorFromStatus(const absl::Status& status, Endpoint endpoint) {
  ApiError error{.message = std::string(status.message())};
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      error.http_status = 400;
      error.type = "invalid_request_error";
      break;
    case absl::StatusCode::kUnauthenticated:
      error.http_status = 401;
      error.type = "authentication_error";
      error.code = "invalid_api_key";
      break;
    case absl::StatusCode::kPermissionDenied:
      error.http_status = 403;
      error.type = "permission_error";
      break;
    case absl::StatusCode::kNotFound:
      error.http_status = 404;
      error.type = "invalid_request_error";
      break;
    case absl::StatusCode::kResourceExhausted:
      error.http_status = 429;
      error.type = "rate_limit_error";
      break;
    case absl::StatusCode::kUnavailable:
      error.http_status = 503;
      error.type = "server_error";
      break;
    case absl::StatusCode::kDeadlineExceeded:
      error.http_status = 504;
      error.type = "timeout_error";
      break;
    default:
      error.http_status = 500;
      error.type = "server_error";
      break;
  }
  // Conversion names proto fields; clients know OpenAI's.
  const std::string& message = error.message;
  const size_t colon = message.find(':');
  if (colon != std::string::npos && error.http_status == 400) {
    std::string field = message.substr(0, colon);
    if (field.starts_with("sampling.")) field = field.substr(9);
    if (field == "text" || field.starts_with("token_ids") || field == "input") {
      field = endpoint == Endpoint::kChatCompletions ? "messages" : "prompt";
    }
    if (field.find(' ') == std::string::npos) error.param = field;
  }
  return error;
}

std::string Serialize(const json& body) {
  // Text from the model may end mid-character; never let that throw.
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

json ErrorBody(const ApiError& error) {
  auto or_null = [](const std::string& s) { return s.empty() ? json(nullptr) : json(s); };
  return json{{"error",
               {{"message", error.message},
                {"type", error.type},
                {"param", or_null(error.param)},
                {"code", or_null(error.code)}}}};
}

std::string OpenAiFinishReason(scheduler::FinishReason reason) {
  return reason == scheduler::FinishReason::kLength ? "length" : "stop";
}

json UsageBody(const Completion& completion) {
  return json{{"prompt_tokens", completion.usage.prompt_tokens},
              {"completion_tokens", completion.completion_tokens},
              {"total_tokens", completion.usage.prompt_tokens + completion.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", completion.usage.cached_tokens()}}}};
}

json CompletionBody(Endpoint endpoint, const Completion& completion) {
  json choice{{"index", 0}, {"logprobs", nullptr}, {"finish_reason", completion.finish_reason}};
  if (endpoint == Endpoint::kChatCompletions) {
    choice["message"] = {{"role", "assistant"}, {"content", completion.text}};
  } else {
    choice["text"] = completion.text;
  }
  return json{
      {"id", completion.id},
      {"object", endpoint == Endpoint::kChatCompletions ? "chat.completion" : "text_completion"},
      {"created", completion.created},
      {"model", completion.model},
      {"choices", json::array({choice})},
      {"usage", UsageBody(completion)}};
}

json ChunkBody(Endpoint endpoint, const Completion& head, std::string_view text,
               std::string_view finish_reason, bool first) {
  json choice{
      {"index", 0},
      {"logprobs", nullptr},
      {"finish_reason", finish_reason.empty() ? json(nullptr) : json(std::string(finish_reason))}};
  if (endpoint == Endpoint::kChatCompletions) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || (first && finish_reason.empty())) delta["content"] = std::string(text);
    choice["delta"] = delta;
  } else {
    choice["text"] = std::string(text);
  }
  return json{{"id", head.id},
              {"object", endpoint == Endpoint::kChatCompletions ? "chat.completion.chunk"
                                                                : "text_completion"},
              {"created", head.created},
              {"model", head.model},
              {"choices", json::array({choice})}};
}

json UsageChunkBody(Endpoint endpoint, const Completion& completion) {
  return json{{"id", completion.id},
              {"object", endpoint == Endpoint::kChatCompletions ? "chat.completion.chunk"
                                                                : "text_completion"},
              {"created", completion.created},
              {"model", completion.model},
              {"choices", json::array()},
              {"usage", UsageBody(completion)}};
}

json ModelsBody(std::string_view model, int64_t created) {
  return json{{"object", "list"},
              {"data", json::array({json{{"id", std::string(model)},
                                         {"object", "model"},
                                         {"created", created},
                                         {"owned_by", "strata"}}})}};
}

}  // namespace strata::server::openai
