#include "scheduler/load_cost_model.h"

#include <algorithm>
#include <vector>

#include "common/check.h"

namespace strata::scheduler {
namespace {

// A measured duration is never taken as zero: a host hit's lookups can
// finish within the clock's resolution.
constexpr double kMinSeconds = 1e-9;

double Smooth(double current, double sample, double weight) {
  return current <= 0 ? sample : current + weight * (sample - current);
}

}  // namespace

LoadCostModel::LoadCostModel(const LoadCostOptions& options, int64_t block_bytes,
                             int64_t block_tokens)
    : options_(options), block_bytes_(block_bytes), block_tokens_(block_tokens) {
  CHECK_GE(block_bytes_, 0);  // 0 (no KV shape given): reads count as free
  CHECK_GT(block_tokens_, 0);
  CHECK(options_.smoothing > 0 && options_.smoothing <= 1);
}

double LoadCostModel::BlockReadSeconds(cache::Tier tier) const {
  return seconds_per_byte_[static_cast<size_t>(tier)] * static_cast<double>(block_bytes_);
}

double LoadCostModel::BlockRecomputeSeconds() const {
  if (seconds_per_token_ < 0) return -1;
  return seconds_per_token_ * static_cast<double>(block_tokens_);
}

int64_t LoadCostModel::CheapestPrefix(absl::Span<const cache::Tier> tiers) const {
  const auto n = static_cast<int64_t>(tiers.size());
  const double recompute = BlockRecomputeSeconds();
  if (recompute < 0) return n;  // prefill never measured: load, and learn
  // Total cost with the first k loaded, less the cost of recomputing all:
  // the prefix sum of (read - recompute). Ties go to loading more, which
  // leaves the compute to other requests.
  double cost = 0;
  double best_cost = 0;
  int64_t best = 0;
  for (int64_t k = 1; k <= n; ++k) {
    cost += BlockReadSeconds(tiers[static_cast<size_t>(k - 1)]) - recompute;
    if (cost <= best_cost) {
      best_cost = cost;
      best = k;
    }
  }
  return best;
}

int64_t LoadCostModel::BlocksToLoad(absl::Span<const cache::Tier> tiers) {
  const auto n = static_cast<int64_t>(tiers.size());
  if (n == 0) return 0;
  int64_t k = n;
  if (options_.policy == LoadPolicy::kNeverLoad) k = 0;
  if (options_.policy == LoadPolicy::kCost) {
    k = CheapestPrefix(tiers);
    // A tier declined many times in a row is read once anyway, to measure
    // it again.
    for (int64_t i = k; i < n && options_.probe_every > 0; ++i) {
      if (declined_in_a_row_[static_cast<size_t>(tiers[static_cast<size_t>(i)])] >=
          options_.probe_every) {
        k = n;
        ++stats_.probes;
        break;
      }
    }
    std::array<bool, cache::kNumTiers> declined{};
    for (int64_t i = 0; i < n; ++i) {
      const auto tier = static_cast<size_t>(tiers[static_cast<size_t>(i)]);
      if (i < k) declined_in_a_row_[tier] = 0;
      if (i >= k) declined[tier] = true;
    }
    for (size_t tier = 0; tier < declined.size(); ++tier) {
      if (declined[tier]) ++declined_in_a_row_[tier];
    }
  }
  if (k == n) {
    ++stats_.load_decisions;
  } else if (k == 0) {
    ++stats_.recompute_decisions;
  } else {
    ++stats_.partial_decisions;
  }
  stats_.recomputed_blocks += n - k;
  return k;
}

bool LoadCostModel::Trim(cache::PrefixLoad& load) {
  const std::vector<cache::Tier> tiers = load.tiers();
  load.Truncate(BlocksToLoad(tiers));
  return load.num_found() > 0;
}

void LoadCostModel::RecordLoad(cache::Tier tier, int64_t bytes, double seconds) {
  if (bytes <= 0 || tier == cache::Tier::kDevice) return;
  const auto index = static_cast<size_t>(tier);
  const double sample = std::max(seconds, kMinSeconds) / static_cast<double>(bytes);
  seconds_per_byte_[index] = Smooth(seconds_per_byte_[index], sample, options_.smoothing);
  ++stats_.load_samples[index];
}

void LoadCostModel::RecordLoad(const cache::PrefixLoad& load) {
  const std::optional<double> seconds = load.ReadSeconds();
  if (!seconds) return;
  int64_t disk = 0;
  int64_t host = 0;
  for (cache::Tier tier : load.tiers()) (tier == cache::Tier::kDisk ? disk : host) += 1;
  if (disk > 0) {
    RecordLoad(cache::Tier::kDisk, disk * block_bytes_, *seconds);
  } else {
    RecordLoad(cache::Tier::kHost, host * block_bytes_, *seconds);
  }
}

void LoadCostModel::RecordPrefill(int64_t tokens, double seconds) {
  if (tokens < std::max<int64_t>(options_.min_prefill_tokens, 1) || seconds <= 0) return;
  const double sample = seconds / static_cast<double>(tokens);
  seconds_per_token_ = Smooth(seconds_per_token_, sample, options_.smoothing);
  ++stats_.prefill_samples;
}

void LoadCostModel::RecordStep(const engine::StepPlan& plan, double seconds) {
  if (!plan.block_moves.empty()) return;
  int64_t tokens = 0;
  for (const engine::SequenceStep& step : plan.sequences) {
    if (step.blend) return;  // a blend step skips most of its rows' layers
    tokens += static_cast<int64_t>(step.token_ids.size());
  }
  RecordPrefill(tokens, seconds);
}

LoadCostStats LoadCostModel::stats() const {
  LoadCostStats stats = stats_;
  for (size_t tier = 0; tier < seconds_per_byte_.size(); ++tier) {
    stats.read_bytes_per_second[tier] =
        seconds_per_byte_[tier] > 0 ? 1.0 / seconds_per_byte_[tier] : 0.0;
  }
  stats.prefill_tokens_per_second = seconds_per_token_ > 0 ? 1.0 / seconds_per_token_ : 0.0;
  return stats;
}

}  // namespace strata::scheduler
