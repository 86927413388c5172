#include "server/openai/openai_protocol.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::server::openai {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

absl::StatusOr<ParsedRequest> Parse(Endpoint endpoint, const json& body, ApiError* error,
                                    const std::string& session = "") {
  return ParseRequest(endpoint, body.dump(), "m", session, error);
}

TEST(OpenAiProtocolTest, ChatBodyBecomesAGenerateRequest) {
  ApiError error;
  auto parsed = Parse(Endpoint::kChatCompletions,
                      {{"model", "m"},
                       {"messages",
                        {{{"role", "system"}, {"content", "Be terse."}},
                         {{"role", "user"},
                          {"content", json::array({{{"type", "text"}, {"text", "Hi "}},
                                                   {{"type", "text"}, {"text", "there"}}})}}}},
                       {"temperature", 0.5},
                       {"top_p", 0.9},
                       {"max_completion_tokens", 7},
                       {"seed", 3},
                       {"stop", "\n"},
                       {"stream", true},
                       {"stream_options", {{"include_usage", true}}},
                       {"user", "ignored"}},
                      &error, "sess-1");
  ASSERT_TRUE(parsed.ok()) << error.message;
  const v1::GenerateRequest& r = parsed->request;
  ASSERT_EQ(r.input_case(), v1::GenerateRequest::kMessages);
  ASSERT_EQ(r.messages().messages_size(), 2);
  EXPECT_EQ(r.messages().messages(1).role(), "user");
  EXPECT_EQ(r.messages().messages(1).content(), "Hi there");
  EXPECT_FLOAT_EQ(r.sampling().temperature(), 0.5f);
  EXPECT_FLOAT_EQ(r.sampling().top_p(), 0.9f);
  EXPECT_EQ(r.sampling().max_tokens(), 7);
  EXPECT_EQ(r.sampling().seed(), 3u);
  ASSERT_EQ(r.sampling().stop_size(), 1);
  EXPECT_EQ(r.sampling().stop(0), "\n");
  EXPECT_EQ(r.session_id(), "sess-1");
  EXPECT_TRUE(parsed->stream);
  EXPECT_TRUE(parsed->include_usage);
  EXPECT_FALSE(r.sampling().has_top_k());
}

TEST(OpenAiProtocolTest, CompletionPromptIsTextOrTokenIds) {
  ApiError error;
  auto text =
      Parse(Endpoint::kCompletions, {{"model", "m"}, {"prompt", json::array({"x y"})}}, &error);
  ASSERT_TRUE(text.ok()) << error.message;
  EXPECT_EQ(text->request.text(), "x y");
  EXPECT_FALSE(text->stream);
  auto ids = Parse(Endpoint::kCompletions, {{"model", "m"}, {"prompt", {5, 6, 7}}}, &error);
  ASSERT_TRUE(ids.ok()) << error.message;
  EXPECT_THAT(ids->request.token_ids().ids(), ::testing::ElementsAre(5, 6, 7));
}

TEST(OpenAiProtocolTest, BadBodiesNameTheParameter) {
  struct Case {
    Endpoint endpoint;
    json body;
    int status;
    std::string param;
  };
  const json chat = {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}};
  auto with = [](json body, const std::string& key, json value) {
    body[key] = std::move(value);
    return body;
  };
  const std::vector<Case> cases = {
      {Endpoint::kChatCompletions, with(chat, "model", "other"), 404, "model"},
      {Endpoint::kChatCompletions, json{{"messages", json::array()}}, 400, "model"},
      {Endpoint::kChatCompletions, with(chat, "messages", json::array()), 400, "messages"},
      {Endpoint::kChatCompletions, with(chat, "messages", "hi"), 400, "messages"},
      {Endpoint::kChatCompletions, with(chat, "n", 3), 400, "n"},
      {Endpoint::kChatCompletions, with(chat, "temperature", "hot"), 400, "temperature"},
      {Endpoint::kChatCompletions, with(chat, "max_tokens", 1.5), 400, "max_tokens"},
      {Endpoint::kChatCompletions, with(chat, "stop", 5), 400, "stop"},
      {Endpoint::kChatCompletions, with(chat, "tools", json::array({{{"type", "function"}}})), 400,
       "tools"},
      {Endpoint::kChatCompletions, with(chat, "logprobs", true), 400, "logprobs"},
      {Endpoint::kChatCompletions, with(chat, "stream", "yes"), 400, "stream"},
      {Endpoint::kChatCompletions,
       with(chat, "messages",
            json::array({{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}})),
       400, "messages[0].content"},
      {Endpoint::kCompletions, json{{"model", "m"}}, 400, "prompt"},
      {Endpoint::kCompletions, json{{"model", "m"}, {"prompt", {"a", "b"}}}, 400, "prompt"},
      {Endpoint::kCompletions, json{{"model", "m"}, {"prompt", "a"}, {"echo", true}}, 400, "echo"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.dump());
    ApiError error;
    auto parsed = Parse(c.endpoint, c.body, &error);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(error.http_status, c.status);
    EXPECT_EQ(error.param, c.param);
    EXPECT_FALSE(error.message.empty());
  }
  ApiError error;
  EXPECT_FALSE(ParseRequest(Endpoint::kCompletions, "{oops", "m", "", &error).ok());
  EXPECT_EQ(error.http_status, 400);
  EXPECT_THAT(error.message, HasSubstr("not valid JSON"));
}

// Wrongly typed fields are errors or ignored, never an exception that would
// take the server thread down.
TEST(OpenAiProtocolTest, WronglyTypedFieldsNeverThrow) {
  const std::vector<json> bodies = {
      {{"model", "m"}, {"prompt", "x"}, {"echo", "yes"}},
      {{"model", "m"}, {"prompt", "x"}, {"stream_options", {{"include_usage", "x"}}}},
      {{"model", "m"}, {"prompt", "x"}, {"stream_options", 3}},
      {{"model", "m"}, {"prompt", {1, 5000000000LL}}},
      {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", {{{"type", 5}}}}}}}},
      {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", 7}}}}},
      {{"model", "m"}, {"messages", {"just a string"}}},
      {{"model", "m"}, {"messages", {{{"role", "user"}, {"content", "x"}}}},
       {"response_format", {{"type", 1}}}},
      {{"model", 5}},
      json::array({1, 2}),
  };
  for (const json& body : bodies) {
    SCOPED_TRACE(body.dump());
    for (Endpoint endpoint : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
      ApiError error;
      absl::StatusOr<ParsedRequest> parsed;
      EXPECT_NO_THROW(parsed = Parse(endpoint, body, &error));
      if (!parsed.ok()) {
        EXPECT_FALSE(error.message.empty());
      }
    }
  }
  Completion broken{.text = std::string("caf\xC3")};
  EXPECT_NO_THROW(Serialize(CompletionBody(Endpoint::kCompletions, broken)));
}

TEST(OpenAiProtocolTest, StatusesMapToHttpAndParams) {
  ApiError e = ErrorFromStatus(absl::InvalidArgumentError("sampling.temperature: must be >= 0"),
                               Endpoint::kCompletions);
  EXPECT_EQ(e.http_status, 400);
  EXPECT_EQ(e.param, "temperature");
  EXPECT_EQ(
      ErrorFromStatus(absl::InvalidArgumentError("text: is empty"), Endpoint::kCompletions).param,
      "prompt");
  EXPECT_EQ(ErrorFromStatus(absl::FailedPreconditionError("messages: no chat template"),
                            Endpoint::kChatCompletions)
                .param,
            "messages");
  EXPECT_EQ(ErrorFromStatus(absl::UnauthenticatedError("x"), Endpoint::kCompletions).http_status,
            401);
  EXPECT_EQ(ErrorFromStatus(absl::ResourceExhaustedError("x"), Endpoint::kCompletions).http_status,
            429);
  EXPECT_EQ(ErrorFromStatus(absl::UnavailableError("x"), Endpoint::kCompletions).http_status, 503);
  EXPECT_EQ(ErrorFromStatus(absl::InternalError("x"), Endpoint::kCompletions).http_status, 500);
  const json body = ErrorBody(e);
  EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  EXPECT_EQ(body["error"]["param"], "temperature");
  EXPECT_TRUE(body["error"]["code"].is_null());
}

TEST(OpenAiProtocolTest, ResponseObjectsHaveOpenAiShapes) {
  Completion c{.id = "chatcmpl-1",
               .created = 100,
               .model = "m",
               .text = "Hello",
               .finish_reason = "length",
               .completion_tokens = 2};
  c.usage.prompt_tokens = 10;
  c.usage.cached_tokens_by_tier = {4, 0, 0};
  const json chat = CompletionBody(Endpoint::kChatCompletions, c);
  EXPECT_EQ(chat["object"], "chat.completion");
  EXPECT_EQ(chat["choices"][0]["message"]["content"], "Hello");
  EXPECT_EQ(chat["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(chat["usage"]["total_tokens"], 12);
  EXPECT_EQ(chat["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
  const json first = ChunkBody(Endpoint::kChatCompletions, c, "", "", true);
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const json last = ChunkBody(Endpoint::kChatCompletions, c, "", "stop", false);
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "stop");
  const json text = ChunkBody(Endpoint::kCompletions, c, "lo", "", false);
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["text"], "lo");
  EXPECT_EQ(UsageChunkBody(Endpoint::kCompletions, c)["choices"].size(), 0u);
  EXPECT_EQ(ModelsBody("m", 5)["data"][0]["id"], "m");
  EXPECT_EQ(OpenAiFinishReason(scheduler::FinishReason::kAbort), "stop");
  EXPECT_EQ(OpenAiFinishReason(scheduler::FinishReason::kLength), "length");
}

}  // namespace
}  // namespace strata::server::openai
