// `strata bench serve` against a real daemon serving the ~20M random-weight
// bench model: every workload replays to the end without errors, every
// request generates exactly its tokens, and the cache-friendly workloads
// report cache hits.
#include <signal.h>

#include <string>

#include "bench/workloads.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/server/commands/strata_runner.h"

namespace strata {
namespace {

using testing::DaemonProcess;

TEST(BenchServeTest, ReplaysEveryWorkloadAndReportsItsFigures) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(
      dir.path(), testing::BaseConfigYaml("64MiB"),
      {"--random-weights", "--model-config", STRATA_SOURCE_DIR "/bench/configs/llama-20m-4k.json"});
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();

  const testing::StrataResult run =
      testing::RunStrata({"bench", "serve", "--server", daemon->grpc_address(), "--scale", "0.1",
                          "--rate", "20", "--seed", "3", "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  const std::string last_line = run.out.substr(run.out.rfind('\n', run.out.size() - 2) + 1);
  const nlohmann::json json = nlohmann::json::parse(last_line, nullptr, false);
  ASSERT_FALSE(json.is_discarded()) << run.out;

  bench::WorkloadShapes shapes = bench::ScaledShapes(0.1);
  shapes.chat.sessions_per_s = 20;
  shapes.shared_prefix.requests_per_s = 20;
  for (const bench::Workload& workload : bench::MakeWorkloads(shapes, 32000, 3)) {
    SCOPED_TRACE(workload.name);
    ASSERT_TRUE(json.contains(workload.name)) << last_line;
    const nlohmann::json& figures = json[workload.name];
    int64_t expected_output = 0;
    for (const bench::WorkloadRequest& request : workload.requests) {
      expected_output += request.max_tokens;
    }
    EXPECT_EQ(figures["requests"].get<int64_t>(), static_cast<int64_t>(workload.requests.size()));
    EXPECT_EQ(figures["errors"].get<int64_t>(), 0);
    EXPECT_EQ(figures["output_tokens"].get<int64_t>(), expected_output);
    EXPECT_GT(figures["throughput_tok_s"].get<double>(), 0);
    EXPECT_GT(figures["ttft_p50_s"].get<double>(), 0);
    EXPECT_LE(figures["ttft_p50_s"].get<double>(), figures["ttft_p90_s"].get<double>());
    EXPECT_LE(figures["ttft_p90_s"].get<double>(), figures["ttft_p99_s"].get<double>());
    EXPECT_GT(figures["tpot_p50_s"].get<double>(), 0);
    if (workload.name != "agents") {
      EXPECT_GT(figures["cache_hit_rate"].get<double>(), 0);
    }
  }
  EXPECT_NE(run.out.find("ttft p50"), std::string::npos) << run.out;

  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

TEST(BenchServeTest, UnreachableServerFails) {
  const testing::StrataResult run = testing::RunStrata(
      {"bench", "serve", "--server", "127.0.0.1:1", "--workload", "chat", "--scale", "0.1"});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find("UNAVAILABLE"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace strata
