#include "server/metrics/strata_metrics.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace strata::metrics {
namespace {

// Sets `lhs` from a StatusOr expression or returns its error.
#define STRATA_METRICS_ASSIGN(lhs, expr)     \
  do {                                       \
    auto status_or_ = (expr);                \
    if (!status_or_.ok()) {                  \
      return std::move(status_or_).status(); \
    }                                        \
    lhs = *status_or_;                       \
  } while (0)

absl::StatusOr<Counter*> AddUnlabelledCounter(MetricsRegistry* registry, std::string_view name,
                                              std::string_view help) {
  absl::StatusOr<CounterFamily*> family = registry->AddCounter(name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Labels({});
}

absl::StatusOr<Gauge*> AddUnlabelledGauge(MetricsRegistry* registry, std::string_view name,
                                          std::string_view help) {
  absl::StatusOr<GaugeFamily*> family = registry->AddGauge(name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Labels({});
}

absl::StatusOr<Histogram*> AddUnlabelledHistogram(MetricsRegistry* registry, std::string_view name,
                                                  std::string_view help,
                                                  std::vector<double> bounds) {
  absl::StatusOr<HistogramFamily*> family =
      registry->AddHistogram(name, help, {}, std::move(bounds));
  if (!family.ok()) return family.status();
  return &(*family)->Labels({});
}

absl::Status RegisterRequestMetrics(MetricsRegistry* r, StrataMetrics* m) {
  STRATA_METRICS_ASSIGN(m->time_to_first_token_seconds,
                        AddUnlabelledHistogram(r, "strata_time_to_first_token_seconds",
                                               "Time from a request's arrival to its first "
                                               "generated token, in seconds.",
                                               TimeToFirstTokenBuckets()));
  STRATA_METRICS_ASSIGN(m->inter_token_latency_seconds,
                        AddUnlabelledHistogram(r, "strata_inter_token_latency_seconds",
                                               "Time between consecutive generated tokens of a "
                                               "request, in seconds.",
                                               InterTokenLatencyBuckets()));
  STRATA_METRICS_ASSIGN(m->e2e_request_latency_seconds,
                        AddUnlabelledHistogram(r, "strata_e2e_request_latency_seconds",
                                               "Time from a request's arrival to its last "
                                               "token, in seconds.",
                                               RequestLatencyBuckets()));
  STRATA_METRICS_ASSIGN(m->request_queue_time_seconds,
                        AddUnlabelledHistogram(r, "strata_request_queue_time_seconds",
                                               "Time a request waited before it was first "
                                               "scheduled, in seconds.",
                                               RequestLatencyBuckets()));
  STRATA_METRICS_ASSIGN(m->num_requests_running,
                        AddUnlabelledGauge(r, "strata_num_requests_running",
                                           "Number of requests in the running batch."));
  STRATA_METRICS_ASSIGN(m->num_requests_waiting,
                        AddUnlabelledGauge(r, "strata_num_requests_waiting",
                                           "Number of requests waiting to be scheduled."));
  STRATA_METRICS_ASSIGN(m->kv_cache_usage_perc,
                        AddUnlabelledGauge(r, "strata_kv_cache_usage_perc",
                                           "Fraction of device KV cache blocks in use, "
                                           "from 0 to 1."));
  STRATA_METRICS_ASSIGN(
      m->prompt_tokens_total,
      AddUnlabelledCounter(r, "strata_prompt_tokens_total", "Number of prompt tokens processed."));
  STRATA_METRICS_ASSIGN(
      m->generation_tokens_total,
      AddUnlabelledCounter(r, "strata_generation_tokens_total", "Number of tokens generated."));
  STRATA_METRICS_ASSIGN(
      m->request_success_total,
      r->AddCounter("strata_request_success_total",
                    "Number of requests finished, by finish reason.", {"finished_reason"}));
  STRATA_METRICS_ASSIGN(m->num_preemptions_total,
                        AddUnlabelledCounter(r, "strata_num_preemptions_total",
                                             "Number of times a running request was "
                                             "preempted."));
  return absl::OkStatus();
}

absl::Status RegisterPrefixCacheMetrics(MetricsRegistry* r, StrataMetrics* m) {
  STRATA_METRICS_ASSIGN(m->prefix_cache_queries_total,
                        AddUnlabelledCounter(r, "strata_prefix_cache_queries_total",
                                             "Number of prompt tokens looked up in the prefix "
                                             "cache."));
  STRATA_METRICS_ASSIGN(m->prefix_cache_hits_total,
                        AddUnlabelledCounter(r, "strata_prefix_cache_hits_total",
                                             "Number of prompt tokens found in the prefix "
                                             "cache, in any tier."));
  CounterFamily* by_source = nullptr;
  STRATA_METRICS_ASSIGN(by_source,
                        r->AddCounter("strata_prompt_tokens_by_source_total",
                                      "Number of prompt tokens by where their KV came from: "
                                      "computed, a cache tier hit, or CacheBlend reuse or "
                                      "recompute.",
                                      {"source"}));
  for (int s = 0; s < kNumTokenSources; ++s) {
    m->prompt_tokens_by_source_total[s] = &by_source->Labels({kTokenSourceNames[s]});
  }
  return absl::OkStatus();
}

// Seconds from 10 us (a small block through host memory) to about 40 s (a
// long prefix from a slow disk), by factors of 4.
std::vector<double> TransferSecondsBuckets() { return ExponentialBuckets(1e-5, 4.0, 12); }

absl::Status RegisterTierMetrics(MetricsRegistry* r, StrataMetrics* m) {
  GaugeFamily* blocks = nullptr;
  STRATA_METRICS_ASSIGN(blocks, r->AddGauge("strata_kv_blocks",
                                            "Number of KV cache blocks per tier, by state: used "
                                            "by a running request, cached, or free.",
                                            {"tier", "state"}));
  CounterFamily* bytes = nullptr;
  STRATA_METRICS_ASSIGN(bytes,
                        r->AddCounter("strata_kv_transfer_bytes_total",
                                      "Bytes of KV cache moved between tiers.", {"from", "to"}));
  HistogramFamily* seconds = nullptr;
  STRATA_METRICS_ASSIGN(seconds, r->AddHistogram("strata_kv_transfer_seconds",
                                                 "Duration of KV cache transfers between tiers, "
                                                 "in seconds.",
                                                 {"from", "to"}, TransferSecondsBuckets()));
  CounterFamily* evicted = nullptr;
  STRATA_METRICS_ASSIGN(evicted,
                        r->AddCounter("strata_kv_evicted_blocks_total",
                                      "Number of KV cache blocks evicted, per tier.", {"tier"}));
  for (int t = 0; t < kNumKvTiers; ++t) {
    for (int s = 0; s < kNumKvBlockStates; ++s) {
      m->kv_blocks[t][s] = &blocks->Labels({kKvTierNames[t], kKvBlockStateNames[s]});
    }
    for (int to = 0; to < kNumKvTiers; ++to) {
      if (to == t) continue;
      m->kv_transfer_bytes_total[t][to] = &bytes->Labels({kKvTierNames[t], kKvTierNames[to]});
      m->kv_transfer_seconds[t][to] = &seconds->Labels({kKvTierNames[t], kKvTierNames[to]});
    }
    m->kv_evicted_blocks_total[t] = &evicted->Labels({kKvTierNames[t]});
  }
  return absl::OkStatus();
}

absl::Status RegisterStepMetrics(MetricsRegistry* r, StrataMetrics* m) {
  // 0.5 ms to about 16 s, by factors of 2.
  STRATA_METRICS_ASSIGN(m->step_duration_seconds,
                        AddUnlabelledHistogram(r, "strata_step_duration_seconds",
                                               "Duration of one engine step, in seconds.",
                                               ExponentialBuckets(5e-4, 2.0, 16)));
  // 1 to 16384 tokens, by factors of 2.
  STRATA_METRICS_ASSIGN(m->batch_tokens,
                        AddUnlabelledHistogram(r, "strata_batch_tokens",
                                               "Number of tokens in one engine step's batch.",
                                               ExponentialBuckets(1.0, 2.0, 15)));
  return absl::OkStatus();
}

#undef STRATA_METRICS_ASSIGN

// The growth of a cumulative value; see CacheMetricsUpdater on shrinking.
double Growth(int64_t now, int64_t before) {
  return static_cast<double>(now >= before ? now - before : now);
}

}  // namespace

absl::StatusOr<StrataMetrics> StrataMetrics::Register(MetricsRegistry* registry) {
  StrataMetrics metrics;
  for (auto* step : {&RegisterRequestMetrics, &RegisterPrefixCacheMetrics, &RegisterTierMetrics,
                     &RegisterStepMetrics}) {
    if (absl::Status status = step(registry, &metrics); !status.ok()) return status;
  }
  return metrics;
}

void CacheMetricsUpdater::Update(const CacheMetricsSnapshot& snapshot) {
  absl::MutexLock lock(&mu_);
  const StrataMetrics& m = *metrics_;
  m.kv_cache_usage_perc->Set(snapshot.device_usage);
  m.prefix_cache_queries_total->Inc(Growth(snapshot.query_tokens, last_.query_tokens));
  constexpr std::array<TokenSource, kNumKvTiers> kHitSource = {
      TokenSource::kDeviceHit, TokenSource::kHostHit, TokenSource::kDiskHit};
  for (int t = 0; t < kNumKvTiers; ++t) {
    const double hits = Growth(snapshot.hit_tokens[t], last_.hit_tokens[t]);
    m.prefix_cache_hits_total->Inc(hits);
    m.prompt_tokens_by_source(kHitSource[t]).Inc(hits);

    const CacheMetricsSnapshot::Tier& tier = snapshot.tiers[t];
    for (int s = 0; s < kNumKvBlockStates; ++s) {
      m.kv_blocks[t][s]->Set(static_cast<double>(tier.blocks[s]));
    }
    m.kv_evicted_blocks_total[t]->Inc(Growth(tier.evicted_blocks, last_.tiers[t].evicted_blocks));
    for (int to = 0; to < kNumKvTiers; ++to) {
      if (to == t) continue;
      m.kv_transfer_bytes_total[t][to]->Inc(
          Growth(snapshot.bytes_moved[t][to], last_.bytes_moved[t][to]));
    }
  }
  last_ = snapshot;
}

}  // namespace strata::metrics
