// SIGTERM on a daemon with requests in flight: they complete, health turns
// NOT_SERVING, new calls get UNAVAILABLE, and the process exits 0. Runs the
// ~20M random-weight bench model so that the streams are long enough to
// still be running while the test looks.
#include <signal.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/daemon/grpc_client.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"

namespace strata {
namespace {

using testing::DaemonProcess;
using testing::Generation;

constexpr int kStreams = 3;
constexpr int32_t kMaxTokens = 500;

v1::GenerateRequest IdsRequest(int stream) {
  v1::GenerateRequest request;
  for (int i = 0; i < 48; ++i)
    request.mutable_token_ids()->add_ids(3 + (stream * 97 + i * 13) % 30000);
  request.mutable_sampling()->set_max_tokens(kMaxTokens);
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_ignore_eos(true);
  return request;
}

TEST(DaemonDrainTest, SigtermLetsInFlightRequestsFinishRefusesNewOnesAndExitsZero) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(
      dir.path(), testing::BaseConfigYaml("64MiB", "  drain_timeout: 10m\n"),
      {"--random-weights", "--model-config", STRATA_SOURCE_DIR "/bench/configs/llama-20m-4k.json"});
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  const std::string address = daemon->grpc_address();

  std::atomic<int> started{0};
  std::vector<Generation> results(kStreams);
  std::vector<std::thread> streams;
  for (int s = 0; s < kStreams; ++s) {
    streams.emplace_back([&, s] {
      auto stub = testing::NewStub(address);
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
      auto reader = stub->Generate(&context, IdsRequest(s));
      v1::GenerateResponse response;
      Generation& out = results[static_cast<size_t>(s)];
      while (reader->Read(&response)) {
        if (out.messages++ == 0) started.fetch_add(1);
        for (const v1::GeneratedToken& token : response.tokens()) out.ids.push_back(token.id());
        if (response.has_final()) {
          out.has_final = true;
          out.final_info = response.final();
        }
      }
      out.status = reader->Finish();
      if (out.messages == 0) started.fetch_add(1);  // failed before any token: do not hang
    });
  }
  while (started.load() < kStreams) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  daemon->Signal(SIGTERM);

  // Health turns NOT_SERVING while the streams drain.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = server::OpenChannel({.server = address});
  ASSERT_TRUE(channel.ok());
  absl::StatusOr<server::HealthState> health = server::HealthState::kServing;
  for (int i = 0; i < 2000 && health.ok() && *health == server::HealthState::kServing; ++i) {
    health = server::CheckHealth(**channel, "", std::chrono::seconds(30));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, server::HealthState::kNotServing);

  // A new request is refused.
  auto stub = testing::NewStub(address);
  const Generation refused = testing::StreamGenerate(*stub, IdsRequest(7));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.status.error_message();

  for (std::thread& stream : streams) stream.join();
  for (int s = 0; s < kStreams; ++s) {
    const Generation& result = results[static_cast<size_t>(s)];
    ASSERT_TRUE(result.status.ok()) << s << ": " << result.status.error_message();
    EXPECT_EQ(result.ids.size(), static_cast<size_t>(kMaxTokens)) << s;
    EXPECT_EQ(result.final_info.finish_reason(), v1::FINISH_REASON_LENGTH) << s;
  }
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
  const std::string log = daemon->Stderr();
  EXPECT_NE(log.find("event=shutdown_signal"), std::string::npos) << log;
  EXPECT_NE(log.find("event=stopped drained=true"), std::string::npos) << log;
}

// A deadline that passes mid-generation ends the call DEADLINE_EXCEEDED
// after some tokens, and the daemon frees the request.
TEST(DaemonDeadlineTest, DeadlineMidStreamEndsTheCallAndFreesTheRequest) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(
      dir.path(), testing::BaseConfigYaml("64MiB"),
      {"--random-weights", "--model-config", STRATA_SOURCE_DIR "/bench/configs/llama-20m-4k.json"});
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  auto stub = testing::NewStub(daemon->grpc_address());
  // Warm up, then a generation far longer than its deadline.
  v1::GenerateRequest warm_up = IdsRequest(1);
  warm_up.mutable_sampling()->set_max_tokens(4);
  ASSERT_TRUE(testing::StreamGenerate(*stub, warm_up).status.ok());
  const Generation late =
      testing::StreamGenerate(*stub, IdsRequest(2), {.timeout = std::chrono::milliseconds(300)});
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << late.status.error_message();
  EXPECT_LT(late.ids.size(), static_cast<size_t>(kMaxTokens));
  // The engine lets go of it: nothing runs or waits any more.
  bool idle = false;
  for (int i = 0; i < 600 && !idle; ++i) {
    grpc::ClientContext context;
    v1::CacheControlRequest request;
    request.mutable_get_stats();
    v1::CacheControlResponse response;
    idle = stub->CacheControl(&context, request, &response).ok() &&
           response.stats().num_running() == 0 && response.stats().num_waiting() == 0;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(idle);
  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

TEST(DaemonDrainTest, IdleDaemonExitsZeroOnSigint) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon =
      DaemonProcess::Serve(dir.path(), testing::BaseConfigYaml());
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  daemon->Signal(SIGINT);
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
  // Nothing listens any more.
  auto stub = testing::NewStub(daemon->grpc_address());
  const Generation after = testing::StreamGenerate(*stub, testing::TextRequest("Once", 2),
                                                   {.timeout = std::chrono::milliseconds(2000)});
  EXPECT_EQ(after.status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace strata
