// /metrics of the real daemon: the exposition passes `promtool check
// metrics`, and a real Prometheus server (Debian's /usr/bin/prometheus, on
// loopback with private storage) scrapes it; the test reads the time-to-
// first-token count and the prefix-cache hits back through Prometheus's
// HTTP query API after generating requests, and evaluates every PromQL
// expression of the Grafana dashboard (deploy/grafana/strata-dashboard.json)
// there: each must parse and return series.
#include <signal.h>

#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"
#include "tests/server/metrics/promtool_util.h"

namespace strata {
namespace {

using testing::DaemonProcess;

std::string UrlEncode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '_' || c == '-' || c == '.') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The value of an instant query's first sample; nullopt while Prometheus
// has none (not up yet, or not scraped yet).
std::optional<double> QueryValue(const std::string& prometheus, const std::string& query) {
  const testing::HttpResponse response =
      testing::HttpGet(prometheus, absl::StrCat("/api/v1/query?query=", UrlEncode(query)));
  if (response.status != 200) return std::nullopt;
  const nlohmann::json json = nlohmann::json::parse(response.body, nullptr, false);
  if (json.is_discarded() || json.value("status", "") != "success") return std::nullopt;
  const nlohmann::json& result = json["data"]["result"];
  if (!result.is_array() || result.empty()) return std::nullopt;
  return std::stod(result[0]["value"][1].get<std::string>());
}

struct QueryOutcome {
  std::string error;  // Prometheus's error for a bad query; empty otherwise
  size_t series = 0;  // how many series the instant query returned
};

QueryOutcome Query(const std::string& prometheus, const std::string& query) {
  const testing::HttpResponse response =
      testing::HttpGet(prometheus, absl::StrCat("/api/v1/query?query=", UrlEncode(query)));
  const nlohmann::json json = nlohmann::json::parse(response.body, nullptr, false);
  QueryOutcome outcome;
  if (json.is_discarded()) {
    outcome.error = absl::StrCat("HTTP ", response.status, ": ", response.body);
  } else if (json.value("status", "") != "success") {
    outcome.error = json.value("error", response.body);
  } else if (json["data"]["result"].is_array()) {
    outcome.series = json["data"]["result"].size();
  }
  return outcome;
}

// Every PromQL expression of the shipped Grafana dashboard, with its
// variables bound as Grafana would for "all instances".
std::vector<std::string> DashboardExpressions() {
  std::ifstream in(std::string(STRATA_SOURCE_DIR) + "/deploy/grafana/strata-dashboard.json");
  const nlohmann::json dashboard = nlohmann::json::parse(in, nullptr, false);
  std::vector<std::string> expressions;
  if (dashboard.is_discarded()) return expressions;
  for (const nlohmann::json& panel : dashboard["panels"]) {
    for (const nlohmann::json& target : panel["targets"]) {
      std::string expr = target["expr"].get<std::string>();
      for (const auto& [variable, value] :
           {std::pair<std::string, std::string>{"$__rate_interval", "1m"}, {"$instance", ".*"}}) {
        for (size_t at = expr.find(variable); at != std::string::npos;
             at = expr.find(variable, at + value.size())) {
          expr.replace(at, variable.size(), value);
        }
      }
      expressions.push_back(expr);
    }
  }
  return expressions;
}

// Polls until the query's value reaches `at_least` (true) or three minutes
// pass (false).
bool WaitForValue(const std::string& prometheus, const std::string& query, double at_least,
                  double* last) {
  for (int i = 0; i < 1800; ++i) {
    const std::optional<double> value = QueryValue(prometheus, query);
    if (value) *last = *value;
    if (value && *value >= at_least) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

TEST(PrometheusScrapeTest, PromtoolPassesAndPrometheusReadsTtftAndCacheHits) {
  testing::TempDir dir;
  std::unique_ptr<DaemonProcess> daemon =
      DaemonProcess::Serve(dir.path(), testing::BaseConfigYaml());
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  ASSERT_FALSE(daemon->metrics_address().empty());

  // Three requests; the last two repeat the first prompt's whole blocks.
  auto stub = testing::NewStub(daemon->grpc_address());
  const std::string prompt =
      "A lighthouse keeper wrote a letter every evening to the ships that passed in the night.";
  for (int i = 0; i < 3; ++i) {
    const testing::Generation result =
        testing::StreamGenerate(*stub, testing::TextRequest(prompt, 6, 0.5f, 1 + i));
    ASSERT_TRUE(result.status.ok()) << result.status.error_message();
  }

  // The engine reports a request finished right after its last event, so the
  // count may trail the replies by a moment.
  testing::HttpResponse scrape;
  for (int i = 0; i < 600; ++i) {
    scrape = testing::HttpGet(daemon->metrics_address(), "/metrics");
    if (scrape.body.find("strata_time_to_first_token_seconds_count 3\n") != std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(scrape.status, 200);
  EXPECT_NE(scrape.body.find("strata_time_to_first_token_seconds_count 3\n"), std::string::npos)
      << scrape.body;
  const metrics::testing::PromtoolResult promtool = metrics::testing::RunPromtoolCheck(scrape.body);
  EXPECT_EQ(promtool.exit_code, 0) << promtool.output;

  const int port = testing::FreeLoopbackPort();
  ASSERT_GT(port, 0);
  const std::string prometheus_address = absl::StrCat("127.0.0.1:", port);
  testing::WriteTextFile(dir.path() / "prometheus.yml",
                         absl::StrCat("global:\n"
                                      "  scrape_interval: 1s\n"
                                      "  evaluation_interval: 1s\n"
                                      "scrape_configs:\n"
                                      "  - job_name: strata\n"
                                      "    static_configs:\n"
                                      "      - targets: [\"",
                                      daemon->metrics_address(), "\"]\n"));
  std::unique_ptr<DaemonProcess> prometheus = DaemonProcess::SpawnProgram(
      dir.path(), "/usr/bin/prometheus",
      {absl::StrCat("--config.file=", (dir.path() / "prometheus.yml").string()),
       absl::StrCat("--storage.tsdb.path=", (dir.path() / "tsdb").string()),
       absl::StrCat("--web.listen-address=", prometheus_address)},
      "prometheus");
  ASSERT_NE(prometheus, nullptr);

  double ttft_count = 0;
  EXPECT_TRUE(
      WaitForValue(prometheus_address, "strata_time_to_first_token_seconds_count", 3, &ttft_count))
      << "last value " << ttft_count << "\n"
      << prometheus->Stderr();
  EXPECT_EQ(ttft_count, 3);
  double hits = 0;
  EXPECT_TRUE(WaitForValue(prometheus_address, "strata_prefix_cache_hits_total", 1, &hits));
  double device_hits = 0;
  EXPECT_TRUE(WaitForValue(prometheus_address,
                           "strata_prompt_tokens_by_source_total{source=\"device_hit\"}", 1,
                           &device_hits));
  EXPECT_EQ(device_hits, hits);
  double up = 0;
  EXPECT_TRUE(WaitForValue(prometheus_address, "up{job=\"strata\"}", 1, &up));

  // The dashboard's expressions: a bad one is an error at once; a good one
  // returns series once rate() has two samples in its window.
  const std::vector<std::string> expressions = DashboardExpressions();
  EXPECT_GE(expressions.size(), 20u);
  for (const std::string& expr : expressions) {
    QueryOutcome outcome;
    for (int i = 0; i < 300 && outcome.error.empty() && outcome.series == 0; ++i) {
      outcome = Query(prometheus_address, expr);
      if (outcome.error.empty() && outcome.series == 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    EXPECT_EQ(outcome.error, "") << expr;
    EXPECT_GT(outcome.series, 0u) << expr;
  }

  prometheus->Signal(SIGTERM);
  EXPECT_TRUE(prometheus->Reap().has_value());
  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

}  // namespace
}  // namespace strata
