#include "server/metrics/metrics_registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace strata::metrics {
namespace {

bool IsNameChar(char c, bool first, bool allow_colon) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (allow_colon && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool IsValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!IsNameChar(name[i], i == 0, allow_colon)) return false;
  }
  return true;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Adds `amount` to an atomic double. std::atomic<double>::fetch_add is a
// compare-exchange loop in libstdc++ as well; spelled out to keep the
// memory order explicit.
void AtomicAdd(std::atomic<double>& target, double amount) {
  double current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + amount, std::memory_order_relaxed)) {
  }
}

// `{a="x",b="y"}` for the given names and values, plus an optional trailing
// `le` label for histogram buckets; empty when there are no labels at all.
std::string RenderLabels(const std::vector<std::string>& names,
                         const std::vector<std::string>& values, std::string_view le = {}) {
  if (names.empty() && le.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    absl::StrAppend(&out, names[i], "=\"", EscapeLabelValue(values[i]), "\"");
  }
  if (!le.empty()) {
    if (!names.empty()) out += ',';
    absl::StrAppend(&out, "le=\"", std::string(le), "\"");
  }
  out += '}';
  return out;
}

void AppendSample(std::string* out, std::string_view name, std::string_view labels, double value) {
  absl::StrAppend(out, std::string(name), std::string(labels), " ", FormatValue(value), "\n");
}

absl::Status ValidateBounds(const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return absl::InvalidArgumentError(
          "histogram bucket bounds must be finite (+Inf is implicit)");
    }
    if (i > 0 && !(bounds[i] > bounds[i - 1])) {
      return absl::InvalidArgumentError("histogram bucket bounds must be strictly increasing");
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidMetricName(std::string_view name) {
  return IsValidName(name, /*allow_colon=*/true) && name.substr(0, 2) != "__";
}

bool IsValidLabelName(std::string_view name) {
  return IsValidName(name, /*allow_colon=*/false) && name.substr(0, 2) != "__";
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  CHECK(result.ec == std::errc());
  return std::string(buffer, result.ptr);
}

void Counter::Inc(double amount) {
  CHECK(amount >= 0.0);
  AtomicAdd(value_, amount);
}

void Gauge::Inc(double amount) { AtomicAdd(value_, amount); }

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds), counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_->size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // Bucket i counts values in (bound[i-1], bound[i]]: `le` is inclusive.
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_->begin(), bounds_->end(), value) - bounds_->begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(sum_, value);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot snapshot;
  snapshot.cumulative_counts.resize(bounds_->size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    snapshot.cumulative_counts[i] = running;
  }
  snapshot.sum = sum_.load(std::memory_order_relaxed);
  return snapshot;
}

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

void FamilyBase::AppendText(std::string* out) const {
  absl::StrAppend(out, "# HELP ", name_, " ", EscapeHelp(help_), "\n");
  absl::StrAppend(out, "# TYPE ", name_, " ", TypeName(type_), "\n");
  AppendChildren(out);
}

template <typename C>
absl::StatusOr<C*> Family<C>::TryLabels(absl::Span<const std::string_view> values) {
  if (values.size() != label_names().size()) {
    return absl::InvalidArgumentError(absl::StrCat(name(), " takes ", label_names().size(),
                                                   " label values, got ", values.size()));
  }
  std::vector<std::string> key(values.begin(), values.end());
  absl::MutexLock lock(&mu_);
  auto it = children_.find(key);
  if (it == children_.end()) it = children_.emplace(std::move(key), NewChild()).first;
  return it->second.get();
}

template <typename C>
C& Family<C>::Labels(std::initializer_list<std::string_view> values) {
  absl::StatusOr<C*> child = TryLabels(absl::MakeConstSpan(values.begin(), values.size()));
  CHECK(child.ok());
  return **child;
}

template <>
void Family<Counter>::AppendChildren(std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [values, child] : children_) {
    AppendSample(out, name(), RenderLabels(label_names(), values), child->Value());
  }
}

template <>
void Family<Gauge>::AppendChildren(std::string* out) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [values, child] : children_) {
    AppendSample(out, name(), RenderLabels(label_names(), values), child->Value());
  }
}

template <>
void Family<Histogram>::AppendChildren(std::string* out) const {
  absl::MutexLock lock(&mu_);
  const std::string bucket_name = absl::StrCat(name(), "_bucket");
  for (const auto& [values, child] : children_) {
    const Histogram::Snapshot snapshot = child->Collect();
    const std::vector<double>& bounds = child->bounds();
    for (size_t i = 0; i <= bounds.size(); ++i) {
      const std::string le = i < bounds.size() ? FormatValue(bounds[i]) : "+Inf";
      AppendSample(out, bucket_name, RenderLabels(label_names(), values, le),
                   static_cast<double>(snapshot.cumulative_counts[i]));
    }
    const std::string labels = RenderLabels(label_names(), values);
    AppendSample(out, absl::StrCat(name(), "_sum"), labels, snapshot.sum);
    // The +Inf bucket is the count, so _count always matches it even while
    // observations race with the scrape.
    AppendSample(out, absl::StrCat(name(), "_count"), labels,
                 static_cast<double>(snapshot.cumulative_counts.back()));
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> bounds)
    : Family<Histogram>(std::move(name), std::move(help), MetricType::kHistogram,
                        std::move(label_names)),
      bounds_(std::move(bounds)) {}

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

absl::Status MetricsRegistry::Reserve(std::string_view name, MetricType type,
                                      const std::vector<std::string>& label_names) {
  const std::string name_str(name);
  if (!IsValidMetricName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid metric name \"", name_str, "\""));
  }
  // promtool lints counters without _total and other types with it.
  const bool total = EndsWith(name, "_total");
  if (type == MetricType::kCounter && !total) {
    return absl::InvalidArgumentError(absl::StrCat("counter ", name_str, " must end in _total"));
  }
  if (type != MetricType::kCounter && total) {
    return absl::InvalidArgumentError(absl::StrCat("only counters may end in _total: ", name_str));
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!IsValidLabelName(label)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid label name \"", label, "\" for ", name_str));
    }
    if (type == MetricType::kHistogram && label == "le") {
      return absl::InvalidArgumentError(absl::StrCat("histogram ", name_str, " may not use le"));
    }
    if (std::find(label_names.begin(), label_names.begin() + static_cast<ptrdiff_t>(i), label) !=
        label_names.begin() + static_cast<ptrdiff_t>(i)) {
      return absl::InvalidArgumentError(
          absl::StrCat("repeated label name ", label, " for ", name_str));
    }
  }
  std::vector<std::string> samples = {name_str};
  if (type == MetricType::kHistogram) {
    samples = {name_str + "_bucket", name_str + "_sum", name_str + "_count"};
  }
  // The family name itself is reserved too, so a gauge `x` and a histogram
  // `x` (whose samples are x_bucket...) cannot both exist.
  samples.push_back(name_str);
  for (const std::string& sample : samples) {
    if (sample_names_.contains(sample) || families_.contains(sample)) {
      return absl::AlreadyExistsError(
          absl::StrCat("metric ", name_str, " clashes with a registered metric (", sample, ")"));
    }
  }
  sample_names_.insert(samples.begin(), samples.end());
  return absl::OkStatus();
}

absl::StatusOr<CounterFamily*> MetricsRegistry::AddCounter(std::string_view name,
                                                           std::string_view help,
                                                           std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = Reserve(name, MetricType::kCounter, label_names); !status.ok()) {
    return status;
  }
  auto family = std::make_unique<CounterFamily>(std::string(name), std::string(help),
                                                MetricType::kCounter, std::move(label_names));
  CounterFamily* result = family.get();
  families_.emplace(std::string(name), std::move(family));
  return result;
}

absl::StatusOr<GaugeFamily*> MetricsRegistry::AddGauge(std::string_view name, std::string_view help,
                                                       std::vector<std::string> label_names) {
  absl::MutexLock lock(&mu_);
  if (absl::Status status = Reserve(name, MetricType::kGauge, label_names); !status.ok()) {
    return status;
  }
  auto family = std::make_unique<GaugeFamily>(std::string(name), std::string(help),
                                              MetricType::kGauge, std::move(label_names));
  GaugeFamily* result = family.get();
  families_.emplace(std::string(name), std::move(family));
  return result;
}

absl::StatusOr<HistogramFamily*> MetricsRegistry::AddHistogram(std::string_view name,
                                                               std::string_view help,
                                                               std::vector<std::string> label_names,
                                                               std::vector<double> bounds) {
  if (absl::Status status = ValidateBounds(bounds); !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(std::string(name), ": ", status.message()));
  }
  absl::MutexLock lock(&mu_);
  if (absl::Status status = Reserve(name, MetricType::kHistogram, label_names); !status.ok()) {
    return status;
  }
  auto family = std::make_unique<HistogramFamily>(std::string(name), std::string(help),
                                                  std::move(label_names), std::move(bounds));
  HistogramFamily* result = family.get();
  families_.emplace(std::string(name), std::move(family));
  return result;
}

std::string MetricsRegistry::Serialize() const {
  std::string out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, family] : families_) family->AppendText(&out);
  return out;
}

}  // namespace strata::metrics
