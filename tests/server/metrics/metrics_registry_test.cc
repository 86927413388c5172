#include "server/metrics/metrics_registry.h"

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/metrics/promtool_util.h"

namespace strata::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(MetricsRegistryTest, CounterOnlyGoesUp) {
  MetricsRegistry registry;
  absl::StatusOr<CounterFamily*> family = registry.AddCounter("requests_total", "Requests.");
  ASSERT_TRUE(family.ok()) << family.status();
  Counter& counter = (*family)->Labels({});
  EXPECT_EQ(counter.Value(), 0.0);
  counter.Inc();
  counter.Inc(2.5);
  counter.Inc(0.0);
  EXPECT_EQ(counter.Value(), 3.5);
  // The same label values give the same child.
  EXPECT_EQ(&(*family)->Labels({}), &counter);
  EXPECT_DEATH(counter.Inc(-1.0), "CHECK failed");
}

TEST(MetricsRegistryTest, GaugeSetIncDec) {
  MetricsRegistry registry;
  absl::StatusOr<GaugeFamily*> family = registry.AddGauge("queue_depth", "Depth.");
  ASSERT_TRUE(family.ok()) << family.status();
  Gauge& gauge = (*family)->Labels({});
  gauge.Set(10);
  gauge.Inc();
  gauge.Inc(4);
  gauge.Dec(20);
  EXPECT_EQ(gauge.Value(), -5.0);
  gauge.Set(0.25);
  EXPECT_EQ(gauge.Value(), 0.25);
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeAndInclusive) {
  MetricsRegistry registry;
  absl::StatusOr<HistogramFamily*> family =
      registry.AddHistogram("latency_seconds", "Latency.", {}, {0.1, 1.0, 10.0});
  ASSERT_TRUE(family.ok()) << family.status();
  Histogram& histogram = (*family)->Labels({});
  for (double v : {0.05, 0.1, 0.5, 1.0, 5.0, 100.0}) histogram.Observe(v);
  const Histogram::Snapshot snapshot = histogram.Collect();
  // le is inclusive: 0.1 counts in the 0.1 bucket, 1.0 in the 1 bucket.
  EXPECT_EQ(snapshot.cumulative_counts, (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_DOUBLE_EQ(snapshot.sum, 106.65);

  const std::string text = registry.Serialize();
  EXPECT_EQ(text,
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.1\"} 2\n"
            "latency_seconds_bucket{le=\"1\"} 4\n"
            "latency_seconds_bucket{le=\"10\"} 5\n"
            "latency_seconds_bucket{le=\"+Inf\"} 6\n"
            "latency_seconds_sum 106.65\n"
            "latency_seconds_count 6\n");
}

TEST(MetricsRegistryTest, LabelledChildrenAreOrderedAndEscaped) {
  MetricsRegistry registry;
  absl::StatusOr<CounterFamily*> family = registry.AddCounter(
      "events_total", "Events with \\ and\nnewline \"quoted\".", {"kind", "path"});
  ASSERT_TRUE(family.ok()) << family.status();
  (*family)->Labels({"b", "plain"}).Inc(2);
  (*family)->Labels({"a", "back\\slash \"quote\"\nline"}).Inc();
  EXPECT_EQ(registry.Serialize(),
            "# HELP events_total Events with \\\\ and\\nnewline \"quoted\".\n"
            "# TYPE events_total counter\n"
            "events_total{kind=\"a\",path=\"back\\\\slash \\\"quote\\\"\\nline\"} 1\n"
            "events_total{kind=\"b\",path=\"plain\"} 2\n");

  absl::StatusOr<Counter*> wrong = (*family)->TryLabels({"only_one"});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryTest, FamiliesAreOrderedByName) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.AddGauge("zeta", "Z.").ok());
  ASSERT_TRUE(registry.AddGauge("alpha", "A.").ok());
  (*registry.AddGauge("mid", "M.", {"x"}))->Labels({"1"}).Set(1);
  const std::string text = registry.Serialize();
  const size_t alpha = text.find("# HELP alpha");
  const size_t mid = text.find("# HELP mid");
  const size_t zeta = text.find("# HELP zeta");
  ASSERT_NE(alpha, std::string::npos);
  EXPECT_LT(alpha, mid);
  EXPECT_LT(mid, zeta);
  // Families without children still state HELP and TYPE, and no samples.
  EXPECT_THAT(text, HasSubstr("# TYPE alpha gauge\n# HELP mid"));
  EXPECT_EQ(text, registry.Serialize());
}

TEST(MetricsRegistryTest, RejectsBadNames) {
  MetricsRegistry registry;
  for (const char* name : {"", "1abc", "a-b", "a b", "__reserved", "é"}) {
    EXPECT_EQ(registry.AddGauge(name, "h").status().code(), absl::StatusCode::kInvalidArgument)
        << name;
  }
  EXPECT_TRUE(registry.AddGauge("ns:sub_metric", "Colons are fine in metric names.").ok());
  for (const char* label : {"", "a:b", "1x", "__name__", "a-b"}) {
    EXPECT_EQ(registry.AddGauge("labelled", "h", {label}).status().code(),
              absl::StatusCode::kInvalidArgument)
        << label;
  }
  EXPECT_EQ(registry.AddGauge("labelled", "h", {"a", "a"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddHistogram("h_seconds", "h", {"le"}, {1.0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryTest, EnforcesTotalSuffix) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.AddCounter("requests", "h").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddGauge("things_total", "h").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.AddHistogram("things_total", "h", {}, {1.0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(MetricsRegistryTest, RejectsBadBuckets) {
  MetricsRegistry registry;
  const double inf = std::numeric_limits<double>::infinity();
  for (const std::vector<double>& bounds :
       std::vector<std::vector<double>>{{1.0, 1.0}, {2.0, 1.0}, {1.0, inf}, {std::nan("")}}) {
    EXPECT_EQ(registry.AddHistogram("h_seconds", "h", {}, bounds).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  // Only +Inf is allowed too.
  EXPECT_TRUE(registry.AddHistogram("h_seconds", "h", {}, {}).ok());
}

TEST(MetricsRegistryTest, DuplicatesAndSampleNameClashesAreErrors) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.AddCounter("a_total", "h").ok());
  EXPECT_EQ(registry.AddCounter("a_total", "h").status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.AddHistogram("lat", "h", {}, {1.0}).ok());
  EXPECT_EQ(registry.AddGauge("lat", "h").status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddGauge("lat_count", "h").status().code(), absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(registry.AddGauge("x_sum", "h").ok());
  EXPECT_EQ(registry.AddHistogram("x", "h", {}, {1.0}).status().code(),
            absl::StatusCode::kAlreadyExists);
}

TEST(MetricsRegistryTest, ConcurrentIncrementsGiveExactTotals) {
  MetricsRegistry registry;
  CounterFamily* counters = *registry.AddCounter("hits_total", "h", {"shard"});
  HistogramFamily* histograms = *registry.AddHistogram("obs", "h", {}, {0.5});
  Counter& shared = counters->Labels({"shared"});
  Histogram& histogram = histograms->Labels({});
  constexpr int kThreads = 8;
  constexpr int kIncrements = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Child creation races with other threads' creation and increments.
      Counter& own = counters->Labels({std::to_string(t % 2)});
      for (int i = 0; i < kIncrements; ++i) {
        shared.Inc();
        own.Inc();
        histogram.Observe(1.0);
      }
    });
  }
  // Scrapes run concurrently with the updates.
  for (int i = 0; i < 20; ++i) EXPECT_THAT(registry.Serialize(), HasSubstr("hits_total"));
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(shared.Value(), kThreads * kIncrements);
  EXPECT_EQ(counters->Labels({"0"}).Value() + counters->Labels({"1"}).Value(),
            kThreads * kIncrements);
  const Histogram::Snapshot snapshot = histogram.Collect();
  EXPECT_EQ(snapshot.cumulative_counts.back(), uint64_t{kThreads * kIncrements});
  EXPECT_EQ(snapshot.sum, kThreads * kIncrements);
}

TEST(MetricsRegistryTest, FormatValue) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(3), "3");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsRegistryTest, ExpositionPassesPromtool) {
  MetricsRegistry registry;
  CounterFamily* counter =
      *registry.AddCounter("test_requests_total", "Requests \"served\".\\", {"code", "path"});
  counter->Labels({"200", "/a\"b\\c\nd"}).Inc(3);
  counter->Labels({"404", ""}).Inc();
  GaugeFamily* gauge = *registry.AddGauge("test_queue_depth", "Depth.");
  gauge->Labels({}).Set(-1.5);
  HistogramFamily* histogram = *registry.AddHistogram(
      "test_latency_seconds", "Latency\nin seconds.", {"route"}, TimeToFirstTokenBuckets());
  histogram->Labels({"x"}).Observe(0.003);
  histogram->Labels({"y"}).Observe(5000);
  ASSERT_TRUE(registry.AddGauge("test_empty_gauge", "No children yet.", {"a"}).ok());

  const testing::PromtoolResult result = testing::RunPromtoolCheck(registry.Serialize());
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, IsEmpty());
}

TEST(MetricsRegistryTest, PromtoolCatchesLintProblems) {
  // The check itself works: promtool flags a counter without _total.
  const testing::PromtoolResult result =
      testing::RunPromtoolCheck("# HELP bad x\n# TYPE bad counter\nbad 1\n");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.output, HasSubstr("_total"));
}

TEST(MetricsRegistryTest, DefaultBuckets) {
  for (const std::vector<double>& bounds :
       {TimeToFirstTokenBuckets(), InterTokenLatencyBuckets(), RequestLatencyBuckets()}) {
    ASSERT_FALSE(bounds.empty());
    for (size_t i = 1; i < bounds.size(); ++i) EXPECT_LT(bounds[i - 1], bounds[i]);
  }
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
}

}  // namespace
}  // namespace strata::metrics
