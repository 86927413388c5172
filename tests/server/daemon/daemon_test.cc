// The Daemon in process: it starts on port 0, serves a request over gRPC,
// counts it in its metrics, drains and stops; and it refuses an address it
// cannot bind, naming the key.
#include "server/daemon/daemon.h"

#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "server/daemon/grpc_client.h"
#include "strata/v1/strata.grpc.pb.h"

namespace strata::server {
namespace {

DaemonConfig TestConfig() {
  DaemonConfig config;
  config.server.listen = "127.0.0.1:0";
  config.metrics.listen = "127.0.0.1:0";
  config.engine.backend = "cpu";
  config.engine.threads = 1;
  config.cache.device_bytes = 4 << 20;
  config.model.path = STRATA_SOURCE_DIR "/models/aidreams260K";
  return config;
}

TEST(DaemonTest, ServesCountsDrainsAndStops) {
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(TestConfig(), ModelSource{});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_NE((*daemon)->grpc_address().find("127.0.0.1:"), std::string::npos);
  EXPECT_NE((*daemon)->grpc_address(), "127.0.0.1:0");
  EXPECT_NE((*daemon)->metrics_address(), "127.0.0.1:0");

  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      OpenChannel({.server = (*daemon)->grpc_address()});
  ASSERT_TRUE(channel.ok());
  auto stub = v1::Strata::NewStub(*channel);
  grpc::ClientContext context;
  v1::GenerateRequest request;
  request.set_text("Once upon a time");
  request.mutable_sampling()->set_max_tokens(5);
  request.mutable_sampling()->set_ignore_eos(true);
  v1::CompleteResponse response;
  ASSERT_TRUE(stub->Complete(&context, request, &response).ok());
  EXPECT_EQ(response.final().usage().generated_tokens(), 5);

  // The engine reports the finish just after the reply.
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text = metrics::ExpositionText((*daemon)->registry());
    if (text.find("strata_time_to_first_token_seconds_count 1\n") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(text.find("strata_time_to_first_token_seconds_count 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("strata_generation_tokens_total 5\n"), std::string::npos) << text;

  EXPECT_TRUE((*daemon)->Drain(std::chrono::seconds(30), {}));
  EXPECT_TRUE((*daemon)->engine().draining());
  (*daemon)->Stop(std::chrono::milliseconds(100));
  (*daemon)->Stop(std::chrono::milliseconds(100));  // idempotent
}

TEST(DaemonTest, AnAddressInUseIsUnavailableNamingTheKey) {
  absl::StatusOr<std::unique_ptr<Daemon>> first = Daemon::Start(TestConfig(), ModelSource{});
  ASSERT_TRUE(first.ok()) << first.status();
  DaemonConfig config = TestConfig();
  config.server.listen = (*first)->grpc_address();
  absl::StatusOr<std::unique_ptr<Daemon>> second = Daemon::Start(config, ModelSource{});
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("server.listen"), std::string::npos) << second.status();

  config = TestConfig();
  config.metrics.listen = (*first)->metrics_address();
  second = Daemon::Start(config, ModelSource{});
  EXPECT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("metrics.listen"), std::string::npos) << second.status();
}

TEST(DaemonTest, MissingModelFailsWithTheLoadersError) {
  DaemonConfig config = TestConfig();
  config.model.path = "/nonexistent/model";
  absl::StatusOr<std::unique_ptr<Daemon>> daemon = Daemon::Start(config, ModelSource{});
  EXPECT_FALSE(daemon.ok());
  EXPECT_NE(daemon.status().message().find("/nonexistent/model"), std::string::npos)
      << daemon.status();
}

}  // namespace
}  // namespace strata::server
