// A malformed config stops `strata serve` before it listens: exit code 1 and
// "file:line: key: message" on stderr. Each kind of mistake once: an unknown
// key, a wrong type, an out-of-range value, YAML that does not parse, a bad
// --set override, and a cross-field rule.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"

namespace strata {
namespace {

using testing::DaemonProcess;

struct ConfigCase {
  std::string name;
  std::string yaml;
  std::vector<std::string> extra_args;
  std::vector<std::string> expected;  // substrings of stderr
  bool names_file = true;             // the config file's path is among them
};

class ConfigErrorsTest : public ::testing::TestWithParam<ConfigCase> {};

TEST_P(ConfigErrorsTest, ExitsNonZeroBeforeListeningNamingFileLineAndKey) {
  const ConfigCase& c = GetParam();
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(dir.path(), c.yaml, c.extra_args);
  ASSERT_NE(daemon, nullptr);
  const std::optional<int> code = daemon->Reap();
  ASSERT_TRUE(code.has_value()) << "still running: " << daemon->Stderr();
  EXPECT_EQ(*code, 1);
  const std::string err = daemon->Stderr();
  EXPECT_EQ(err.find("event=listening"), std::string::npos) << err;
  if (c.names_file) {
    EXPECT_NE(err.find((dir.path() / "strata.yaml").string()), std::string::npos) << err;
  }
  for (const std::string& expected : c.expected) {
    EXPECT_NE(err.find(expected), std::string::npos) << "want \"" << expected << "\" in: " << err;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, ConfigErrorsTest,
    ::testing::Values(
        ConfigCase{"unknown_key",
                   "server:\n  listen: \"127.0.0.1:0\"\nscheduler:\n  max_runing: 4\n",
                   {},
                   {"strata.yaml:4:", "scheduler.max_runing", "max_running"}},
        ConfigCase{"wrong_type",
                   "server:\n  listen: \"127.0.0.1:0\"\n  max_concurrent_streams: lots\n",
                   {},
                   {"strata.yaml:3:", "server.max_concurrent_streams"}},
        ConfigCase{"out_of_range",
                   "server:\n  listen: \"127.0.0.1:0\"\nmetrics:\n  listen: \"\"\n"
                   "scheduler:\n  max_running: -5\n",
                   {},
                   {"strata.yaml:6:", "scheduler.max_running"}},
        ConfigCase{"bad_yaml",
                   "server:\n  listen: \"127.0.0.1:0\"\nengine: [cpu,\n",
                   {},
                   {"strata.yaml:"}},
        ConfigCase{"bad_enum",
                   "server:\n  listen: \"127.0.0.1:0\"\n\nlogging:\n  level: loud\n",
                   {},
                   {"strata.yaml:5:", "logging.level"}},
        ConfigCase{"bad_override",
                   "server:\n  listen: \"127.0.0.1:0\"\n",
                   {"--set", "cache.block_size=many"},
                   {"cache.block_size"},
                   /*names_file=*/false},
        ConfigCase{"cross_field",
                   "server:\n  listen: \"127.0.0.1:0\"\ntls:\n  cert_file: /nonexistent.pem\n",
                   {},
                   {"tls.key_file"},
                   /*names_file=*/false}),
    [](const ::testing::TestParamInfo<ConfigCase>& info) { return info.param.name; });

TEST(ConfigFileTest, MissingFileIsNamed) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Spawn(
      dir.path(), {"serve", "--config", (dir.path() / "absent.yaml").string()});
  ASSERT_NE(daemon, nullptr);
  const std::optional<int> code = daemon->Reap();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 1);
  EXPECT_NE(daemon->Stderr().find("absent.yaml"), std::string::npos) << daemon->Stderr();
}

}  // namespace
}  // namespace strata
