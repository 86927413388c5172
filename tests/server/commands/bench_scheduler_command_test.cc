// `strata bench scheduler` runs every suite under each of its policies end to end
// at a tiny scale, and its last line is the JSON the issue specifies. No
// timings are compared: only the structure, and which policies hit the cache.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/commands/strata_runner.h"

namespace strata::testing {
namespace {

std::string LastLine(const std::string& out) {
  std::string text = out;
  if (!text.empty() && text.back() == '\n') text.pop_back();
  const size_t newline = text.rfind('\n');
  return newline == std::string::npos ? text : text.substr(newline + 1);
}

TEST(BenchSchedulerCommandTest, PrintsEveryWorkloadAndPolicyAsJsonLast) {
  const StrataResult result =
      RunStrata({"bench", "scheduler", "--scale", "0.1", "--threads", "1", "--json"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_FALSE(result.out.empty());
  EXPECT_EQ(result.out.back(), '\n');
  // The readable table comes first.
  EXPECT_THAT(result.out, ::testing::HasSubstr("strata / fcfs_prefix"));
  const nlohmann::json json = nlohmann::json::parse(LastLine(result.out), nullptr, false);
  ASSERT_TRUE(json.is_object()) << LastLine(result.out);
  ASSERT_EQ(json.size(), 5u);
  for (const char* workload : {"chat", "shared_prefix", "agents"}) {
    ASSERT_TRUE(json.contains(workload)) << workload;
    ASSERT_EQ(json[workload].size(), 3u) << workload;
    for (const char* policy : {"fcfs_nocache", "fcfs_prefix", "strata"}) {
      SCOPED_TRACE(std::string(workload) + " / " + policy);
      ASSERT_TRUE(json[workload].contains(policy));
      const nlohmann::json& figures = json[workload][policy];
      EXPECT_EQ(figures.size(), 6u);
      ASSERT_TRUE(figures["throughput_tok_s"].is_number());
      ASSERT_TRUE(figures["ttft_p50_s"].is_number());
      ASSERT_TRUE(figures["ttft_p99_s"].is_number());
      ASSERT_TRUE(figures["e2e_p50_s"].is_number());
      ASSERT_TRUE(figures["e2e_p99_s"].is_number());
      ASSERT_TRUE(figures["hit_tokens"].is_number_integer());
      EXPECT_GT(figures["throughput_tok_s"].get<double>(), 0);
      EXPECT_GT(figures["ttft_p50_s"].get<double>(), 0);
      EXPECT_GE(figures["ttft_p99_s"].get<double>(), figures["ttft_p50_s"].get<double>());
      EXPECT_GE(figures["e2e_p99_s"].get<double>(), figures["e2e_p50_s"].get<double>());
      EXPECT_GE(figures["e2e_p50_s"].get<double>(), figures["ttft_p50_s"].get<double>());
    }
    // The cache-off baseline never reuses KV; the cache policies do, and in
    // the agents workload (device too small for every agent) from the host tier.
    EXPECT_EQ(json[workload]["fcfs_nocache"]["hit_tokens"].get<int64_t>(), 0) << workload;
    EXPECT_GT(json[workload]["fcfs_prefix"]["hit_tokens"].get<int64_t>(), 0) << workload;
    EXPECT_GT(json[workload]["strata"]["hit_tokens"].get<int64_t>(), 0) << workload;
  }
  // Cyclic agents: LRU evicts each agent just before its turn and, with no
  // lower tier, never hits; steps-to-execution retention keeps the agents
  // that run soonest; with a disk tier both hit.
  EXPECT_THAT(result.out, ::testing::HasSubstr("kvflow_disk / lru_disk"));
  const nlohmann::json& cyclic = json["cyclic_agents"];
  ASSERT_EQ(cyclic.size(), 4u);
  EXPECT_EQ(cyclic["lru"]["hit_tokens"].get<int64_t>(), 0);
  EXPECT_GT(cyclic["kvflow"]["hit_tokens"].get<int64_t>(), 0);
  EXPECT_GT(cyclic["lru_disk"]["hit_tokens"].get<int64_t>(), 0);
  EXPECT_GT(cyclic["kvflow_disk"]["hit_tokens"].get<int64_t>(),
            cyclic["kvflow"]["hit_tokens"].get<int64_t>());
  const nlohmann::json& sessions = json["sessions"];
  ASSERT_EQ(sessions.size(), 3u);
  for (const char* policy : {"fcfs_recompute", "strata_recompute", "strata"}) {
    ASSERT_TRUE(sessions.contains(policy)) << policy;
    EXPECT_GT(sessions[policy]["throughput_tok_s"].get<double>(), 0) << policy;
  }
  EXPECT_THAT(result.out, ::testing::HasSubstr("strata / fcfs_recompute"));
}

TEST(BenchSchedulerCommandTest, RunsASubsetOfWorkloadsWithoutJson) {
  const StrataResult result = RunStrata(
      {"bench", "scheduler", "--scale", "0.05", "--threads", "1", "--workloads", "agents"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, ::testing::HasSubstr("agents"));
  EXPECT_THAT(result.out, ::testing::Not(::testing::HasSubstr("shared_prefix")));
  EXPECT_THAT(result.out, ::testing::Not(::testing::HasSubstr("{\"")));
}

TEST(BenchSchedulerCommandTest, BadArgumentsAreUsageErrors) {
  EXPECT_EQ(RunStrata({"bench", "scheduler", "--scale", "0"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"bench", "scheduler", "--workloads", "chat,nope"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"bench", "scheduler", "--reps", "0"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"bench", "scheduler", "--write-behind-blocks", "-1"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"bench", "scheduler", "--bogus"}).exit_code, 2);
  const StrataResult missing = RunStrata({"bench", "scheduler", "--config", "/nonexistent.json"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.err, ::testing::HasSubstr("/nonexistent.json"));
}

}  // namespace
}  // namespace strata::testing
