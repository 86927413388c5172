// The OpenAI-compatible HTTP API of the real daemon on loopback ports: the
// pinned `openai` npm client (tests/integration/openai/) streaming and not,
// chat through the model's chat template (over HTTP and gRPC), OpenAI-style
// error bodies and status codes, and drain (new calls 503, streams finish).
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"
#include "tests/integration/http_test_client.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using testing::HttpCall;

// A simple template for the embedded model, which ships none.
constexpr const char* kTemplate =
    "{{ bos_token }}{% for m in messages %}{{ m.role }}: {{ m.content | trim }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}";

// The embedded model copied to `dir` with kTemplate in its tokenizer_config.json.
fs::path TemplatedModel(const fs::path& dir) {
  const fs::path model = dir / "aidreams-chat";
  fs::copy(fs::path(STRATA_SOURCE_DIR) / "models/aidreams260K", model, fs::copy_options::recursive);
  std::ifstream in(model / "tokenizer_config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  config["chat_template"] = kTemplate;
  std::ofstream(model / "tokenizer_config.json") << config.dump(2);
  return model;
}

std::string OpenAiAddress(DaemonProcess& daemon) {
  return testing::LogField(testing::CompleteLineContaining(daemon.Stderr(), "event=listening"),
                           "openai");
}

std::string ServeYaml(const fs::path& model, bool auth) {
  std::string yaml = testing::BaseConfigYaml("4MiB");
  yaml += "openai:\n  listen: \"127.0.0.1:0\"\n";
  if (!model.empty()) yaml += "model:\n  path: \"" + model.string() + "\"\n";
  if (auth) yaml += "auth:\n  tokens:\n    sk-test: acme\n";
  return yaml;
}

nlohmann::json Json(const std::string& body) {
  return nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
}

class OpenAiHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = TemplatedModel(dir_.path());
    daemon_ = DaemonProcess::Serve(dir_.path(), ServeYaml(model_, /*auth=*/true));
    ASSERT_NE(daemon_, nullptr);
    ASSERT_TRUE(daemon_->WaitForListening()) << daemon_->Stderr();
    address_ = OpenAiAddress(*daemon_);
    ASSERT_FALSE(address_.empty()) << daemon_->Stderr();
  }

  testing::TempDir dir_;
  fs::path model_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::string address_;
  const std::map<std::string, std::string> auth_ = {{"Authorization", "Bearer sk-test"}};
};

TEST_F(OpenAiHttpTest, TheOpenAiNpmClientWorks) {
  const fs::path modules = fs::path(STRATA_FETCHED_DATA_DIR) / "openai";
  ASSERT_TRUE(fs::exists(modules / "node_modules/openai/package.json"))
      << "missing test data: run scripts/fetch_test_data.sh " STRATA_FETCHED_DATA_DIR;
  auto node = DaemonProcess::SpawnProgram(
      dir_.path(), "/usr/bin/env",
      {"node", STRATA_SOURCE_DIR "/tests/integration/openai/openai_client_test.mjs",
       (modules / "node_modules").string(), "http://" + address_ + "/v1", "aidreams-chat",
       "sk-test"},
      "node");
  ASSERT_NE(node, nullptr);
  const std::optional<int> exit_code = node->Reap(std::chrono::seconds(300));
  EXPECT_EQ(exit_code, 0) << node->Stdout() << node->Stderr() << daemon_->Stderr();
  EXPECT_THAT(node->Stdout(), HasSubstr("all passed"));
  std::cout << node->Stdout();
}

TEST_F(OpenAiHttpTest, BadRequestsGetOpenAiErrorBodies) {
  struct Case {
    std::string method, path, body;
    int status;
    std::string type, param;
  };
  const std::string chat =
      R"({"model": "aidreams-chat", "messages": [{"role": "user", "content": "hi"}]})";
  const std::vector<Case> cases = {
      {"GET", "/v1/nothing", "", 404, "invalid_request_error", ""},
      {"GET", "/v1/chat/completions", "", 405, "invalid_request_error", ""},
      {"POST", "/v1/chat/completions", "{not json", 400, "invalid_request_error", ""},
      {"POST", "/v1/chat/completions", R"({"messages": []})", 400, "invalid_request_error",
       "model"},
      {"POST", "/v1/completions", R"({"model": "aidreams-chat"})", 400, "invalid_request_error",
       "prompt"},
      {"POST", "/v1/completions", R"({"model": "aidreams-chat", "prompt": [1, 99999]})", 400,
       "invalid_request_error", "prompt"},
      {"POST", "/v1/completions", R"({"model": "aidreams-chat", "prompt": "x", "top_p": "high"})",
       400, "invalid_request_error", "top_p"},
      {"POST", "/v1/chat/completions",
       R"({"model": "aidreams-chat", "messages": [{"content": "no role"}]})", 400,
       "invalid_request_error", "messages[0]"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.method + " " + c.path + " " + c.body);
    testing::HttpResult r = HttpCall(address_, c.method, c.path, c.body, auth_);
    EXPECT_EQ(r.status, c.status) << r.body;
    nlohmann::json body = Json(r.body);
    ASSERT_TRUE(body.contains("error")) << r.body;
    EXPECT_EQ(body["error"]["type"], c.type);
    EXPECT_TRUE(body["error"]["message"].is_string());
    if (c.param.empty()) {
      EXPECT_TRUE(body["error"]["param"].is_null()) << r.body;
    } else {
      EXPECT_EQ(body["error"]["param"], c.param) << r.body;
    }
  }
  // No token, then a good one.
  testing::HttpResult anonymous = HttpCall(address_, "POST", "/v1/chat/completions", chat);
  EXPECT_EQ(anonymous.status, 401) << anonymous.body;
  testing::HttpResult ok = HttpCall(address_, "POST", "/v1/chat/completions", chat, auth_);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Json(ok.body)["choices"][0]["message"]["role"], "assistant") << ok.body;
}

TEST_F(OpenAiHttpTest, GrpcChatMessagesRenderTheSameTemplate) {
  v1::GenerateRequest request;
  v1::ChatMessage* message = request.mutable_messages()->add_messages();
  message->set_role("user");
  message->set_content("Tell me about the sea.");
  request.mutable_sampling()->set_max_tokens(8);
  request.mutable_sampling()->set_temperature(0);
  auto stub = testing::NewStub(daemon_->grpc_address());
  testing::Generation grpc_reply = testing::CompleteCall(*stub, request, {.token = "sk-test"});
  ASSERT_TRUE(grpc_reply.status.ok()) << grpc_reply.status.error_message();

  testing::HttpResult http =
      HttpCall(address_, "POST", "/v1/chat/completions",
               R"({"model": "aidreams-chat", "max_tokens": 8, "temperature": 0,
          "messages": [{"role": "user", "content": "Tell me about the sea."}]})",
               auth_);
  ASSERT_EQ(http.status, 200) << http.body;
  nlohmann::json body = Json(http.body);
  EXPECT_EQ(body["choices"][0]["message"]["content"], grpc_reply.text);
  EXPECT_EQ(body["usage"]["prompt_tokens"], grpc_reply.final_info.usage().prompt_tokens());

  // The engine's metrics count both front ends' requests alike.
  testing::HttpResponse metrics = testing::HttpGet(daemon_->metrics_address(), "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body, HasSubstr("\nstrata_time_to_first_token_seconds_count 2\n"));
}

TEST(OpenAiHttpNoTemplateTest, ChatToAModelWithoutTemplateIsAClearError) {
  testing::TempDir dir;
  auto daemon = DaemonProcess::Serve(dir.path(), ServeYaml("", /*auth=*/false));
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  const std::string address = OpenAiAddress(*daemon);
  testing::HttpResult r =
      HttpCall(address, "POST", "/v1/chat/completions",
               R"({"model": "aidreams260K", "messages": [{"role": "user", "content": "hi"}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_THAT(r.body, HasSubstr("no chat template"));
  EXPECT_EQ(Json(r.body)["error"]["param"], "messages");
  // Completions still work.
  testing::HttpResult completion =
      HttpCall(address, "POST", "/v1/completions",
               R"({"model": "aidreams260K", "prompt": "Once upon a time", "max_tokens": 4})");
  EXPECT_EQ(completion.status, 200) << completion.body;

  v1::GenerateRequest request;
  request.mutable_messages()->add_messages()->set_role("user");
  auto stub = testing::NewStub(daemon->grpc_address());
  testing::Generation reply = testing::CompleteCall(*stub, request);
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(reply.status.error_message(), HasSubstr("messages: the model has no chat template"));
}

TEST(OpenAiHttpDrainTest, DrainRefusesNewCallsWith503AndLetsStreamsFinish) {
  testing::TempDir dir;
  std::string yaml = testing::BaseConfigYaml("64MiB", "  drain_timeout: 10m\n");
  yaml += "openai:\n  listen: \"127.0.0.1:0\"\n";
  auto daemon = DaemonProcess::Serve(
      dir.path(), yaml,
      {"--random-weights", "--model-config", STRATA_SOURCE_DIR "/bench/configs/llama-20m-4k.json"});
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  const std::string address = OpenAiAddress(*daemon);
  const std::string model = Json(HttpCall(address, "GET", "/v1/models").body)["data"][0]["id"];

  nlohmann::json request = {{"model", model},     {"prompt", std::vector<int>(48, 17)},
                            {"max_tokens", 400},  {"temperature", 0},
                            {"ignore_eos", true}, {"stream", true}};
  testing::HttpConnection stream;
  ASSERT_TRUE(stream.Send(address, "POST", "/v1/completions", request.dump()));
  // Wait for the first generated text, so the stream is surely in flight.
  while (stream.raw().find("\"text\":") == std::string::npos && stream.ReadSome()) {
  }
  ASSERT_EQ(stream.status(), 200) << stream.raw();
  daemon->Signal(SIGTERM);

  // New calls are refused while the stream drains.
  testing::HttpResult refused;
  for (int i = 0; i < 2000; ++i) {
    refused = HttpCall(address, "GET", "/v1/models");
    if (refused.status != 200) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_THAT(refused.body, HasSubstr("draining"));

  stream.ReadAll();
  EXPECT_THAT(stream.raw(), HasSubstr("\"finish_reason\":\"length\""));
  EXPECT_THAT(stream.raw(), HasSubstr("data: [DONE]"));
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

}  // namespace
}  // namespace strata
