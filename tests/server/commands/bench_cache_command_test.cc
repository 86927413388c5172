// `strata bench cache` runs end to end on a short prompt; the benchmark
// itself fails unless the host and disk cases really hit their tier. No
// timings are checked.
#include "gtest/gtest.h"
#include "server/commands/bench_cache.h"

namespace strata::server {
namespace {

TEST(BenchCacheCommandTest, RunsEveryCaseThroughItsTier) {
  EXPECT_EQ(RunBenchCache({"--prompt-tokens", "64", "--reps", "1", "--threads", "1", "--json"}), 0);
}

TEST(BenchCacheCommandTest, BadArgumentsAreUsageErrors) {
  EXPECT_NE(RunBenchCache({"--prompt-tokens", "8"}), 0);
  EXPECT_NE(RunBenchCache({"--config", "/nonexistent.json"}), 0);
}

}  // namespace
}  // namespace strata::server
