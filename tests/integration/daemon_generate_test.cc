// The real daemon (`strata serve`, a separate process on a loopback port)
// serving the embedded model: generation equals the in-process engine's,
// many concurrent streams, session reuse of cached KV, cancellation,
// deadlines, bad input, the health service and `strata client`.
#include <atomic>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "common/check.h"
#include "gtest/gtest.h"
#include "scheduler/engine_service.h"
#include "server/config/daemon_config.h"
#include "server/daemon/daemon_options.h"
#include "server/daemon/grpc_client.h"
#include "server/engine_setup.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"
#include "tests/server/commands/strata_runner.h"

namespace strata {
namespace {

using testing::CallOptions;
using testing::DaemonProcess;
using testing::Generation;
using testing::TextRequest;

constexpr char kPrompt[] = "Once upon a time";

// What the in-process engine generates for a prompt, with the daemon's
// config (same backend, threads and precision).
struct Reference {
  std::vector<int32_t> ids;
  std::string text;
  std::string finish_reason;
};

// The embedded model in this process, one request at a time.
class ReferenceEngine {
 public:
  ReferenceEngine() {
    server::DaemonConfig config;
    config.engine.backend = "cpu";
    config.engine.threads = 1;
    absl::StatusOr<server::ServingOptions> options =
        server::ServingOptionsFromConfig(config, {"cpu"});
    CHECK(options.ok());
    absl::StatusOr<server::ServingEngine> serving =
        server::LoadServingEngine(STRATA_SOURCE_DIR "/models/aidreams260K", *options);
    CHECK(serving.ok());
    serving_ = *std::move(serving);
    absl::StatusOr<scheduler::EngineServiceOptions> service_options =
        server::EngineServiceOptionsFromConfig(config, serving_.scheduler_options);
    CHECK(service_options.ok());
    service_ = std::make_unique<scheduler::EngineService>(*service_options, *serving_.tokenizer,
                                                          *serving_.backend);
  }

  Reference Run(const std::string& prompt, float temperature, uint64_t seed, int32_t max_tokens,
                bool ignore_eos = false) {
    scheduler::Request request;
    request.prompt_ids = *serving_.tokenizer->Encode(prompt, /*add_special_tokens=*/true);
    request.sampling.temperature = temperature;
    request.sampling.seed = seed;
    request.sampling.max_tokens = max_tokens;
    request.sampling.ignore_eos = ignore_eos;
    Reference reference;
    std::promise<void> done;
    absl::StatusOr<scheduler::RequestId> id =
        service_->Submit(request, [&](const scheduler::TokenEvent& event) {
          if (event.token_id) reference.ids.push_back(*event.token_id);
          reference.text += event.text;
          if (event.finished) {
            reference.finish_reason = scheduler::FinishReasonName(event.finish_reason);
            done.set_value();
          }
        });
    EXPECT_TRUE(id.ok()) << id.status();
    if (id.ok()) done.get_future().wait();
    return reference;
  }

 private:
  server::ServingEngine serving_;
  std::unique_ptr<scheduler::EngineService> service_;
};

Reference RunInProcess(const std::string& prompt, float temperature, uint64_t seed,
                       int32_t max_tokens) {
  ReferenceEngine engine;
  return engine.Run(prompt, temperature, seed, max_tokens);
}

class DaemonGenerateTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    daemon_ = DaemonProcess::Serve(dir_->path(), testing::BaseConfigYaml()).release();
    ASSERT_NE(daemon_, nullptr);
    ASSERT_TRUE(daemon_->WaitForListening()) << daemon_->Stderr();
  }
  static void TearDownTestSuite() {
    if (daemon_ != nullptr) {
      daemon_->Signal(SIGTERM);
      EXPECT_EQ(daemon_->Reap(), 0) << daemon_->Stderr();
    }
    delete daemon_;
    delete dir_;
  }

  // Polls the engine's stats until nothing runs or waits.
  static bool EngineIdle(v1::Strata::Stub& stub) {
    for (int i = 0; i < 600; ++i) {
      grpc::ClientContext context;
      v1::CacheControlRequest request;
      request.mutable_get_stats();
      v1::CacheControlResponse response;
      if (stub.CacheControl(&context, request, &response).ok() &&
          response.stats().num_running() == 0 && response.stats().num_waiting() == 0) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  static testing::TempDir* dir_;
  static DaemonProcess* daemon_;
};

testing::TempDir* DaemonGenerateTest::dir_ = nullptr;
DaemonProcess* DaemonGenerateTest::daemon_ = nullptr;

TEST_F(DaemonGenerateTest, StreamingAndUnaryEqualTheInProcessEngine) {
  const Reference reference = RunInProcess(kPrompt, 0.8f, 7, 24);
  ASSERT_FALSE(reference.ids.empty());
  auto stub = testing::NewStub(daemon_->grpc_address());
  const v1::GenerateRequest request = TextRequest(kPrompt, 24, 0.8f, 7);

  const Generation streamed = testing::StreamGenerate(*stub, request);
  ASSERT_TRUE(streamed.status.ok()) << streamed.status.error_message();
  EXPECT_EQ(streamed.ids, reference.ids);
  EXPECT_EQ(streamed.text, reference.text);
  ASSERT_TRUE(streamed.has_final);
  EXPECT_EQ(streamed.final_info.usage().generated_tokens(),
            static_cast<int64_t>(reference.ids.size()));
  EXPECT_GT(streamed.messages, 1);

  const Generation unary = testing::CompleteCall(*stub, request);
  ASSERT_TRUE(unary.status.ok()) << unary.status.error_message();
  EXPECT_EQ(unary.ids, reference.ids);
  EXPECT_EQ(unary.text, reference.text);
  EXPECT_EQ(unary.final_info.finish_reason(), streamed.final_info.finish_reason());
}

TEST_F(DaemonGenerateTest, SixtyFourConcurrentStreamsAllComplete) {
  constexpr int kStreams = 64;
  constexpr int32_t kMaxTokens = 12;
  std::vector<Generation> results(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      auto stub = testing::NewStub(daemon_->grpc_address());
      v1::GenerateRequest request =
          TextRequest(absl::StrCat("Story number ", i, " begins"), kMaxTokens, 0.7f, 100 + i);
      request.mutable_sampling()->set_ignore_eos(true);
      results[static_cast<size_t>(i)] = testing::StreamGenerate(*stub, request);
    });
  }
  for (std::thread& thread : threads) thread.join();
  ReferenceEngine reference_engine;
  for (int i = 0; i < kStreams; ++i) {
    const Generation& result = results[static_cast<size_t>(i)];
    ASSERT_TRUE(result.status.ok()) << i << ": " << result.status.error_message();
    // Batched with the others, each stream still generates what the engine
    // does for its request alone.
    const Reference reference = reference_engine.Run(absl::StrCat("Story number ", i, " begins"),
                                                     0.7f, 100 + i, kMaxTokens, true);
    EXPECT_EQ(result.ids, reference.ids) << i;
    EXPECT_EQ(result.text, reference.text) << i;
    ASSERT_TRUE(result.has_final) << i;
    EXPECT_EQ(result.final_info.finish_reason(), v1::FINISH_REASON_LENGTH) << i;
    EXPECT_EQ(result.ids.size(), static_cast<size_t>(kMaxTokens)) << i;
    EXPECT_EQ(result.final_info.usage().generated_tokens(), kMaxTokens) << i;
    EXPECT_GT(result.final_info.usage().prompt_tokens(), 0) << i;
  }
  auto stub = testing::NewStub(daemon_->grpc_address());
  EXPECT_TRUE(EngineIdle(*stub));
}

TEST_F(DaemonGenerateTest, SecondTurnOfASessionReportsCachedPromptTokens) {
  auto stub = testing::NewStub(daemon_->grpc_address());
  // Long enough for whole KV blocks (16 tokens) before the reply.
  const std::string turn1 =
      "The little robot walked along the quiet beach at dawn and counted the shells it found, "
      "one by one, until the sun rose.";
  v1::GenerateRequest first = TextRequest(turn1, 12);
  first.set_session_id("session-a");
  const Generation reply = testing::StreamGenerate(*stub, first, {.session_id = "session-a"});
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_EQ(reply.final_info.usage().cached_prompt_tokens(), 0);

  v1::GenerateRequest second = TextRequest(absl::StrCat(turn1, reply.text, " Then it"), 8);
  second.set_session_id("session-a");
  const Generation next = testing::StreamGenerate(*stub, second, {.session_id = "session-a"});
  ASSERT_TRUE(next.status.ok()) << next.status.error_message();
  const v1::Usage& usage = next.final_info.usage();
  EXPECT_GE(usage.cached_prompt_tokens(), 16);
  EXPECT_EQ(usage.cached_prompt_tokens(),
            usage.cached_device_tokens() + usage.cached_host_tokens() + usage.cached_disk_tokens());
  EXPECT_LT(usage.cached_prompt_tokens(), usage.prompt_tokens());
}

TEST_F(DaemonGenerateTest, CancelledStreamEndsAndFreesItsRequest) {
  auto stub = testing::NewStub(daemon_->grpc_address());
  v1::GenerateRequest request = TextRequest(kPrompt, 100);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub->Generate(&context, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(EngineIdle(*stub));
  // The daemon serves on.
  EXPECT_TRUE(testing::StreamGenerate(*stub, TextRequest(kPrompt, 4)).status.ok());
}

TEST_F(DaemonGenerateTest, ExpiredDeadlineEndsTheCall) {
  auto stub = testing::NewStub(daemon_->grpc_address());
  v1::GenerateRequest request = TextRequest(kPrompt, 100);
  request.mutable_sampling()->set_ignore_eos(true);
  const Generation result =
      testing::StreamGenerate(*stub, request, {.timeout = std::chrono::milliseconds(1)});
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(EngineIdle(*stub));
}

TEST_F(DaemonGenerateTest, BadInputIsInvalidArgumentNamingTheField) {
  auto stub = testing::NewStub(daemon_->grpc_address());
  struct Case {
    std::string name;
    v1::GenerateRequest request;
    std::string field;
  };
  std::vector<Case> cases;
  cases.push_back({"no input", v1::GenerateRequest(), "input"});
  {
    v1::GenerateRequest r = TextRequest(kPrompt, 4);
    r.clear_text();
    r.mutable_token_ids()->add_ids(5);
    r.mutable_token_ids()->add_ids(6);
    r.mutable_token_ids()->add_ids(7);
    r.mutable_token_ids()->add_ids(100000);
    cases.push_back({"token id outside the vocabulary", r, "token_ids[3]"});
  }
  {
    v1::GenerateRequest r = TextRequest(kPrompt, 4);
    r.mutable_sampling()->set_temperature(-1);
    cases.push_back({"negative temperature", r, "sampling.temperature"});
  }
  {
    v1::GenerateRequest r = TextRequest(kPrompt, 4);
    r.mutable_sampling()->set_top_p(1.5f);
    cases.push_back({"top_p above 1", r, "sampling.top_p"});
  }
  cases.push_back({"zero max_tokens", TextRequest(kPrompt, 0), "sampling.max_tokens"});
  {
    std::string long_prompt;
    for (int i = 0; i < 200; ++i) long_prompt += " sun";
    cases.push_back({"prompt over the context", TextRequest(long_prompt, 4), "input"});
  }
  for (const Case& c : cases) {
    for (bool unary : {false, true}) {
      const Generation result = unary ? testing::CompleteCall(*stub, c.request)
                                      : testing::StreamGenerate(*stub, c.request);
      EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << c.name << ": " << result.status.error_message();
      EXPECT_NE(result.status.error_message().find(c.field), std::string::npos)
          << c.name << ": " << result.status.error_message();
    }
  }
}

TEST_F(DaemonGenerateTest, HealthServiceReportsServing) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      server::OpenChannel({.server = daemon_->grpc_address()});
  ASSERT_TRUE(channel.ok());
  absl::StatusOr<server::HealthState> state =
      server::CheckHealth(**channel, "", std::chrono::seconds(30));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, server::HealthState::kServing);
  const testing::StrataResult health =
      testing::RunStrata({"client", "--server", daemon_->grpc_address(), "--health"});
  EXPECT_EQ(health.exit_code, 0) << health.err;
  EXPECT_EQ(health.out, "SERVING\n");
}

TEST_F(DaemonGenerateTest, ClientCommandStreamsTheReplyAndReportsErrors) {
  const Reference reference = RunInProcess(kPrompt, 0.8f, 11, 16);
  const testing::StrataResult ok = testing::RunStrata(
      {"client", "--server", daemon_->grpc_address(), "--prompt", kPrompt, "--max-tokens", "16",
       "--temperature", "0.8", "--seed", "11", "--session", "client-session"});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.out, reference.text + "\n");
  EXPECT_NE(ok.err.find("[finished: "), std::string::npos) << ok.err;
  EXPECT_NE(ok.err.find("generated_tokens=" + std::to_string(reference.ids.size())),
            std::string::npos)
      << ok.err;

  const testing::StrataResult bad = testing::RunStrata(
      {"client", "--server", daemon_->grpc_address(), "--prompt", kPrompt, "--max-tokens", "0"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("INVALID_ARGUMENT"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("sampling.max_tokens"), std::string::npos) << bad.err;
}

}  // namespace
}  // namespace strata
