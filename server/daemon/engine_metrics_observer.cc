#include "server/daemon/engine_metrics_observer.h"

#include <algorithm>

#include "cache/kv_cache_manager.h"

namespace strata::server {
namespace {

using metrics::KvBlockState;

// A lower tier holds no block a sequence references: what it stores is
// cached (reusable) and the rest of its capacity is free.
metrics::CacheMetricsSnapshot::Tier LowerTier(const LowerTierStats& lower) {
  const storage::TierStoreStats& stats = lower.stats;
  metrics::CacheMetricsSnapshot::Tier tier;
  const int64_t blocks = static_cast<int64_t>(stats.blocks);
  // The disk tier's accounting includes a header per block: measure a block
  // as the store holds it when it holds any.
  const uint64_t per_block = blocks > 0 ? stats.used_bytes / stats.blocks : lower.block_bytes;
  const int64_t capacity_blocks =
      per_block == 0 ? blocks : static_cast<int64_t>(stats.capacity_bytes / per_block);
  tier.blocks[static_cast<int>(KvBlockState::kCached)] = blocks;
  tier.blocks[static_cast<int>(KvBlockState::kFree)] =
      std::max<int64_t>(0, capacity_blocks - blocks);
  tier.evicted_blocks = static_cast<int64_t>(stats.evictions);
  return tier;
}

}  // namespace

metrics::CacheMetricsSnapshot BuildCacheMetricsSnapshot(const scheduler::EngineSnapshot& snapshot,
                                                        const LowerTierStats* host,
                                                        const LowerTierStats* disk) {
  metrics::CacheMetricsSnapshot out;
  metrics::CacheMetricsSnapshot::Tier& device = out.tiers[static_cast<int>(cache::Tier::kDevice)];
  device.blocks[static_cast<int>(KvBlockState::kUsed)] = snapshot.device_blocks_used;
  device.blocks[static_cast<int>(KvBlockState::kCached)] = snapshot.device_blocks_cached;
  device.blocks[static_cast<int>(KvBlockState::kFree)] = snapshot.device_blocks_free;
  device.evicted_blocks = snapshot.cache.evicted_blocks;
  out.device_usage = snapshot.device_blocks_total > 0
                         ? static_cast<double>(snapshot.device_blocks_used) /
                               static_cast<double>(snapshot.device_blocks_total)
                         : 0.0;
  if (host != nullptr) out.tiers[static_cast<int>(cache::Tier::kHost)] = LowerTier(*host);
  if (disk != nullptr) out.tiers[static_cast<int>(cache::Tier::kDisk)] = LowerTier(*disk);
  out.query_tokens = snapshot.cache.query_tokens;
  out.written_behind_blocks = snapshot.cache.written_behind_blocks;
  // Load versus recompute (scheduler/load_cost_model.h).
  const scheduler::LoadCostStats& costs = snapshot.load_costs;
  out.load_decisions = {costs.load_decisions, costs.recompute_decisions, costs.partial_decisions};
  for (int tier = 0; tier < metrics::kNumKvTiers; ++tier) {
    out.read_bytes_per_second[tier] = costs.read_bytes_per_second[tier];
  }
  out.prefill_tokens_per_second = costs.prefill_tokens_per_second;
  if (disk != nullptr) {
    out.disk_not_admitted_blocks = static_cast<int64_t>(disk->stats.not_admitted_blocks);
    out.disk_not_admitted_bytes = static_cast<int64_t>(disk->stats.not_admitted_bytes);
  }
  for (int tier = 0; tier < metrics::kNumKvTiers; ++tier) {
    out.hit_tokens[tier] = snapshot.cache.hit_tokens[tier];
    for (int to = 0; to < metrics::kNumKvTiers; ++to) {
      out.bytes_moved[tier][to] = snapshot.cache.bytes_moved[tier][to];
    }
  }
  if (disk != nullptr) {
    // The cache counts blocks offered to the disk store; the store knows
    // which it wrote.
    constexpr int kDisk = static_cast<int>(cache::Tier::kDisk);
    const int from = static_cast<int>(host != nullptr ? cache::Tier::kHost : cache::Tier::kDevice);
    const int other = static_cast<int>(host != nullptr ? cache::Tier::kDevice : cache::Tier::kHost);
    out.bytes_moved[from][kDisk] =
        static_cast<int64_t>(disk->stats.blocks_written * disk->block_bytes);
    out.bytes_moved[other][kDisk] = 0;
  }
  return out;
}

EngineMetricsObserver::EngineMetricsObserver(const metrics::StrataMetrics* metrics,
                                             storage::TierStore* host_tier,
                                             storage::TierStore* disk_tier)
    : metrics_(metrics), host_tier_(host_tier), disk_tier_(disk_tier), cache_updater_(metrics) {
  // The usual reasons show at zero from the first scrape.
  for (const char* reason : {"stop", "length", "abort"}) SuccessCounter(reason);
}

metrics::Counter& EngineMetricsObserver::SuccessCounter(const std::string& reason) {
  auto it = success_by_reason_.find(reason);
  if (it == success_by_reason_.end()) {
    it = success_by_reason_
             .emplace(reason, &metrics_->request_success_total->Add({{"finished_reason", reason}}))
             .first;
  }
  return *it->second;
}

void EngineMetricsObserver::OnStep(const scheduler::StepStats& step,
                                   const scheduler::EngineSnapshot& snapshot) {
  // A step that computed nothing (an idle wake-up) would skew the histograms.
  if (step.num_sequences > 0) {
    metrics_->step_duration_seconds->Observe(step.duration_s);
    metrics_->batch_tokens->Observe(static_cast<double>(step.batch_tokens));
  }
  metrics_->num_requests_running->Set(static_cast<double>(snapshot.num_running));
  metrics_->num_requests_waiting->Set(static_cast<double>(snapshot.num_waiting));
  if (snapshot.num_preemptions > counted_preemptions_) {
    metrics_->num_preemptions_total->Increment(
        static_cast<double>(snapshot.num_preemptions - counted_preemptions_));
  }
  counted_preemptions_ = snapshot.num_preemptions;

  LowerTierStats host;
  LowerTierStats disk;
  if (host_tier_ != nullptr) host = {host_tier_->Stats(), host_tier_->block_bytes()};
  if (disk_tier_ != nullptr) disk = {disk_tier_->Stats(), disk_tier_->block_bytes()};
  cache_updater_.Update(BuildCacheMetricsSnapshot(snapshot, host_tier_ != nullptr ? &host : nullptr,
                                                  disk_tier_ != nullptr ? &disk : nullptr));
  ObserveDiskTransfers();
}

void EngineMetricsObserver::ObserveDiskTransfers() {
  if (disk_tier_ == nullptr) return;
  constexpr int kDisk = static_cast<int>(cache::Tier::kDisk);
  const int into_disk_from =
      static_cast<int>(host_tier_ != nullptr ? cache::Tier::kHost : cache::Tier::kDevice);
  for (const storage::TierTransfer& transfer : disk_tier_->TakeTransfers()) {
    // Reads from disk go to the device (through staging memory).
    metrics::Histogram* histogram =
        transfer.direction == storage::TierTransfer::Direction::kIn
            ? metrics_->kv_transfer_seconds[into_disk_from][kDisk]
            : metrics_->kv_transfer_seconds[kDisk][static_cast<int>(cache::Tier::kDevice)];
    histogram->Observe(transfer.seconds);
  }
}

void EngineMetricsObserver::OnInterTokenLatency(double seconds) {
  metrics_->inter_token_latency_seconds->Observe(seconds);
}

void EngineMetricsObserver::OnRequestFinished(const scheduler::RequestStats& stats) {
  if (stats.ttft_s >= 0) metrics_->time_to_first_token_seconds->Observe(stats.ttft_s);
  metrics_->e2e_request_latency_seconds->Observe(stats.e2e_s);
  metrics_->request_queue_time_seconds->Observe(stats.queue_s);
  const int64_t prompt = stats.usage.prompt_tokens;
  // Each prompt token has one source: a cache hit by tier, a blended chunk
  // token (its cached KV reused, or recomputed), or computed.
  const int64_t blended = stats.usage.blend_reused_tokens + stats.usage.blend_recomputed_tokens;
  const int64_t computed = std::max<int64_t>(0, prompt - stats.usage.cached_tokens() - blended);
  metrics_->prompt_tokens_total->Increment(static_cast<double>(prompt));
  metrics_->generation_tokens_total->Increment(static_cast<double>(stats.generated_tokens));
  // Hits by tier come from the cache's own counters (CacheMetricsUpdater);
  // what was not a hit was computed.
  metrics_->prompt_tokens_by_source(metrics::TokenSource::kCompute)
      .Increment(static_cast<double>(computed));
  metrics_->prompt_tokens_by_source(metrics::TokenSource::kBlendReuse)
      .Increment(static_cast<double>(stats.usage.blend_reused_tokens));
  metrics_->prompt_tokens_by_source(metrics::TokenSource::kBlendRecompute)
      .Increment(static_cast<double>(stats.usage.blend_recomputed_tokens));
  SuccessCounter(std::string(scheduler::FinishReasonName(stats.finish_reason))).Increment();
}

}  // namespace strata::server
