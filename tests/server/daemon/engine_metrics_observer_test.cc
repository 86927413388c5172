#include "server/daemon/engine_metrics_observer.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/metrics/strata_metrics.h"
#include "tests/mocks/fake_tier_store.h"
#include "tests/server/metrics/promtool_util.h"

namespace strata::server {
namespace {

using metrics::KvBlockState;
using metrics::TokenSource;

constexpr int kDevice = 0;
constexpr int kHost = 1;
constexpr int kDisk = 2;

class EngineMetricsObserverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<metrics::StrataMetrics> registered =
        metrics::StrataMetrics::Register(&registry_);
    ASSERT_TRUE(registered.ok()) << registered.status();
    metrics_ = *registered;
  }

  uint64_t Count(const metrics::Histogram* histogram) const {
    return histogram->Collect().histogram.sample_count;
  }

  static scheduler::EngineSnapshot Snapshot() {
    scheduler::EngineSnapshot snapshot;
    snapshot.num_running = 2;
    snapshot.num_waiting = 3;
    snapshot.num_preemptions = 1;
    snapshot.device_blocks_total = 10;
    snapshot.device_blocks_used = 4;
    snapshot.device_blocks_cached = 3;
    snapshot.device_blocks_free = 3;
    snapshot.cache.query_tokens = 100;
    snapshot.cache.hit_tokens = {32, 16, 8};
    snapshot.cache.evicted_blocks = 2;
    snapshot.cache.bytes_moved[kDevice][kHost] = 4096;
    snapshot.cache.bytes_moved[kHost][kDevice] = 1024;
    return snapshot;
  }

  prometheus::Registry registry_{prometheus::Registry::InsertBehavior::Throw};
  metrics::StrataMetrics metrics_;
};

TEST_F(EngineMetricsObserverTest, StepFeedsQueueGaugesStepHistogramsAndDeviceCache) {
  EngineMetricsObserver observer(&metrics_);
  observer.OnStep({.duration_s = 0.004, .batch_tokens = 48, .num_sequences = 2}, Snapshot());

  EXPECT_EQ(metrics_.num_requests_running->Value(), 2);
  EXPECT_EQ(metrics_.num_requests_waiting->Value(), 3);
  EXPECT_EQ(metrics_.num_preemptions_total->Value(), 1);
  EXPECT_EQ(Count(metrics_.step_duration_seconds), 1u);
  EXPECT_DOUBLE_EQ(metrics_.step_duration_seconds->Collect().histogram.sample_sum, 0.004);
  EXPECT_DOUBLE_EQ(metrics_.batch_tokens->Collect().histogram.sample_sum, 48);
  const auto& device = metrics_.kv_blocks[kDevice];
  EXPECT_EQ(device[static_cast<int>(KvBlockState::kUsed)]->Value(), 4);
  EXPECT_EQ(device[static_cast<int>(KvBlockState::kCached)]->Value(), 3);
  EXPECT_EQ(device[static_cast<int>(KvBlockState::kFree)]->Value(), 3);
  EXPECT_DOUBLE_EQ(metrics_.kv_cache_usage_perc->Value(), 0.4);
  EXPECT_EQ(metrics_.prefix_cache_queries_total->Value(), 100);
  EXPECT_EQ(metrics_.prefix_cache_hits_total->Value(), 56);
  EXPECT_EQ(metrics_.prompt_tokens_by_source(TokenSource::kDeviceHit).Value(), 32);
  EXPECT_EQ(metrics_.prompt_tokens_by_source(TokenSource::kHostHit).Value(), 16);
  EXPECT_EQ(metrics_.prompt_tokens_by_source(TokenSource::kDiskHit).Value(), 8);
  EXPECT_EQ(metrics_.kv_transfer_bytes_total[kDevice][kHost]->Value(), 4096);
  EXPECT_EQ(metrics_.kv_transfer_bytes_total[kHost][kDevice]->Value(), 1024);
  EXPECT_EQ(metrics_.kv_evicted_blocks_total[kDevice]->Value(), 2);
}

TEST_F(EngineMetricsObserverTest, CumulativeFiguresAdvanceByTheirGrowth) {
  EngineMetricsObserver observer(&metrics_);
  scheduler::EngineSnapshot snapshot = Snapshot();
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, snapshot);
  snapshot.num_preemptions = 4;
  snapshot.cache.query_tokens = 150;
  snapshot.cache.hit_tokens[kDevice] = 40;
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, snapshot);
  EXPECT_EQ(metrics_.num_preemptions_total->Value(), 4);
  EXPECT_EQ(metrics_.prefix_cache_queries_total->Value(), 150);
  EXPECT_EQ(metrics_.prompt_tokens_by_source(TokenSource::kDeviceHit).Value(), 40);
  EXPECT_EQ(Count(metrics_.step_duration_seconds), 2u);
}

TEST_F(EngineMetricsObserverTest, IdleStepsLeaveTheStepHistogramsAlone) {
  EngineMetricsObserver observer(&metrics_);
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 0, .num_sequences = 0}, Snapshot());
  EXPECT_EQ(Count(metrics_.step_duration_seconds), 0u);
  EXPECT_EQ(Count(metrics_.batch_tokens), 0u);
  EXPECT_EQ(metrics_.num_requests_running->Value(), 2);
}

TEST_F(EngineMetricsObserverTest, FinishedRequestsFeedLatenciesTokensAndReasons) {
  EngineMetricsObserver observer(&metrics_);
  scheduler::RequestStats stats;
  stats.finish_reason = scheduler::FinishReason::kStop;
  stats.usage.prompt_tokens = 100;
  stats.usage.cached_tokens_by_tier = {32, 16, 0};
  stats.generated_tokens = 10;
  stats.queue_s = 0.01;
  stats.ttft_s = 0.05;
  stats.e2e_s = 0.2;
  observer.OnRequestFinished(stats);
  stats.finish_reason = scheduler::FinishReason::kDeadline;
  stats.ttft_s = -1;  // never produced a token
  stats.generated_tokens = 0;
  observer.OnRequestFinished(stats);
  observer.OnInterTokenLatency(0.02);

  EXPECT_EQ(Count(metrics_.time_to_first_token_seconds), 1u);
  EXPECT_DOUBLE_EQ(metrics_.time_to_first_token_seconds->Collect().histogram.sample_sum, 0.05);
  EXPECT_EQ(Count(metrics_.e2e_request_latency_seconds), 2u);
  EXPECT_EQ(Count(metrics_.request_queue_time_seconds), 2u);
  EXPECT_EQ(Count(metrics_.inter_token_latency_seconds), 1u);
  EXPECT_EQ(metrics_.prompt_tokens_total->Value(), 200);
  EXPECT_EQ(metrics_.generation_tokens_total->Value(), 10);
  EXPECT_EQ(metrics_.prompt_tokens_by_source(TokenSource::kCompute).Value(), 104);
  EXPECT_EQ(metrics_.request_success_total->Add({{"finished_reason", "stop"}}).Value(), 1);
  EXPECT_EQ(metrics_.request_success_total->Add({{"finished_reason", "deadline"}}).Value(), 1);
  EXPECT_EQ(metrics_.request_success_total->Add({{"finished_reason", "length"}}).Value(), 0);
}

TEST_F(EngineMetricsObserverTest, LowerTiersReportStoredBlocksAsCachedAndTheirEvictions) {
  storage::TierStoreStats host_stats;
  host_stats.blocks = 5;
  host_stats.used_bytes = 5 * 1000;
  host_stats.capacity_bytes = 8 * 1000;
  host_stats.evictions = 7;
  strata::testing::FakeTierStore host(1000, host_stats);
  storage::TierStoreStats disk_stats;  // empty: capacity measured in block_bytes
  disk_stats.capacity_bytes = 20 * 1000;
  strata::testing::FakeTierStore disk(1000, disk_stats);
  EngineMetricsObserver observer(&metrics_, &host, &disk);
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, Snapshot());

  const auto& h = metrics_.kv_blocks[kHost];
  EXPECT_EQ(h[static_cast<int>(KvBlockState::kUsed)]->Value(), 0);
  EXPECT_EQ(h[static_cast<int>(KvBlockState::kCached)]->Value(), 5);
  EXPECT_EQ(h[static_cast<int>(KvBlockState::kFree)]->Value(), 3);
  EXPECT_EQ(metrics_.kv_evicted_blocks_total[kHost]->Value(), 7);
  const auto& d = metrics_.kv_blocks[kDisk];
  EXPECT_EQ(d[static_cast<int>(KvBlockState::kCached)]->Value(), 0);
  EXPECT_EQ(d[static_cast<int>(KvBlockState::kFree)]->Value(), 20);

  host.stats().evictions = 9;
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, Snapshot());
  EXPECT_EQ(metrics_.kv_evicted_blocks_total[kHost]->Value(), 9);
}

TEST_F(EngineMetricsObserverTest, ExpositionShowsTheSeriesAndPassesPromtool) {
  EngineMetricsObserver observer(&metrics_);
  observer.OnStep({.duration_s = 0.004, .batch_tokens = 48, .num_sequences = 2}, Snapshot());
  scheduler::RequestStats stats{.finish_reason = scheduler::FinishReason::kLength,
                                .generated_tokens = 4,
                                .ttft_s = 0.03,
                                .e2e_s = 0.1};
  stats.usage.prompt_tokens = 20;
  observer.OnRequestFinished(stats);

  const std::string text = metrics::ExpositionText(registry_);
  EXPECT_NE(text.find("strata_num_requests_running 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("strata_kv_blocks{state=\"used\",tier=\"device\"} 4\n"), std::string::npos);
  EXPECT_NE(text.find("strata_request_success_total{finished_reason=\"length\"} 1\n"),
            std::string::npos);
  EXPECT_NE(text.find("strata_request_success_total{finished_reason=\"stop\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("strata_time_to_first_token_seconds_count 1\n"), std::string::npos);
  EXPECT_NE(text.find("strata_prompt_tokens_by_source_total{source=\"compute\"} 20\n"),
            std::string::npos);
  const metrics::testing::PromtoolResult promtool = metrics::testing::RunPromtoolCheck(text);
  EXPECT_EQ(promtool.exit_code, 0) << promtool.output;
}

TEST_F(EngineMetricsObserverTest, BytesIntoDiskAreWhatTheDiskTierWroteNotWhatItWasOffered) {
  storage::TierStoreStats disk_stats;
  disk_stats.inserts = 100;  // offered: the scheduler counted all of them
  disk_stats.dropped_inserts = 97;
  disk_stats.blocks_written = 3;
  strata::testing::FakeTierStore disk(1000, disk_stats);
  scheduler::EngineSnapshot snapshot = Snapshot();
  snapshot.cache.bytes_moved[kDevice][kDisk] = 100 * 1000;
  EngineMetricsObserver observer(&metrics_, nullptr, &disk);
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, snapshot);
  EXPECT_EQ(metrics_.kv_transfer_bytes_total[kDevice][kDisk]->Value(), 3 * 1000);

  // Turned off: nothing held, no room, and the counter stops.
  disk.stats().enabled = false;
  snapshot.cache.bytes_moved[kDevice][kDisk] = 200 * 1000;
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, snapshot);
  EXPECT_EQ(metrics_.kv_transfer_bytes_total[kDevice][kDisk]->Value(), 3 * 1000);
  const auto& d = metrics_.kv_blocks[kDisk];
  EXPECT_EQ(d[static_cast<int>(KvBlockState::kCached)]->Value(), 0);
  EXPECT_EQ(d[static_cast<int>(KvBlockState::kFree)]->Value(), 0);
}

TEST_F(EngineMetricsObserverTest, WithAHostTierTheDiskIsFedFromTheHost) {
  const LowerTierStats host{.stats = {}, .block_bytes = 1000};
  LowerTierStats disk{.stats = {}, .block_bytes = 1000};
  disk.stats.blocks_written = 4;
  const metrics::CacheMetricsSnapshot snapshot =
      BuildCacheMetricsSnapshot(Snapshot(), &host, &disk);
  EXPECT_EQ(snapshot.bytes_moved[kHost][kDisk], 4 * 1000);
  EXPECT_EQ(snapshot.bytes_moved[kDevice][kDisk], 0);
}

TEST_F(EngineMetricsObserverTest, DiskTransfersFeedTheTransferDurationHistograms) {
  strata::testing::FakeTierStore disk(1000, {});
  disk.transfers() = {
      {.direction = storage::TierTransfer::Direction::kIn, .seconds = 0.002, .blocks = 8},
      {.direction = storage::TierTransfer::Direction::kOut, .seconds = 0.0005, .blocks = 1},
      {.direction = storage::TierTransfer::Direction::kOut, .seconds = 0.0007, .blocks = 1},
  };
  EngineMetricsObserver observer(&metrics_, nullptr, &disk);
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, Snapshot());
  EXPECT_EQ(Count(metrics_.kv_transfer_seconds[kDevice][kDisk]), 1u);
  EXPECT_EQ(Count(metrics_.kv_transfer_seconds[kDisk][kDevice]), 2u);
  EXPECT_DOUBLE_EQ(metrics_.kv_transfer_seconds[kDevice][kDisk]->Collect().histogram.sample_sum,
                   0.002);
  observer.OnStep({.duration_s = 0.001, .batch_tokens = 1, .num_sequences = 1}, Snapshot());
  EXPECT_EQ(Count(metrics_.kv_transfer_seconds[kDisk][kDevice]), 2u);  // taken once
}

TEST(BuildCacheMetricsSnapshotTest, EmptyDeviceHasNoUsage) {
  const metrics::CacheMetricsSnapshot snapshot =
      BuildCacheMetricsSnapshot(scheduler::EngineSnapshot{}, nullptr, nullptr);
  EXPECT_EQ(snapshot.device_usage, 0.0);
  EXPECT_EQ(snapshot.tiers[kHost].blocks[static_cast<int>(KvBlockState::kFree)], 0);
}

}  // namespace
}  // namespace strata::server
