#include "server/metrics/strata_metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/metrics/promtool_util.h"

namespace strata::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(StrataMetricsTest, RegistersEveryDesignMetricWithItsType) {
  prometheus::Registry registry(prometheus::Registry::InsertBehavior::Throw);
  absl::StatusOr<StrataMetrics> metrics = StrataMetrics::Register(&registry);
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::string text = ExpositionText(registry);
  const std::pair<const char*, const char*> expected[] = {
      {"strata_time_to_first_token_seconds", "histogram"},
      {"strata_inter_token_latency_seconds", "histogram"},
      {"strata_e2e_request_latency_seconds", "histogram"},
      {"strata_request_queue_time_seconds", "histogram"},
      {"strata_num_requests_running", "gauge"},
      {"strata_num_requests_waiting", "gauge"},
      {"strata_kv_cache_usage_perc", "gauge"},
      {"strata_prompt_tokens_total", "counter"},
      {"strata_generation_tokens_total", "counter"},
      {"strata_request_success_total", "counter"},
      {"strata_num_preemptions_total", "counter"},
      {"strata_prefix_cache_queries_total", "counter"},
      {"strata_prefix_cache_hits_total", "counter"},
      {"strata_prompt_tokens_by_source_total", "counter"},
      {"strata_kv_blocks", "gauge"},
      {"strata_kv_transfer_bytes_total", "counter"},
      {"strata_kv_transfer_seconds", "histogram"},
      {"strata_kv_evicted_blocks_total", "counter"},
      {"strata_kv_load_decisions_total", "counter"},
      {"strata_kv_read_bytes_per_second", "gauge"},
      {"strata_prefill_tokens_per_second", "gauge"},
      {"strata_kv_disk_not_admitted_blocks_total", "counter"},
      {"strata_kv_disk_not_admitted_bytes_total", "counter"},
      {"strata_kv_written_behind_blocks_total", "counter"},
      {"strata_step_duration_seconds", "histogram"},
      {"strata_batch_tokens", "histogram"},
  };
  for (const auto& [name, type] : expected) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name + " " + type + "\n")) << name;
  }
  // Labelled series exist (at zero) before anything happens.
  for (const char* source :
       {"compute", "device_hit", "host_hit", "disk_hit", "blend_reuse", "blend_recompute"}) {
    EXPECT_THAT(text, HasSubstr(std::string("strata_prompt_tokens_by_source_total{source=\"") +
                                source + "\"} 0\n"));
  }
  EXPECT_THAT(text, HasSubstr("strata_kv_blocks{state=\"cached\",tier=\"host\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("strata_kv_transfer_bytes_total{from=\"disk\",to=\"device\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("strata_kv_transfer_seconds_count{from=\"host\",to=\"device\"} 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("from=\"host\",to=\"host\"")));
  EXPECT_THAT(text, HasSubstr("strata_kv_evicted_blocks_total{tier=\"disk\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("strata_request_success_total{finished_reason=\"abort\"} 0\n"));

  // Registering twice on one registry is a duplicate, named in the error.
  const absl::Status twice = StrataMetrics::Register(&registry).status();
  EXPECT_EQ(twice.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(twice.message()), HasSubstr("strata_"));
}

TEST(StrataMetricsTest, UpdatesShowInTheExpositionWhichPassesPromtool) {
  prometheus::Registry registry(prometheus::Registry::InsertBehavior::Throw);
  StrataMetrics metrics = *StrataMetrics::Register(&registry);
  metrics.time_to_first_token_seconds->Observe(0.03);
  metrics.inter_token_latency_seconds->Observe(0.02);
  metrics.num_requests_running->Set(3);
  metrics.prompt_tokens_total->Increment(128);
  metrics.request_success_total->Add({{"finished_reason", "stop"}}).Increment();
  metrics.prompt_tokens_by_source(TokenSource::kBlendRecompute).Increment(7);
  metrics.kv_transfer_seconds[2][0]->Observe(0.004);
  metrics.batch_tokens->Observe(512);

  const std::string text = ExpositionText(registry);
  EXPECT_THAT(text, HasSubstr("strata_num_requests_running 3\n"));
  EXPECT_THAT(text, HasSubstr("strata_prompt_tokens_total 128\n"));
  EXPECT_THAT(text, HasSubstr("strata_request_success_total{finished_reason=\"stop\"} 1\n"));
  EXPECT_THAT(text,
              HasSubstr("strata_prompt_tokens_by_source_total{source=\"blend_recompute\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("strata_kv_transfer_seconds_count{from=\"disk\",to=\"device\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("strata_batch_tokens_bucket{le=\"512\"} 1\n"));

  const testing::PromtoolResult result = testing::RunPromtoolCheck(text);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, IsEmpty());
}

TEST(StrataMetricsTest, CacheUpdaterAddsGrowthAndSetsGauges) {
  prometheus::Registry registry(prometheus::Registry::InsertBehavior::Throw);
  StrataMetrics metrics = *StrataMetrics::Register(&registry);
  CacheMetricsUpdater updater(&metrics);

  CacheMetricsSnapshot snapshot;
  snapshot.device_usage = 0.5;
  snapshot.query_tokens = 100;
  snapshot.hit_tokens = {40, 10, 5};
  snapshot.bytes_moved[0][1] = 4096;
  snapshot.tiers[0].blocks = {6, 2, 8};
  snapshot.tiers[0].evicted_blocks = 3;
  snapshot.tiers[2].evicted_blocks = 1;
  updater.Update(snapshot);
  updater.Update(snapshot);  // nothing grew: counters stay

  EXPECT_EQ(metrics.kv_cache_usage_perc->Value(), 0.5);
  EXPECT_EQ(metrics.prefix_cache_queries_total->Value(), 100);
  EXPECT_EQ(metrics.prefix_cache_hits_total->Value(), 55);
  EXPECT_EQ(metrics.prompt_tokens_by_source(TokenSource::kDeviceHit).Value(), 40);
  EXPECT_EQ(metrics.prompt_tokens_by_source(TokenSource::kHostHit).Value(), 10);
  EXPECT_EQ(metrics.prompt_tokens_by_source(TokenSource::kDiskHit).Value(), 5);
  EXPECT_EQ(metrics.prompt_tokens_by_source(TokenSource::kCompute).Value(), 0);
  EXPECT_EQ(metrics.kv_transfer_bytes_total[0][1]->Value(), 4096);
  EXPECT_EQ(metrics.kv_blocks[0][static_cast<int>(KvBlockState::kUsed)]->Value(), 6);
  EXPECT_EQ(metrics.kv_blocks[0][static_cast<int>(KvBlockState::kFree)]->Value(), 8);
  EXPECT_EQ(metrics.kv_evicted_blocks_total[0]->Value(), 3);
  EXPECT_EQ(metrics.kv_evicted_blocks_total[2]->Value(), 1);

  snapshot.query_tokens = 150;
  snapshot.hit_tokens[1] = 30;
  snapshot.tiers[0].blocks = {1, 1, 14};
  // The disk store was replaced and counts from zero again: its new count is
  // all growth, and the counter does not go back.
  snapshot.tiers[2].evicted_blocks = 0;
  updater.Update(snapshot);
  snapshot.tiers[2].evicted_blocks = 2;
  updater.Update(snapshot);
  EXPECT_EQ(metrics.prefix_cache_queries_total->Value(), 150);
  EXPECT_EQ(metrics.prefix_cache_hits_total->Value(), 75);
  EXPECT_EQ(metrics.prompt_tokens_by_source(TokenSource::kHostHit).Value(), 30);
  EXPECT_EQ(metrics.kv_blocks[0][static_cast<int>(KvBlockState::kUsed)]->Value(), 1);
  EXPECT_EQ(metrics.kv_evicted_blocks_total[2]->Value(), 3);
}

TEST(StrataMetricsTest, LoadDecisionsAndDiskAdmissionFollowTheSnapshot) {
  prometheus::Registry registry(prometheus::Registry::InsertBehavior::Throw);
  StrataMetrics metrics = *StrataMetrics::Register(&registry);
  const std::string before = ExpositionText(registry);
  EXPECT_THAT(before, HasSubstr("strata_kv_load_decisions_total{decision=\"recompute\"} 0\n"));
  EXPECT_THAT(before, HasSubstr("strata_kv_read_bytes_per_second{tier=\"disk\"} 0\n"));
  EXPECT_THAT(before, Not(HasSubstr("strata_kv_read_bytes_per_second{tier=\"device\"}")));

  CacheMetricsUpdater updater(&metrics);
  CacheMetricsSnapshot snapshot;
  snapshot.load_decisions = {5, 2, 1};
  snapshot.read_bytes_per_second = {0, 4e9, 2e6};
  snapshot.prefill_tokens_per_second = 1500;
  snapshot.disk_not_admitted_blocks = 10;
  snapshot.disk_not_admitted_bytes = 10 * 4160;
  snapshot.written_behind_blocks = 7;
  updater.Update(snapshot);
  snapshot.written_behind_blocks = 9;
  snapshot.load_decisions[1] = 3;
  snapshot.read_bytes_per_second[2] = 1e6;
  updater.Update(snapshot);
  EXPECT_EQ(metrics.kv_load_decisions_total[0]->Value(), 5);
  EXPECT_EQ(metrics.kv_load_decisions_total[1]->Value(), 3);
  EXPECT_EQ(metrics.kv_load_decisions_total[2]->Value(), 1);
  EXPECT_EQ(metrics.kv_read_bytes_per_second[1]->Value(), 4e9);
  EXPECT_EQ(metrics.kv_read_bytes_per_second[2]->Value(), 1e6);  // a gauge: set, not added
  EXPECT_EQ(metrics.prefill_tokens_per_second->Value(), 1500);
  EXPECT_EQ(metrics.kv_disk_not_admitted_blocks_total->Value(), 10);
  EXPECT_EQ(metrics.kv_disk_not_admitted_bytes_total->Value(), 41600);
  EXPECT_EQ(metrics.kv_written_behind_blocks_total->Value(), 9);
}

}  // namespace
}  // namespace strata::metrics
