// `strata bench cache` runs end to end on a short prompt; the benchmark
// itself fails unless the host and disk cases really hit their tier. No
// timings are checked.
#include <string>

#include "gtest/gtest.h"
#include "server/commands/bench_cache.h"

namespace strata::server {
namespace {

TEST(BenchCacheCommandTest, RunsEveryCaseThroughItsTier) {
  EXPECT_EQ(RunBenchCache({"--prompt-tokens", "64", "--reps", "1", "--threads", "1", "--json"}), 0);
}

TEST(BenchCacheCommandTest, RunsSeveralPromptLengthsSideBySide) {
  testing::internal::CaptureStdout();
  const int code = RunBenchCache({"--prompt-tokens", "64,96", "--reps", "1", "--threads", "1"});
  const std::string out = testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);
  // A row per length in the timings, the ratios and the bytes moved.
  for (const char* row : {"\n    64 ", "\n    96 "}) {
    size_t count = 0;
    for (size_t at = out.find(row); at != std::string::npos; at = out.find(row, at + 1)) ++count;
    EXPECT_EQ(count, 3u) << row << "\n" << out;
  }
  EXPECT_NE(out.find("host/device"), std::string::npos) << out;
  EXPECT_NE(out.find("cold/disk"), std::string::npos) << out;
}

TEST(BenchCacheCommandTest, HelpPrintsTheUsage) {
  testing::internal::CaptureStdout();
  EXPECT_EQ(RunBenchCache({"--help"}), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("--prompt-tokens"), std::string::npos);
}

TEST(BenchCacheCommandTest, BadArgumentsAreUsageErrors) {
  EXPECT_NE(RunBenchCache({"--prompt-tokens", "8"}), 0);
  EXPECT_NE(RunBenchCache({"--prompt-tokens", "64,x"}), 0);
  EXPECT_NE(RunBenchCache({"--prompt-tokens", "64,8"}), 0);
  EXPECT_NE(RunBenchCache({"--config", "/nonexistent.json"}), 0);
  EXPECT_NE(RunBenchCache({"--write-behind-blocks", "-1"}), 0);
  EXPECT_NE(RunBenchCache({"--write-behind-blocks", "many"}), 0);
}

}  // namespace
}  // namespace strata::server
