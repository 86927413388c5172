// The key kinds added with issue 6's layout (booleans, bounded byte sizes,
// the scheduler's durations and choices), the cross-field rules of the
// server, metrics, auth and tls sections, and the quoting of free text in
// DumpConfig. Each error names the file, the line and the key.
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/daemon_config.h"
#include "tests/common/temp_dir.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

namespace fs = std::filesystem;

std::string WriteTemp(const std::string& name, const std::string& text) {
  static strata::testing::TempDir dir;  // private: ctest runs tests in parallel
  const fs::path path = dir.path() / name;
  std::ofstream(path) << text;
  return path.string();
}

// The message, less the file name it must start with, of a config that must
// fail to load with INVALID_ARGUMENT.
std::string LoadError(const std::string& yaml) {
  const std::string path = WriteTemp("bad.yaml", yaml);
  absl::StatusOr<DaemonConfig> config = LoadConfig(path);
  EXPECT_FALSE(config.ok()) << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  EXPECT_EQ(message.rfind(path, 0), 0u) << message;
  return message.substr(path.size());
}

absl::StatusOr<DaemonConfig> Load(const std::string& yaml) {
  return LoadConfig(WriteTemp("good.yaml", yaml));
}

TEST(BoolKeyTest, AcceptsYaml12Spellings) {
  for (const char* text : {"true", "True", "TRUE"}) {
    absl::StatusOr<DaemonConfig> config =
        Load(std::string("scheduler:\n  prefix_cache: ") + text + "\n");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_TRUE(config->scheduler.prefix_cache) << text;
  }
  for (const char* text : {"false", "False", "FALSE"}) {
    absl::StatusOr<DaemonConfig> config =
        Load(std::string("scheduler:\n  prefix_cache: ") + text + "\n");
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_FALSE(config->scheduler.prefix_cache) << text;
  }
}

// yes/no/on/off are booleans to a YAML 1.1 reader and strings to a 1.2 one;
// refusing them keeps the file meaning one thing.
TEST(BoolKeyTest, RefusesEverythingElse) {
  EXPECT_EQ(LoadError("scheduler:\n  prefix_cache: yes\n"),
            ":2: scheduler.prefix_cache: expected true or false, got 'yes'");
  EXPECT_EQ(LoadError("scheduler:\n  max_running: 4\n  prefix_cache: 1\n"),
            ":3: scheduler.prefix_cache: expected true or false, got '1'");
  EXPECT_EQ(LoadError("scheduler:\n  prefix_cache: \"\"\n"),
            ":2: scheduler.prefix_cache: expected true or false, got ''");
  EXPECT_EQ(LoadError("scheduler:\n  prefix_cache:\n"),
            ":2: scheduler.prefix_cache: wrong type: expected true or false, got nothing");
}

TEST(BoolKeyTest, DumpsAsTrueOrFalse) {
  DaemonConfig config;
  EXPECT_THAT(DumpConfig(config), HasSubstr("\n  prefix_cache: true\n"));
  config.scheduler.prefix_cache = false;
  const std::string dump = DumpConfig(config);
  EXPECT_THAT(dump, HasSubstr("\n  prefix_cache: false\n"));
  absl::StatusOr<DaemonConfig> again = ParseConfig(dump, "dump");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->scheduler.prefix_cache);
}

TEST(BytesKeyTest, MaxMessageBytesIsBoundedByGrpc) {
  absl::StatusOr<DaemonConfig> config = Load("server:\n  max_message_bytes: 2147483647\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.max_message_bytes, 2147483647);
  config = Load("server:\n  max_message_bytes: 1KiB\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.max_message_bytes, 1024);
  EXPECT_EQ(LoadError("server:\n  max_message_bytes: 2GiB\n"),
            ":2: server.max_message_bytes: size 2GiB is out of range [1KiB, 2147483647]");
  EXPECT_EQ(LoadError("server:\n  listen: a:1\n  max_message_bytes: 100\n"),
            ":3: server.max_message_bytes: size 100 is out of range [1KiB, 2147483647]");
  EXPECT_EQ(LoadError("server:\n  max_message_bytes: 16MB!\n"),
            ":2: server.max_message_bytes: bad size '16MB!': unknown unit 'MB!' (use B, KB, "
            "MB, GB, TB, KiB, MiB, GiB, TiB)");
}

TEST(BytesKeyTest, SignedSizesStopAtInt64) {
  EXPECT_EQ(LoadError("cache:\n  device_bytes: 9223372036854775808\n"),
            ":2: cache.device_bytes: size 9223372036854775808 is out of range [0, "
            "9223372036854775807]");
}

TEST(DurationKeyTest, SchedulerDurationsAreMilliseconds) {
  absl::StatusOr<DaemonConfig> config =
      Load("scheduler:\n  max_queue_delay: 1.5s\n  session_ttl: 0\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->scheduler.max_queue_delay_ms, 1500);
  EXPECT_EQ(config->scheduler.session_ttl_ms, 0);
  EXPECT_THAT(LoadError("scheduler:\n  session_ttl: forever\n"),
              HasSubstr(":2: scheduler.session_ttl: bad duration 'forever'"));
  EXPECT_THAT(LoadError("scheduler:\n  policy: fcfs\n  max_queue_delay: -2s\n"),
              HasSubstr(":3: scheduler.max_queue_delay: bad duration '-2s'"));
}

TEST(ChoiceKeyTest, NewChoicesListWhatIsAccepted) {
  EXPECT_EQ(LoadError("scheduler:\n  policy: lifo\n"),
            ":2: scheduler.policy: 'lifo' is not one of cache_aware, fcfs");
  EXPECT_EQ(LoadError("scheduler:\n  preemption: kill\n"),
            ":2: scheduler.preemption: 'kill' is not one of auto, swap, recompute");
  EXPECT_EQ(LoadError("logging:\n  format: xml\n"),
            ":2: logging.format: 'xml' is not one of text, json");
  EXPECT_EQ(LoadError("logging:\n  level: trace\n"),
            ":2: logging.level: 'trace' is not one of debug, info, warning, error");
  for (const char* backend : {"auto", "cpu", "cuda"}) {
    absl::StatusOr<DaemonConfig> config = Load(std::string("engine:\n  backend: ") + backend);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->engine.backend, backend);
  }
}

TEST(CrossFieldTest, TlsNeedsBothFilesAndNamesTheMissingOne) {
  EXPECT_EQ(LoadError("tls:\n  cert_file: /etc/strata/cert.pem\n"),
            ":2: tls.cert_file is set but tls.key_file is empty: TLS needs the certificate's "
            "private key too (set both or neither)");
  EXPECT_EQ(LoadError("model:\n  path: /m\ntls:\n  cert_file: \"\"\n  key_file: /k.pem\n"),
            ":5: tls.key_file is set but tls.cert_file is empty: TLS needs the certificate too "
            "(set both or neither)");
  absl::StatusOr<DaemonConfig> both = Load("tls:\n  cert_file: /c.pem\n  key_file: /k.pem\n");
  EXPECT_TRUE(both.ok()) << both.status();
  DaemonConfig config;
  config.tls.cert_file = "/c.pem";
  const absl::Status status = ValidateDaemonConfig(config);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("tls.key_file is empty"));
}

TEST(CrossFieldTest, MetricsAndGrpcNeedDifferentSockets) {
  EXPECT_EQ(LoadError("server:\n  listen: a:1\nmetrics:\n  listen: a:1\n"),
            ":4: metrics.listen (a:1) and server.listen (a:1) are the same socket: give them "
            "different ports");
  // metrics.listen left at its default: the line is server.listen's.
  EXPECT_THAT(LoadError("model:\n  path: /m\nserver:\n  listen: 127.0.0.1:9400\n"),
              HasSubstr(":4: metrics.listen (127.0.0.1:9400) and server.listen"));
  // A wildcard host takes the port on every address.
  EXPECT_THAT(LoadError("server:\n  listen: 0.0.0.0:7000\nmetrics:\n  listen: 10.0.0.1:7000\n"),
              HasSubstr(":4: metrics.listen (10.0.0.1:7000) and server.listen (0.0.0.0:7000)"));
  // Port 0 is a fresh ephemeral port each; other ports or hosts are distinct.
  for (const char* yaml : {"server:\n  listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\n",
                           "server:\n  listen: a:1\nmetrics:\n  listen: a:2\n",
                           "server:\n  listen: 10.0.0.1:1\nmetrics:\n  listen: 10.0.0.2:1\n",
                           "server:\n  listen: a:1\nmetrics:\n  listen: \"\"\n"}) {
    absl::StatusOr<DaemonConfig> config = Load(yaml);
    EXPECT_TRUE(config.ok()) << yaml << config.status();
  }
}

TEST(CrossFieldTest, AuthTokensAndTenantsAreNonEmpty) {
  EXPECT_EQ(LoadError("auth:\n  shared_prefix: x\n  tokens: {\"\": acme}\n"),
            ":3: auth.tokens: tokens and tenant names must be non-empty");
  EXPECT_EQ(LoadError("auth:\n  tokens:\n    sk-1: \"\"\n"),
            ":2: auth.tokens: tokens and tenant names must be non-empty");
}

TEST(CrossFieldTest, TokenWithWhitespaceIsRefusedWithoutEchoingIt) {
  const std::string message = LoadError("auth:\n  tokens:\n    \"sk secret\": acme\n");
  EXPECT_EQ(message,
            ":2: auth.tokens: the token of tenant 'acme' contains whitespace, which a bearer "
            "token cannot carry");
  EXPECT_THAT(message, Not(HasSubstr("secret")));
}

// Free text goes out as YAML double-quoted scalars with escapes, so that a
// multi-line system prompt and odd tokens read back byte for byte.
TEST(DumpQuotingTest, FreeTextRoundTrips) {
  DaemonConfig config;
  config.auth.shared_prefix =
      "You are \"Strata\".\nRules:\n\t1. be brief\\\r\n\x01\x1f\x7f caf\xc3\xa9 \xe2\x98\x83 ";
  config.auth.tokens["sk-\"quoted\"\\"] = "ten\nant";
  config.auth.tokens["sk-plain"] = "acme";
  config.model.path = "/models/with space/and:colon #hash";
  const std::string dump = DumpConfig(config);
  EXPECT_THAT(dump, HasSubstr("\\nRules:\\n\\t1. be brief\\\\\\r\\n\\x01\\x1F\\x7F caf"));
  absl::StatusOr<DaemonConfig> again = ParseConfig(dump, "dump");
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << dump;
  EXPECT_EQ(again->auth.shared_prefix, config.auth.shared_prefix);
  EXPECT_EQ(again->auth.tokens, config.auth.tokens);
  EXPECT_EQ(again->model.path, config.model.path);
  EXPECT_EQ(DumpConfig(*again), dump);
}

TEST(DumpQuotingTest, BlockScalarsLoad) {
  absl::StatusOr<DaemonConfig> config =
      Load("auth:\n  shared_prefix: |\n    line one\n    line two\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->auth.shared_prefix, "line one\nline two\n");
}

// The multi-tenant example is what its name says.
TEST(ExampleConfigsTest, MultiTenantHasTenantsAndASharedPrefix) {
  absl::StatusOr<DaemonConfig> config =
      LoadConfig((fs::path(STRATA_SOURCE_DIR) / "configs/examples/multi-tenant.yaml").string());
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_GE(config->auth.tokens.size(), 2u);
  EXPECT_FALSE(config->auth.shared_prefix.empty());
  EXPECT_TRUE(config->tls.cert_file.empty());  // commented out: no certificates ship
}

}  // namespace
}  // namespace strata::server
