// HAProxy in front of two daemons, balancing gRPC (HTTP/2) with session
// affinity on the x-session-id header, as deploy/haproxy/haproxy.cfg does:
// every turn of a session lands on the same daemon (checked in the daemons'
// logs, which name each call's client request id), so turns after the
// first report cached prompt tokens; and both daemons get sessions.
#include <signal.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "server/daemon/grpc_client.h"
#include "tests/common/files.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"

namespace strata {
namespace {

using testing::DaemonProcess;
using testing::Generation;

constexpr int kSessions = 8;
constexpr int kTurns = 3;

// deploy/haproxy/haproxy.cfg with the test's addresses in place of the
// deployment's, so the test checks the shipped balancing rules.
std::string HaproxyConfig(int port, const std::string& daemon1, const std::string& daemon2) {
  std::string config = testing::ReadFile(STRATA_SOURCE_DIR "/deploy/haproxy/haproxy.cfg");
  config = std::regex_replace(config, std::regex(R"(bind \S+:\d+)"),
                              absl::StrCat("bind 127.0.0.1:", port));
  config = std::regex_replace(config, std::regex(R"(server strata1 \S+)"),
                              absl::StrCat("server strata1 ", daemon1));
  config = std::regex_replace(config, std::regex(R"(server strata2 \S+)"),
                              absl::StrCat("server strata2 ", daemon2));
  // No log daemon in a test.
  config = std::regex_replace(config, std::regex(R"(\n\s*log [^\n]*)"), "");
  return config;
}

TEST(HaproxyAffinityTest, AllTurnsOfASessionLandOnOneDaemon) {
  testing::TempDir dir;
  std::vector<std::unique_ptr<DaemonProcess>> daemons;
  for (const char* name : {"daemon1", "daemon2"}) {
    daemons.push_back(DaemonProcess::Serve(dir.path(), testing::BaseConfigYaml(), {}, name));
    ASSERT_NE(daemons.back(), nullptr);
    ASSERT_TRUE(daemons.back()->WaitForListening()) << daemons.back()->Stderr();
  }
  const int port = testing::FreeLoopbackPort();
  const std::string proxy = absl::StrCat("127.0.0.1:", port);
  const std::string config =
      HaproxyConfig(port, daemons[0]->grpc_address(), daemons[1]->grpc_address());
  ASSERT_NE(config.find("balance hdr(x-session-id)"), std::string::npos) << config;
  testing::WriteTextFile(dir.path() / "haproxy.cfg", config);
  std::unique_ptr<DaemonProcess> haproxy =
      DaemonProcess::SpawnProgram(dir.path(), "/usr/sbin/haproxy",
                                  {"-db", "-f", (dir.path() / "haproxy.cfg").string()}, "haproxy");
  ASSERT_NE(haproxy, nullptr);

  // Through the proxy once it is up.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = server::OpenChannel({.server = proxy});
  ASSERT_TRUE(channel.ok());
  bool up = false;
  for (int i = 0; i < 600 && !up && haproxy->running(); ++i) {
    absl::StatusOr<server::HealthState> health =
        server::CheckHealth(**channel, "", std::chrono::seconds(5));
    up = health.ok() && *health == server::HealthState::kServing;
    if (!up) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(up) << haproxy->Stderr();

  auto stub = v1::Strata::NewStub(*channel);
  for (int s = 0; s < kSessions; ++s) {
    const std::string session = absl::StrCat("session-", s);
    std::string history = absl::StrCat("Chapter ", s,
                                       ": the lantern maker opened her shop on the hill and waited "
                                       "for the first traveller of the winter.");
    for (int turn = 0; turn < kTurns; ++turn) {
      v1::GenerateRequest request = testing::TextRequest(history, 6);
      request.set_session_id(session);
      request.set_request_id(absl::StrCat(session, "-turn", turn));
      const Generation reply = testing::StreamGenerate(*stub, request, {.session_id = session});
      ASSERT_TRUE(reply.status.ok())
          << session << " turn " << turn << ": " << reply.status.error_message();
      if (turn > 0) {
        EXPECT_GT(reply.final_info.usage().cached_prompt_tokens(), 0)
            << session << " turn " << turn;
      }
      history += reply.text;
      history += " Then";
    }
  }

  // Each session's calls all appear in one daemon's log.
  const std::string log1 = daemons[0]->Stderr();
  const std::string log2 = daemons[1]->Stderr();
  int sessions_on_1 = 0;
  for (int s = 0; s < kSessions; ++s) {
    int on1 = 0;
    int on2 = 0;
    for (int turn = 0; turn < kTurns; ++turn) {
      const std::string id = absl::StrCat("client_request_id=session-", s, "-turn", turn, " ");
      on1 += log1.find(id) != std::string::npos;
      on2 += log2.find(id) != std::string::npos;
    }
    EXPECT_EQ(on1 + on2, kTurns) << "session " << s;
    EXPECT_TRUE(on1 == 0 || on2 == 0) << "session " << s << " split " << on1 << "/" << on2;
    sessions_on_1 += on1 > 0;
  }
  EXPECT_GT(sessions_on_1, 0);
  EXPECT_LT(sessions_on_1, kSessions);

  haproxy->Signal(SIGTERM);
  EXPECT_TRUE(haproxy->Reap().has_value());
  for (auto& daemon : daemons) {
    daemon->Signal(SIGTERM);
    EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
  }
}

}  // namespace
}  // namespace strata
