// Bearer-token authentication on the real daemon (auth.tokens in the
// config): calls without a token or with a wrong one are UNAUTHENTICATED,
// the health service stays open, and each tenant's cache is its own. With
// auth off (every other integration test) no token is needed.
#include <signal.h>

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/daemon/grpc_client.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"
#include "tests/server/commands/strata_runner.h"

namespace strata {
namespace {

using testing::DaemonProcess;
using testing::Generation;
using testing::TextRequest;

constexpr char kPrompt[] =
    "In the valley of the old mill, the river sang to the stones every morning before the bakers "
    "woke.";

class DaemonAuthTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    const std::string yaml = testing::BaseConfigYaml() +
                             "auth:\n"
                             "  tokens:\n"
                             "    secret-alice: alice\n"
                             "    secret-bob: bob\n";
    daemon_ = DaemonProcess::Serve(dir_->path(), yaml).release();
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
  static testing::TempDir* dir_;
  static DaemonProcess* daemon_;
};

testing::TempDir* DaemonAuthTest::dir_ = nullptr;
DaemonProcess* DaemonAuthTest::daemon_ = nullptr;

TEST_F(DaemonAuthTest, MissingOrWrongTokensAreUnauthenticated) {
  auto stub = testing::NewStub(daemon_->grpc_address());
  const Generation none = testing::StreamGenerate(*stub, TextRequest(kPrompt, 4));
  EXPECT_EQ(none.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const Generation wrong =
      testing::StreamGenerate(*stub, TextRequest(kPrompt, 4), {.token = "secret-mallory"});
  EXPECT_EQ(wrong.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const Generation unary =
      testing::CompleteCall(*stub, TextRequest(kPrompt, 4), {.token = "secret-alic"});
  EXPECT_EQ(unary.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const Generation right =
      testing::StreamGenerate(*stub, TextRequest(kPrompt, 4), {.token = "secret-alice"});
  EXPECT_TRUE(right.status.ok()) << right.status.error_message();

  const testing::StrataResult client = testing::RunStrata(
      {"client", "--server", daemon_->grpc_address(), "--prompt", kPrompt, "--max-tokens", "2"});
  EXPECT_EQ(client.exit_code, 1);
  EXPECT_NE(client.err.find("UNAUTHENTICATED"), std::string::npos) << client.err;
  const testing::StrataResult authed =
      testing::RunStrata({"client", "--server", daemon_->grpc_address(), "--prompt", kPrompt,
                          "--max-tokens", "2", "--token", "secret-bob"});
  EXPECT_EQ(authed.exit_code, 0) << authed.err;
}

TEST_F(DaemonAuthTest, HealthNeedsNoToken) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      server::OpenChannel({.server = daemon_->grpc_address()});
  ASSERT_TRUE(channel.ok());
  absl::StatusOr<server::HealthState> state =
      server::CheckHealth(**channel, "", std::chrono::seconds(30));
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_EQ(*state, server::HealthState::kServing);
}

TEST_F(DaemonAuthTest, TenantsDoNotShareCachedPrompts) {
  auto stub = testing::NewStub(daemon_->grpc_address());
  // Not seen by this daemon before (the other tests use kPrompt).
  const std::string prompt =
      "Seven foxes crossed the frozen lake at midnight, each one carrying a silver key for the "
      "locked tower.";
  const Generation first =
      testing::StreamGenerate(*stub, TextRequest(prompt, 2), {.token = "secret-alice"});
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  EXPECT_EQ(first.final_info.usage().cached_prompt_tokens(), 0);
  const Generation again =
      testing::StreamGenerate(*stub, TextRequest(prompt, 2), {.token = "secret-alice"});
  ASSERT_TRUE(again.status.ok());
  EXPECT_GT(again.final_info.usage().cached_prompt_tokens(), 0);
  const Generation other =
      testing::StreamGenerate(*stub, TextRequest(prompt, 2), {.token = "secret-bob"});
  ASSERT_TRUE(other.status.ok());
  EXPECT_EQ(other.final_info.usage().cached_prompt_tokens(), 0);
}

// TLS from tls.cert_file and tls.key_file: a client that trusts the
// certificate gets its reply; a plaintext client gets nothing.
TEST(DaemonTlsTest, ServesTlsToClientsThatTrustTheCertificate) {
  testing::TempDir dir;
  const std::string cert = (dir.path() / "cert.pem").string();
  const std::string key = (dir.path() / "key.pem").string();
  const std::string openssl = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost ",
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout ", testing::ShellQuote(key),
      " -out ", testing::ShellQuote(cert), " >/dev/null 2>&1");
  ASSERT_EQ(std::system(openssl.c_str()), 0);
  const std::string yaml = absl::StrCat(testing::BaseConfigYaml(), "tls:\n  cert_file: \"", cert,
                                        "\"\n  key_file: \"", key, "\"\n");
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(dir.path(), yaml);
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  EXPECT_NE(daemon->Stderr().find("tls=true"), std::string::npos);

  const testing::StrataResult secure =
      testing::RunStrata({"client", "--server", daemon->grpc_address(), "--tls-ca", cert,
                          "--prompt", kPrompt, "--max-tokens", "3"});
  EXPECT_EQ(secure.exit_code, 0) << secure.err;
  EXPECT_NE(secure.err.find("generated_tokens="), std::string::npos) << secure.err;
  const testing::StrataResult plain =
      testing::RunStrata({"client", "--server", daemon->grpc_address(), "--prompt", kPrompt,
                          "--max-tokens", "3", "--timeout-ms", "5000"});
  EXPECT_EQ(plain.exit_code, 1);

  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

}  // namespace
}  // namespace strata
