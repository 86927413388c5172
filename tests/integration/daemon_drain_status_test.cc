// New calls on a channel that is already open while the daemon drains and
// shuts down get UNAVAILABLE (which clients retry elsewhere), never
// CANCELLED or another code, from the SIGTERM until the process is gone.
// Runs the ~20M random-weight bench model so that a stream is still in
// flight for a while after the signal.
#include <signal.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"

namespace strata {
namespace {

using testing::DaemonProcess;
using testing::Generation;

v1::GenerateRequest LongRequest(int32_t max_tokens) {
  v1::GenerateRequest request;
  for (int i = 0; i < 32; ++i) request.mutable_token_ids()->add_ids(3 + i * 31);
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_temperature(0);
  request.mutable_sampling()->set_ignore_eos(true);
  return request;
}

// Issues calls of every kind on `stub` until the daemon has exited; returns
// how many ended with each status code other than OK.
std::map<grpc::StatusCode, int> CallUntilExit(v1::Strata::Stub& stub, DaemonProcess& daemon,
                                              std::string& first_odd) {
  std::map<grpc::StatusCode, int> codes;
  auto note = [&](const grpc::Status& status, const char* method) {
    if (status.ok()) return;
    ++codes[status.error_code()];
    if (status.error_code() != grpc::StatusCode::UNAVAILABLE && first_odd.empty()) {
      first_odd = absl::StrCat(method, ": ", status.error_code(), " ", status.error_message());
    }
  };
  while (daemon.running()) {
    const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(30);
    {
      grpc::ClientContext context;
      context.set_deadline(deadline);
      v1::ModelInfo response;
      note(stub.GetModelInfo(&context, v1::GetModelInfoRequest(), &response), "GetModelInfo");
    }
    {
      grpc::ClientContext context;
      context.set_deadline(deadline);
      v1::CompleteResponse response;
      note(stub.Complete(&context, LongRequest(2), &response), "Complete");
    }
    note(testing::StreamGenerate(stub, LongRequest(2)).status, "Generate");
  }
  return codes;
}

TEST(DaemonDrainStatusTest, NewCallsOnOpenChannelsGetUnavailableUntilExit) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(
      dir.path(), testing::BaseConfigYaml("64MiB", "  drain_timeout: 10m\n"),
      {"--random-weights", "--model-config", STRATA_SOURCE_DIR "/bench/configs/llama-20m-4k.json"});
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  auto stub = testing::NewStub(daemon->grpc_address());
  // The channel is open and warm before the signal.
  ASSERT_TRUE(testing::StreamGenerate(*stub, LongRequest(2)).status.ok());

  std::atomic<bool> streaming{false};
  Generation in_flight;
  std::thread stream([&] {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
    auto reader = stub->Generate(&context, LongRequest(200));
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
      streaming.store(true);
      for (const v1::GeneratedToken& token : response.tokens()) in_flight.ids.push_back(token.id());
    }
    in_flight.status = reader->Finish();
    streaming.store(true);
  });
  while (!streaming.load()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  daemon->Signal(SIGTERM);
  std::string first_odd;
  const std::map<grpc::StatusCode, int> codes = CallUntilExit(*stub, *daemon, first_odd);
  stream.join();

  EXPECT_TRUE(in_flight.status.ok()) << in_flight.status.error_message();
  EXPECT_EQ(in_flight.ids.size(), 200u);
  EXPECT_TRUE(first_odd.empty()) << first_odd;
  EXPECT_GT(codes.count(grpc::StatusCode::UNAVAILABLE), 0u);
  for (const auto& [code, count] : codes) {
    EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE) << count << " calls ended with " << code;
  }
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

// An idle daemon drains at once; calls racing its shutdown still get
// UNAVAILABLE.
TEST(DaemonDrainStatusTest, IdleDaemonRefusesRacingCallsWithUnavailable) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(
      dir.path(), testing::BaseConfigYaml("64MiB"),
      {"--random-weights", "--model-config", STRATA_SOURCE_DIR "/bench/configs/llama-20m-4k.json"});
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  auto stub = testing::NewStub(daemon->grpc_address());
  ASSERT_TRUE(testing::StreamGenerate(*stub, LongRequest(2)).status.ok());
  daemon->Signal(SIGTERM);
  std::string first_odd;
  const std::map<grpc::StatusCode, int> codes = CallUntilExit(*stub, *daemon, first_odd);
  EXPECT_TRUE(first_odd.empty()) << first_odd;
  for (const auto& [code, count] : codes) {
    EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE) << count << " calls ended with " << code;
  }
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

}  // namespace
}  // namespace strata
