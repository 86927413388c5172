// Feeds the engine's step and request reports into the Prometheus metrics
// (server/metrics/strata_metrics.h): step duration and batch size, queue
// gauges, preemptions, the KV cache per tier, and per finished request its
// latencies, token counts and finish reason.
//
// Ownership: borrows the StrataMetrics (and through it the registry) and the
// optional host and disk tier stores; all must outlive the observer, which
// itself must outlive the EngineService it observes.
//
// Thread-safety: OnStep comes from the engine thread, the per-request calls
// from the event dispatch thread (EngineService's contract); the per-reason
// counter map is touched only by OnRequestFinished, so it needs no lock.
// Nothing here blocks beyond the tier stores' short stats mutex.
#ifndef STRATA_SERVER_DAEMON_ENGINE_METRICS_OBSERVER_H_
#define STRATA_SERVER_DAEMON_ENGINE_METRICS_OBSERVER_H_

#include <cstdint>
#include <map>
#include <string>

#include "scheduler/engine_service.h"
#include "server/metrics/strata_metrics.h"
#include "storage/tier_store.h"

namespace strata::server {

// A lower tier's stats and the size of one of its blocks (TierStore::
// block_bytes), which turns its capacity into a block count.
struct LowerTierStats {
  storage::TierStoreStats stats;
  size_t block_bytes = 0;
};

// The cache part of an engine snapshot in the metrics' terms. `host` and
// `disk` are the lower tiers' stats, null when the tier is off. Pure.
//
// Bytes into the disk tier are those the disk store wrote (blocks_written),
// not those offered to it: a store that drops a block (full, read-only, off)
// still accepts the Insert. They come from the host tier's evictions when
// there is a host tier, else straight from the device.
metrics::CacheMetricsSnapshot BuildCacheMetricsSnapshot(const scheduler::EngineSnapshot& snapshot,
                                                        const LowerTierStats* host,
                                                        const LowerTierStats* disk);

class EngineMetricsObserver final : public scheduler::EngineObserver {
 public:
  // `host_tier` and `disk_tier` may be null (tier off). Each step drains
  // the disk tier's timed transfers (TakeTransfers) into
  // strata_kv_transfer_seconds.
  EngineMetricsObserver(const metrics::StrataMetrics* metrics,
                        storage::TierStore* host_tier = nullptr,
                        storage::TierStore* disk_tier = nullptr);

  void OnStep(const scheduler::StepStats& step, const scheduler::EngineSnapshot& snapshot) override;
  void OnInterTokenLatency(double seconds) override;
  void OnRequestFinished(const scheduler::RequestStats& stats) override;

 private:
  metrics::Counter& SuccessCounter(const std::string& reason);
  void ObserveDiskTransfers();

  const metrics::StrataMetrics* metrics_;
  storage::TierStore* host_tier_;
  storage::TierStore* disk_tier_;
  metrics::CacheMetricsUpdater cache_updater_;
  // Cumulative preemptions already counted: the snapshot's figure only grows
  // within one engine's life.
  int64_t counted_preemptions_ = 0;
  std::map<std::string, metrics::Counter*> success_by_reason_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_DAEMON_ENGINE_METRICS_OBSERVER_H_
