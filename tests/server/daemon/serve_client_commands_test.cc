// The command lines of `strata serve` and `strata client` that end before
// any serving: --print-config, usage errors, an unreachable server.
#include <string>

#include "gtest/gtest.h"
#include "tests/server/commands/strata_runner.h"

namespace strata {
namespace {

using testing::RunStrata;

TEST(ServeCommandTest, PrintConfigShowsDefaultsWithOverrides) {
  const testing::StrataResult result =
      RunStrata({"serve", "--set", "scheduler.max_running=7", "--set",
                 "server.listen=127.0.0.1:6000", "--print-config"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.out.find("max_running: 7"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("127.0.0.1:6000"), std::string::npos) << result.out;
}

TEST(ServeCommandTest, UsageErrorsExitTwo) {
  EXPECT_EQ(RunStrata({"serve", "--random-weights"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"serve", "--model-config", "x.json"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"serve", "--no-such-option"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"serve", "--set"}).exit_code, 2);
}

TEST(ServeCommandTest, BadOverrideExitsOneNamingTheKey) {
  const testing::StrataResult result = RunStrata({"serve", "--set", "scheduler.max_runing=3"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("scheduler.max_runing"), std::string::npos) << result.err;
}

TEST(ClientCommandTest, UnreachableServerIsUnavailable) {
  const testing::StrataResult result =
      RunStrata({"client", "--server", "127.0.0.1:1", "--prompt", "hi", "--timeout-ms", "5000"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("UNAVAILABLE"), std::string::npos) << result.err;
  const testing::StrataResult health =
      RunStrata({"client", "--server", "127.0.0.1:1", "--health", "--timeout-ms", "5000"});
  EXPECT_EQ(health.exit_code, 1);
}

TEST(ClientCommandTest, BadArgumentsExitTwo) {
  EXPECT_EQ(RunStrata({"client", "--token-ids", "1,x"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"client", "--timeout-ms", "-1"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"client", "--bogus"}).exit_code, 2);
}

}  // namespace
}  // namespace strata
