// A small Prometheus metrics registry: counters, gauges and histograms with
// labels, rendered in the text exposition format 0.0.4. prometheus-cpp is not
// packaged for Debian 12, and Strata needs only this much of it.
//
// Ownership: the registry owns every family, and each family owns its
// children. Pointers and references to both stay valid for the life of the
// registry, so the engine resolves a child once (Labels(...)) and keeps the
// pointer; updating it afterwards is a few atomic operations, no lock and no
// map lookup.
//
// Thread-safety: everything here may be called from any thread. Registration
// and child creation take a mutex; Counter/Gauge/Histogram updates are
// lock-free; Serialize takes the mutexes only to walk the families.
//
// Failure: bad names, bad label sets, bad buckets and duplicate names are
// returned as absl::Status from the Add* calls. Misuse on the hot path
// (a negative counter increment, the wrong number of label values to
// Labels) is a bug and CHECK-fails.
#ifndef STRATA_SERVER_METRICS_METRICS_REGISTRY_H_
#define STRATA_SERVER_METRICS_METRICS_REGISTRY_H_

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace strata::metrics {

enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonically increasing value. Counter names end in "_total".
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // `amount` must be >= 0 (CHECK): a counter never goes down.
  void Inc(double amount = 1.0);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Inc(double amount = 1.0);
  void Dec(double amount = 1.0) { Inc(-amount); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into fixed buckets. The bucket bounds belong to the
// family and outlive the child.
class Histogram {
 public:
  // `bounds`: finite, strictly increasing upper bounds; +Inf is implicit.
  explicit Histogram(const std::vector<double>* bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double value);

  // A consistent-enough snapshot for exposition: per-bucket counts are
  // cumulative and end with the +Inf bucket, whose count is the total.
  struct Snapshot {
    std::vector<uint64_t> cumulative_counts;  // bounds.size() + 1 entries
    double sum = 0.0;
  };
  Snapshot Collect() const;
  const std::vector<double>& bounds() const { return *bounds_; }

 private:
  const std::vector<double>* bounds_;
  // Non-cumulative counts, one per bound plus the +Inf bucket: one atomic
  // add per observation; the exposition sums them up.
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

// The parts every family shares: name, help, type, label names.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends the HELP, TYPE and sample lines of this family to `out`.
  void AppendText(std::string* out) const;

 protected:
  // Appends the sample lines of every child.
  virtual void AppendChildren(std::string* out) const = 0;

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

// A family of children of type C, one per tuple of label values.
template <typename C>
class Family : public FamilyBase {
 public:
  using FamilyBase::FamilyBase;

  // The child for `values` (one per label name, in order), created on first
  // use. The pointer stays valid for the registry's life. Errors:
  // InvalidArgument on the wrong number of values.
  absl::StatusOr<C*> TryLabels(absl::Span<const std::string_view> values);

  // As TryLabels, for call sites whose label count is fixed in the code:
  // the wrong count is a bug and CHECK-fails.
  C& Labels(std::initializer_list<std::string_view> values);

 protected:
  void AppendChildren(std::string* out) const override;
  // Creates a child; histograms pass their bounds.
  virtual std::unique_ptr<C> NewChild() const = 0;

 private:
  mutable absl::Mutex mu_;
  // Ordered so the exposition is stable.
  std::map<std::vector<std::string>, std::unique_ptr<C>> children_ ABSL_GUARDED_BY(mu_);
};

// Each child type renders its own samples; defined, and the three families
// instantiated, in metrics_registry.cc.
template <>
void Family<Counter>::AppendChildren(std::string* out) const;
template <>
void Family<Gauge>::AppendChildren(std::string* out) const;
template <>
void Family<Histogram>::AppendChildren(std::string* out) const;
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

class CounterFamily final : public Family<Counter> {
 public:
  using Family<Counter>::Family;

 protected:
  std::unique_ptr<Counter> NewChild() const override { return std::make_unique<Counter>(); }
};

class GaugeFamily final : public Family<Gauge> {
 public:
  using Family<Gauge>::Family;

 protected:
  std::unique_ptr<Gauge> NewChild() const override { return std::make_unique<Gauge>(); }
};

class HistogramFamily final : public Family<Histogram> {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> bounds);
  const std::vector<double>& bounds() const { return bounds_; }

 protected:
  std::unique_ptr<Histogram> NewChild() const override {
    return std::make_unique<Histogram>(&bounds_);
  }

 private:
  std::vector<double> bounds_;
};

// Bucket bounds. The latency defaults follow vLLM's, so that dashboards built
// for it read ours the same way.
std::vector<double> TimeToFirstTokenBuckets();
std::vector<double> InterTokenLatencyBuckets();
std::vector<double> RequestLatencyBuckets();  // e2e and queue time
// `count` bounds start, start*factor, ...; start > 0, factor > 1 (CHECK).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registers a family. Errors: InvalidArgument for a bad metric or label
  // name (reserved "__" prefix included), a repeated label name, a counter
  // name without the "_total" suffix or another type's name with it, a
  // histogram label "le" or bad buckets (not finite, not strictly
  // increasing); AlreadyExists when a sample name would clash with a
  // registered family's.
  absl::StatusOr<CounterFamily*> AddCounter(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names = {});
  absl::StatusOr<HistogramFamily*> AddHistogram(std::string_view name, std::string_view help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bounds);

  // All families in the text exposition format 0.0.4, ordered by name, and
  // the children of each ordered by label values.
  std::string Serialize() const;

 private:
  absl::Status Reserve(std::string_view name, MetricType type,
                       const std::vector<std::string>& label_names)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_ ABSL_GUARDED_BY(mu_);
  // Every sample name the families emit (a histogram's _bucket/_sum/_count).
  absl::flat_hash_set<std::string> sample_names_ ABSL_GUARDED_BY(mu_);
};

// Exposed for tests and callers that validate ahead of registration.
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
// Escaping rules of the text format: label values escape \ " and newline;
// HELP text escapes \ and newline.
std::string EscapeLabelValue(std::string_view value);
std::string EscapeHelp(std::string_view help);
// A sample value as the text format writes it: shortest round-trip form,
// "+Inf", "-Inf", "NaN".
std::string FormatValue(double value);

}  // namespace strata::metrics

#endif  // STRATA_SERVER_METRICS_METRICS_REGISTRY_H_
