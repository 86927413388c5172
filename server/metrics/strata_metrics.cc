#include "server/metrics/strata_metrics.h"

#include <prometheus/text_serializer.h>

#include <algorithm>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/check.h"

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

// A family named `name`, or InvalidArgument naming it when prometheus-cpp
// refuses it (it throws std::invalid_argument).
template <typename T>
absl::StatusOr<prometheus::Family<T>*> AddFamily(prometheus::detail::Builder<T> builder,
                                                 prometheus::Registry* registry,
                                                 std::string_view name, std::string_view help) {
  try {
    return &builder.Name(std::string(name)).Help(std::string(help)).Register(*registry);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("metric ", std::string(name), ": ", e.what()));
  }
}

absl::StatusOr<Counter*> AddUnlabelledCounter(prometheus::Registry* registry, std::string_view name,
                                              std::string_view help) {
  absl::StatusOr<CounterFamily*> family =
      AddFamily(prometheus::BuildCounter(), registry, name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Add({});
}

absl::StatusOr<Gauge*> AddUnlabelledGauge(prometheus::Registry* registry, std::string_view name,
                                          std::string_view help) {
  absl::StatusOr<prometheus::Family<Gauge>*> family =
      AddFamily(prometheus::BuildGauge(), registry, name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Add({});
}

absl::StatusOr<Histogram*> AddUnlabelledHistogram(prometheus::Registry* registry,
                                                  std::string_view name, std::string_view help,
                                                  const std::vector<double>& bounds) {
  absl::StatusOr<prometheus::Family<Histogram>*> family =
      AddFamily(prometheus::BuildHistogram(), registry, name, help);
  if (!family.ok()) return family.status();
  return &(*family)->Add({}, bounds);
}

absl::Status RegisterRequestMetrics(prometheus::Registry* r, StrataMetrics* m) {
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
      AddFamily(prometheus::BuildCounter(), r, "strata_request_success_total",
                "Number of requests finished, by finish reason (the finished_reason label)."));
  // The usual reasons exist at zero from the start, as every other series
  // here does; prometheus-cpp shows a family only once it has a child, and
  // Add returns the same child to the engine observer later.
  for (const char* reason : {"stop", "length", "abort"}) {
    m->request_success_total->Add({{"finished_reason", reason}});
  }
  STRATA_METRICS_ASSIGN(m->num_preemptions_total,
                        AddUnlabelledCounter(r, "strata_num_preemptions_total",
                                             "Number of times a running request was "
                                             "preempted."));
  return absl::OkStatus();
}

absl::Status RegisterPrefixCacheMetrics(prometheus::Registry* r, StrataMetrics* m) {
  STRATA_METRICS_ASSIGN(m->prefix_cache_queries_total,
                        AddUnlabelledCounter(r, "strata_prefix_cache_queries_total",
                                             "Number of prompt tokens looked up in the prefix "
                                             "cache."));
  STRATA_METRICS_ASSIGN(m->prefix_cache_hits_total,
                        AddUnlabelledCounter(r, "strata_prefix_cache_hits_total",
                                             "Number of prompt tokens found in the prefix "
                                             "cache, in any tier."));
  CounterFamily* by_source = nullptr;
  STRATA_METRICS_ASSIGN(
      by_source, AddFamily(prometheus::BuildCounter(), r, "strata_prompt_tokens_by_source_total",
                           "Number of prompt tokens by where their KV came from: "
                           "computed, a cache tier hit, or CacheBlend reuse or "
                           "recompute."));
  for (int s = 0; s < kNumTokenSources; ++s) {
    m->prompt_tokens_by_source_total[s] =
        &by_source->Add({{"source", std::string(kTokenSourceNames[s])}});
  }
  return absl::OkStatus();
}

// Seconds from 10 us (a small block through host memory) to about 40 s (a
// long prefix from a slow disk), by factors of 4.
std::vector<double> TransferSecondsBuckets() { return ExponentialBuckets(1e-5, 4.0, 12); }

absl::Status RegisterTierMetrics(prometheus::Registry* r, StrataMetrics* m) {
  prometheus::Family<Gauge>* blocks = nullptr;
  STRATA_METRICS_ASSIGN(blocks, AddFamily(prometheus::BuildGauge(), r, "strata_kv_blocks",
                                          "Number of KV cache blocks per tier, by state: used "
                                          "by a running request, cached, or free."));
  CounterFamily* bytes = nullptr;
  STRATA_METRICS_ASSIGN(bytes,
                        AddFamily(prometheus::BuildCounter(), r, "strata_kv_transfer_bytes_total",
                                  "Bytes of KV cache moved between tiers."));
  prometheus::Family<Histogram>* seconds = nullptr;
  STRATA_METRICS_ASSIGN(seconds,
                        AddFamily(prometheus::BuildHistogram(), r, "strata_kv_transfer_seconds",
                                  "Duration of KV cache transfers between tiers, "
                                  "in seconds."));
  CounterFamily* evicted = nullptr;
  STRATA_METRICS_ASSIGN(evicted,
                        AddFamily(prometheus::BuildCounter(), r, "strata_kv_evicted_blocks_total",
                                  "Number of KV cache blocks evicted, per tier."));
  const std::vector<double> transfer_buckets = TransferSecondsBuckets();
  for (int t = 0; t < kNumKvTiers; ++t) {
    const std::string tier(kKvTierNames[t]);
    for (int s = 0; s < kNumKvBlockStates; ++s) {
      m->kv_blocks[t][s] =
          &blocks->Add({{"tier", tier}, {"state", std::string(kKvBlockStateNames[s])}});
    }
    for (int to = 0; to < kNumKvTiers; ++to) {
      if (to == t) continue;
      const prometheus::Labels labels = {{"from", tier}, {"to", std::string(kKvTierNames[to])}};
      m->kv_transfer_bytes_total[t][to] = &bytes->Add(labels);
      m->kv_transfer_seconds[t][to] = &seconds->Add(labels, transfer_buckets);
    }
    m->kv_evicted_blocks_total[t] = &evicted->Add({{"tier", tier}});
  }
  return absl::OkStatus();
}

absl::Status RegisterCostMetrics(prometheus::Registry* r, StrataMetrics* m) {
  CounterFamily* decisions = nullptr;
  STRATA_METRICS_ASSIGN(
      decisions,
      AddFamily(prometheus::BuildCounter(), r, "strata_kv_load_decisions_total",
                "Prefixes found in a lower KV tier, by what the cost model chose: load them, "
                "recompute them, or load a leading part."));
  for (int d = 0; d < kNumLoadDecisions; ++d) {
    m->kv_load_decisions_total[d] =
        &decisions->Add({{"decision", std::string(kLoadDecisionNames[d])}});
  }
  prometheus::Family<Gauge>* read = nullptr;
  STRATA_METRICS_ASSIGN(read,
                        AddFamily(prometheus::BuildGauge(), r, "strata_kv_read_bytes_per_second",
                                  "Measured read speed of a lower KV tier (a running mean "
                                  "over completed loads); 0 until measured."));
  for (int t = 1; t < kNumKvTiers; ++t) {
    m->kv_read_bytes_per_second[t] = &read->Add({{"tier", std::string(kKvTierNames[t])}});
  }
  STRATA_METRICS_ASSIGN(m->prefill_tokens_per_second,
                        AddUnlabelledGauge(r, "strata_prefill_tokens_per_second",
                                           "Measured prefill speed (a running mean over "
                                           "prefill-sized steps); 0 until measured."));
  STRATA_METRICS_ASSIGN(m->kv_disk_not_admitted_blocks_total,
                        AddUnlabelledCounter(r, "strata_kv_disk_not_admitted_blocks_total",
                                             "KV blocks offered to the disk tier and not written: "
                                             "too few requests had used them."));
  STRATA_METRICS_ASSIGN(m->kv_disk_not_admitted_bytes_total,
                        AddUnlabelledCounter(r, "strata_kv_disk_not_admitted_bytes_total",
                                             "Bytes the disk tier did not write because of its "
                                             "admission policy."));
  STRATA_METRICS_ASSIGN(m->kv_written_behind_blocks_total,
                        AddUnlabelledCounter(r, "strata_kv_written_behind_blocks_total",
                                             "KV blocks copied from the device to a lower tier "
                                             "ahead of their eviction (write-behind)."));
  return absl::OkStatus();
}

absl::Status RegisterStepMetrics(prometheus::Registry* r, StrataMetrics* m) {
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

std::vector<double> TimeToFirstTokenBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25,  0.5,   0.75,
          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
}

std::vector<double> InterTokenLatencyBuckets() {
  return {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
          0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
}

std::vector<double> RequestLatencyBuckets() {
  return {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
          30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  CHECK(start > 0.0);
  CHECK(factor > 1.0);
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(std::max(count, 0)));
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

std::string ExpositionText(const prometheus::Collectable& collectable) {
  return prometheus::TextSerializer().Serialize(collectable.Collect());
}

absl::StatusOr<StrataMetrics> StrataMetrics::Register(prometheus::Registry* registry) {
  StrataMetrics metrics;
  for (auto* step : {&RegisterRequestMetrics, &RegisterPrefixCacheMetrics, &RegisterTierMetrics,
                     &RegisterCostMetrics, &RegisterStepMetrics}) {
    // The children's labels and buckets are fixed above, so prometheus-cpp
    // refusing one (it throws) is a bug in this file; still, report it
    // rather than let an exception out.
    try {
      if (absl::Status status = step(registry, &metrics); !status.ok()) return status;
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("registering Strata's metrics: ", e.what()));
    }
  }
  return metrics;
}

void CacheMetricsUpdater::Update(const CacheMetricsSnapshot& snapshot) {
  absl::MutexLock lock(&mu_);
  const StrataMetrics& m = *metrics_;
  m.kv_cache_usage_perc->Set(snapshot.device_usage);
  m.prefix_cache_queries_total->Increment(Growth(snapshot.query_tokens, last_.query_tokens));
  constexpr std::array<TokenSource, kNumKvTiers> kHitSource = {
      TokenSource::kDeviceHit, TokenSource::kHostHit, TokenSource::kDiskHit};
  for (int t = 0; t < kNumKvTiers; ++t) {
    const double hits = Growth(snapshot.hit_tokens[t], last_.hit_tokens[t]);
    m.prefix_cache_hits_total->Increment(hits);
    m.prompt_tokens_by_source(kHitSource[t]).Increment(hits);

    const CacheMetricsSnapshot::Tier& tier = snapshot.tiers[t];
    for (int s = 0; s < kNumKvBlockStates; ++s) {
      m.kv_blocks[t][s]->Set(static_cast<double>(tier.blocks[s]));
    }
    m.kv_evicted_blocks_total[t]->Increment(
        Growth(tier.evicted_blocks, last_.tiers[t].evicted_blocks));
    for (int to = 0; to < kNumKvTiers; ++to) {
      if (to == t) continue;
      m.kv_transfer_bytes_total[t][to]->Increment(
          Growth(snapshot.bytes_moved[t][to], last_.bytes_moved[t][to]));
    }
  }
  for (int d = 0; d < kNumLoadDecisions; ++d) {
    m.kv_load_decisions_total[d]->Increment(
        Growth(snapshot.load_decisions[d], last_.load_decisions[d]));
  }
  for (int t = 1; t < kNumKvTiers; ++t) {
    m.kv_read_bytes_per_second[t]->Set(snapshot.read_bytes_per_second[t]);
  }
  m.prefill_tokens_per_second->Set(snapshot.prefill_tokens_per_second);
  m.kv_disk_not_admitted_blocks_total->Increment(
      Growth(snapshot.disk_not_admitted_blocks, last_.disk_not_admitted_blocks));
  m.kv_disk_not_admitted_bytes_total->Increment(
      Growth(snapshot.disk_not_admitted_bytes, last_.disk_not_admitted_bytes));
  m.kv_written_behind_blocks_total->Increment(
      Growth(snapshot.written_behind_blocks, last_.written_behind_blocks));
  last_ = snapshot;
}

}  // namespace strata::metrics
