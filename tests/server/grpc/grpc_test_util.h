// An in-process Strata gRPC server over the embedded aidreams260K model on
// the CPU backend, on 127.0.0.1:<free port>, with a real channel and stub.
#ifndef STRATA_TESTS_SERVER_GRPC_GRPC_TEST_UTIL_H_
#define STRATA_TESTS_SERVER_GRPC_GRPC_TEST_UTIL_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/backend.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "scheduler/engine_service.h"
#include "server/engine_setup.h"
#include "server/grpc/grpc_server.h"
#include "strata/v1/strata.grpc.pb.h"
#include "tests/mocks/hooked_backend.h"
#include "tests/mocks/recording_observer.h"

namespace strata::server::testing {

inline constexpr char kModelDir[] = STRATA_SOURCE_DIR "/models/aidreams260K";

// Stalls the engine thread deterministically: a request submitted straight
// to the engine, whose `block_at`-th token holds the engine thread inside
// its next step (tests/mocks/hooked_backend.h) until Release, so that
// requests wait in the inbox or mid-generation for as long as a test needs.
// The events already made still reach their sinks: they run on the
// service's dispatch thread.
class EngineStall {
 public:
  // Waits until the engine is stalled when `wait` is set.
  EngineStall(scheduler::EngineService& engine, strata::testing::HookedBackend& backend,
              int block_at = 1, bool wait = true) {
    static std::atomic<int> next_marker{0};
    scheduler::Request request;
    // A prompt no other request has: the backend recognizes it by that.
    request.prompt_ids = {1, 20, 21, 22, 30 + next_marker.fetch_add(1) % 400};
    request.sampling.max_tokens = 8;
    request.sampling.ignore_eos = true;
    request.sampling.temperature = 0;
    stall_ = backend.StallAfterSamples(request.prompt_ids, block_at);
    absl::StatusOr<scheduler::RequestId> id =
        engine.Submit(std::move(request), [](const scheduler::TokenEvent&) {});
    EXPECT_TRUE(id.ok()) << id.status();
    id_ = id.value_or(-1);
    if (wait) WaitStalled();
  }
  ~EngineStall() { Release(); }

  void WaitStalled() { stall_->entered.WaitForNotification(); }
  void Release() {
    if (!stall_->release.HasBeenNotified()) stall_->release.Notify();
  }
  scheduler::RequestId id() const { return id_; }

 private:
  std::shared_ptr<strata::testing::HookedBackend::Stall> stall_;
  scheduler::RequestId id_ = -1;
};

struct TestServerOptions {
  GrpcServerOptions grpc;
  int64_t kv_blocks = 256;  // plenty for many concurrent tiny requests
  int64_t max_waiting = 0;  // the scheduler's waiting-queue bound; 0: none
  int32_t default_max_tokens = 16;
  int64_t max_prompt_tokens = 0;  // ServedModel's; 0: the context less one
};

class TestServer {
 public:
  // Null (with a test failure recorded) when anything fails to start.
  static std::unique_ptr<TestServer> Start(TestServerOptions options = {}) {
    auto server = std::unique_ptr<TestServer>(new TestServer());
    engine::BackendOptions backend_options;
    backend_options.num_kv_blocks = options.kv_blocks;
    backend_options.threads = 1;
    absl::StatusOr<ServingEngine> serving = LoadServingEngine(kModelDir, "cpu", backend_options);
    if (!serving.ok()) {
      ADD_FAILURE() << serving.status();
      return nullptr;
    }
    server->serving_ = *std::move(serving);
    scheduler::EngineServiceOptions engine_options;
    engine_options.scheduler = server->serving_.scheduler_options;
    engine_options.scheduler.max_waiting = options.max_waiting;
    server->hooked_ = std::make_unique<strata::testing::HookedBackend>(*server->serving_.backend);
    server->engine_ = std::make_unique<scheduler::EngineService>(
        engine_options, *server->serving_.tokenizer, *server->hooked_, &server->observer_);

    const engine::ModelConfig& config = server->serving_.backend->model_config();
    ServedModel model{.name = "aidreams260K",
                      .config = &config,
                      .tokenizer = server->serving_.tokenizer.get(),
                      .backend = "cpu",
                      .fingerprint_hex = "0123abcd",
                      .kv_block_size = server->serving_.scheduler_options.block_size,
                      .kv_device_blocks = server->serving_.scheduler_options.num_blocks,
                      .max_prompt_tokens = options.max_prompt_tokens,
                      .default_max_tokens = options.default_max_tokens};
    options.grpc.listen = "127.0.0.1:0";
    server->grpc_ = std::make_unique<GrpcServer>(options.grpc, server->engine_.get(), model);
    if (absl::Status started = server->grpc_->Start(); !started.ok()) {
      ADD_FAILURE() << started;
      return nullptr;
    }
    server->channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server->grpc_->port()),
                                           grpc::InsecureChannelCredentials());
    server->stub_ = v1::Strata::NewStub(server->channel_);
    return server;
  }

  ~TestServer() {
    // The server first (its calls reference the engine), then the engine.
    grpc_.reset();
    engine_.reset();
  }

  v1::Strata::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  scheduler::EngineService& engine() { return *engine_; }
  // The backend the engine runs: the real one behind test hooks.
  strata::testing::HookedBackend& hooked() { return *hooked_; }
  GrpcServer& grpc() { return *grpc_; }
  const engine::Tokenizer& tokenizer() { return *serving_.tokenizer; }
  const ServingEngine& serving() { return serving_; }
  const strata::testing::RecordingObserver& observer() const { return observer_; }

 private:
  TestServer() = default;

  ServingEngine serving_;
  strata::testing::RecordingObserver observer_;
  std::unique_ptr<strata::testing::HookedBackend> hooked_;
  std::unique_ptr<scheduler::EngineService> engine_;
  std::unique_ptr<GrpcServer> grpc_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Strata::Stub> stub_;
};

// A context with a deadline far enough to never fire in a passing test, so
// that a hung server fails the test instead of hanging it.
inline std::unique_ptr<grpc::ClientContext> MakeContext(const std::string& bearer = "") {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!bearer.empty()) context->AddMetadata("authorization", absl::StrCat("Bearer ", bearer));
  return context;
}

struct StreamResult {
  grpc::Status status;
  std::vector<v1::GenerateResponse> messages;
  std::string text;  // the deltas concatenated
  std::vector<int32_t> token_ids;
  v1::FinalInfo final_info;  // from the last message
};

// Reads a whole Generate stream.
inline StreamResult GenerateAll(v1::Strata::Stub& stub, const v1::GenerateRequest& request,
                                const std::string& bearer = "") {
  StreamResult result;
  std::unique_ptr<grpc::ClientContext> context = MakeContext(bearer);
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub.Generate(context.get(), request);
  v1::GenerateResponse message;
  while (reader->Read(&message)) {
    result.text += message.text();
    for (const v1::GeneratedToken& token : message.tokens()) result.token_ids.push_back(token.id());
    if (message.has_final()) result.final_info = message.final();
    result.messages.push_back(message);
  }
  result.status = reader->Finish();
  return result;
}

inline v1::GenerateRequest TextRequest(const std::string& text, int32_t max_tokens,
                                       uint64_t seed = 7) {
  v1::GenerateRequest request;
  request.set_text(text);
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_seed(seed);
  request.mutable_sampling()->set_temperature(0.8f);
  return request;
}

}  // namespace strata::server::testing

#endif  // STRATA_TESTS_SERVER_GRPC_GRPC_TEST_UTIL_H_
