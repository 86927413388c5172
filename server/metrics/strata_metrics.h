// Every metric Strata exports (DESIGN.md, Metrics), registered with its
// exact name, type, labels and help text in a prometheus-cpp registry, and
// the handles the engine keeps.
//
// Ownership: StrataMetrics holds pointers into the prometheus::Registry it
// was created with; the registry must outlive it. Every child below is
// created up front, so a scrape shows each series (at zero) from the start
// and the hot path never looks anything up.
//
// Thread-safety: prometheus-cpp's counters, gauges and histograms may be
// updated from any thread. CacheMetricsUpdater::Update is thread-safe.
#ifndef STRATA_SERVER_METRICS_STRATA_METRICS_H_
#define STRATA_SERVER_METRICS_STRATA_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace strata::metrics {

// The metric types are prometheus-cpp's; the short names keep call sites
// (the engine observer) independent of the library's namespace.
using Counter = prometheus::Counter;
using Gauge = prometheus::Gauge;
using Histogram = prometheus::Histogram;
using CounterFamily = prometheus::Family<prometheus::Counter>;

// Bucket bounds. The latency defaults follow vLLM's, so that dashboards built
// for it read ours the same way.
std::vector<double> TimeToFirstTokenBuckets();
std::vector<double> InterTokenLatencyBuckets();
std::vector<double> RequestLatencyBuckets();  // e2e and queue time
// `count` bounds start, start*factor, ...; start > 0, factor > 1 (CHECK).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// Everything `collectable` holds, in the Prometheus text exposition format
// (prometheus-cpp's TextSerializer): what GET /metrics answers.
std::string ExpositionText(const prometheus::Collectable& collectable);

// KV tiers, in the order of cache::Tier (device, host, disk).
inline constexpr int kNumKvTiers = 3;
inline constexpr std::array<std::string_view, kNumKvTiers> kKvTierNames = {"device", "host",
                                                                           "disk"};

// The state label of strata_kv_blocks: referenced by a running sequence,
// held only as reusable cache (evictable), or empty.
enum class KvBlockState { kUsed = 0, kCached = 1, kFree = 2 };
inline constexpr int kNumKvBlockStates = 3;
inline constexpr std::array<std::string_view, kNumKvBlockStates> kKvBlockStateNames = {
    "used", "cached", "free"};

// Where a prompt token's KV came from: the source label of
// strata_prompt_tokens_by_source_total.
enum class TokenSource {
  kCompute = 0,
  kDeviceHit = 1,
  kHostHit = 2,
  kDiskHit = 3,
  kBlendReuse = 4,
  kBlendRecompute = 5,
};
inline constexpr int kNumTokenSources = 6;
inline constexpr std::array<std::string_view, kNumTokenSources> kTokenSourceNames = {
    "compute", "device_hit", "host_hit", "disk_hit", "blend_reuse", "blend_recompute"};

// The decision label of strata_kv_load_decisions_total: a prefix found in a
// lower tier was loaded whole, recomputed, or loaded in part
// (scheduler/load_cost_model.h).
inline constexpr int kNumLoadDecisions = 3;
inline constexpr std::array<std::string_view, kNumLoadDecisions> kLoadDecisionNames = {
    "load", "recompute", "partial"};

struct StrataMetrics {
  // Registers every family in `registry` (not owned; must outlive the
  // result). Errors: InvalidArgument naming the family when prometheus-cpp
  // refuses it, e.g. a name already registered in a registry built with
  // InsertBehavior::Throw (calling Register twice on one).
  static absl::StatusOr<StrataMetrics> Register(prometheus::Registry* registry);

  // Request latencies, seconds.
  Histogram* time_to_first_token_seconds = nullptr;
  Histogram* inter_token_latency_seconds = nullptr;
  Histogram* e2e_request_latency_seconds = nullptr;
  Histogram* request_queue_time_seconds = nullptr;

  // Scheduler state.
  Gauge* num_requests_running = nullptr;
  Gauge* num_requests_waiting = nullptr;
  Gauge* kv_cache_usage_perc = nullptr;  // device KV blocks in use, a fraction in [0, 1]

  Counter* prompt_tokens_total = nullptr;
  Counter* generation_tokens_total = nullptr;
  // {finished_reason}: resolve once per reason (e.g. "stop", "length",
  // "abort") and keep the child.
  CounterFamily* request_success_total = nullptr;
  Counter* num_preemptions_total = nullptr;

  // Prefix cache, counted in tokens.
  Counter* prefix_cache_queries_total = nullptr;
  Counter* prefix_cache_hits_total = nullptr;
  std::array<Counter*, kNumTokenSources> prompt_tokens_by_source_total{};  // [TokenSource]

  // Per tier. The [from][to] arrays hold nullptr where from == to.
  std::array<std::array<Gauge*, kNumKvBlockStates>, kNumKvTiers> kv_blocks{};  // [tier][state]
  std::array<std::array<Counter*, kNumKvTiers>, kNumKvTiers> kv_transfer_bytes_total{};
  std::array<std::array<Histogram*, kNumKvTiers>, kNumKvTiers> kv_transfer_seconds{};
  std::array<Counter*, kNumKvTiers> kv_evicted_blocks_total{};

  // Load versus recompute, and admission to the disk tier.
  std::array<Counter*, kNumLoadDecisions> kv_load_decisions_total{};
  // The measured read speed of the host and disk tiers (device: nullptr),
  // and of prefill; 0 until measured.
  std::array<Gauge*, kNumKvTiers> kv_read_bytes_per_second{};
  Gauge* prefill_tokens_per_second = nullptr;
  // Blocks offered to the disk tier and not written (too few requests had
  // wanted them), and their bytes.
  Counter* kv_disk_not_admitted_blocks_total = nullptr;
  Counter* kv_disk_not_admitted_bytes_total = nullptr;
  // Device blocks copied down ahead of their eviction (write-behind).
  Counter* kv_written_behind_blocks_total = nullptr;

  // Engine steps.
  Histogram* step_duration_seconds = nullptr;
  Histogram* batch_tokens = nullptr;

  Counter& prompt_tokens_by_source(TokenSource source) const {
    return *prompt_tokens_by_source_total[static_cast<int>(source)];
  }
};

// What the cache layer reports, in plain numbers. strata_metrics does not
// link strata_cache, so the server fills this from cache::CacheStats and the
// storage::TierStoreStats of the host and disk stores (tier indices as in
// cache::Tier). Cumulative fields only grow within one source's life.
struct CacheMetricsSnapshot {
  struct Tier {
    // State now.
    std::array<int64_t, kNumKvBlockStates> blocks{};  // [KvBlockState]
    // Cumulative: CacheStats::evicted_blocks for the device tier,
    // TierStoreStats::evictions for host and disk.
    int64_t evicted_blocks = 0;
  };
  std::array<Tier, kNumKvTiers> tiers{};
  double device_usage = 0.0;  // fraction of device KV blocks in use

  // Cumulative, from CacheStats.
  int64_t query_tokens = 0;
  std::array<int64_t, kNumKvTiers> hit_tokens{};
  std::array<std::array<int64_t, kNumKvTiers>, kNumKvTiers> bytes_moved{};  // [from][to]

  // Load versus recompute: cumulative decisions, and the estimates now.
  std::array<int64_t, kNumLoadDecisions> load_decisions{};
  std::array<double, kNumKvTiers> read_bytes_per_second{};
  double prefill_tokens_per_second = 0;
  // Cumulative, from the disk store's stats.
  int64_t disk_not_admitted_blocks = 0;
  int64_t disk_not_admitted_bytes = 0;
  // Cumulative, CacheStats::written_behind_blocks.
  int64_t written_behind_blocks = 0;
};

// Pushes cache snapshots into the metrics. Gauges are set; counters advance
// by the growth since the previous snapshot, so they never move backwards.
// A cumulative field that shrank means its source was replaced (a new cache
// or store counting from zero again): its whole new value is growth.
//
// Updates strata_prefix_cache_{queries,hits}_total, the device_hit,
// host_hit and disk_hit sources of strata_prompt_tokens_by_source_total,
// strata_kv_blocks, strata_kv_transfer_bytes_total,
// strata_kv_evicted_blocks_total, strata_kv_cache_usage_perc, the load
// versus recompute and disk admission metrics. The
// compute and blend_* sources, and strata_kv_transfer_seconds, are the
// engine's to update as it decides and times each transfer.
class CacheMetricsUpdater {
 public:
  // `metrics` is not owned and must outlive the updater.
  explicit CacheMetricsUpdater(const StrataMetrics* metrics) : metrics_(metrics) {}

  void Update(const CacheMetricsSnapshot& snapshot);

 private:
  const StrataMetrics* metrics_;
  absl::Mutex mu_;
  CacheMetricsSnapshot last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace strata::metrics

#endif  // STRATA_SERVER_METRICS_STRATA_METRICS_H_
