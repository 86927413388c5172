// Load versus recompute: whether reading a waiting request's cached prefix
// back from a lower tier (host memory, disk) gets its first token sooner
// than computing those tokens again. Both sides are measured, not assumed:
//  - each tier's read speed, from the loads that completed: the bytes a
//    PrefixLoad read from the tier over the time from its lookups to its
//    last read's completion (the store's own timestamp, so a load noticed
//    late by a busy engine thread is not taken for a slow one). A load with
//    any disk block measures the disk (host lookups cost next to nothing);
//  - prefill speed, from the engine's steps: tokens over Backend::Execute's
//    time, for steps of at least min_prefill_tokens and no block moves
//    (decode steps and steps that also copy blocks would distort it).
// Each is an exponentially weighted mean of seconds per byte, per token.
//
// The decision, over the blocks a load found in chain order: keep the
// leading k that minimise sum(read cost of blocks < k) + (n - k) *
// recompute cost of a block. Every block of a tier costs the same, so this
// loads all, none, or (tiers mixed) a leading run. What a step then does
// with the loaded blocks (a host->device copy) is the same for every tier
// and is not modelled: on the CPU backend it is a memcpy, on CUDA a DMA at
// PCIe speed, both far below recomputing a block.
//
// Unknowns: a tier never measured is assumed free to read, and a prefill
// speed never measured infinitely slow: the first loads go ahead, and
// measure. A tier judged too slow is not read again, so nothing would tell
// when it got faster: after probe_every decisions in a row against a tier,
// the next load from it goes ahead anyway (a probe) and measures it again.
//
// Not thread-safe: the engine thread owns it (through the Scheduler).
#ifndef STRATA_SCHEDULER_LOAD_COST_MODEL_H_
#define STRATA_SCHEDULER_LOAD_COST_MODEL_H_

#include <array>
#include <cstdint>

#include "absl/types/span.h"
#include "cache/kv_cache_manager.h"
#include "cache/prefix_load.h"
#include "engine/step.h"

namespace strata::scheduler {

enum class LoadPolicy : uint8_t {
  kCost,        // load what the measured costs say is faster
  kAlwaysLoad,  // load everything found (the behaviour before the model)
  kNeverLoad,   // recompute everything (benchmarks' baseline)
};

struct LoadCostOptions {
  // The daemon sets kCost (cache.load_by_cost); the library keeps loading
  // unless asked, so callers written before the model behave as they did.
  LoadPolicy policy = LoadPolicy::kAlwaysLoad;
  // Weight of a new measurement in the running means, in (0, 1].
  double smoothing = 0.25;
  // Steps computing fewer tokens than this do not measure prefill speed.
  int64_t min_prefill_tokens = 32;
  // Decisions in a row against a tier after which it is read once anyway;
  // 0: never probe.
  int64_t probe_every = 32;
};

// Counters and the current estimates, for metrics, benchmarks and tests.
struct LoadCostStats {
  int64_t load_decisions = 0;       // every block found is loaded
  int64_t recompute_decisions = 0;  // none is: all are recomputed
  int64_t partial_decisions = 0;    // a leading run is loaded, the rest recomputed
  int64_t probes = 0;               // loads made against the estimate, to re-measure
  int64_t recomputed_blocks = 0;    // blocks a tier held that were recomputed instead
  // Running means; 0 before the first measurement. Indexed by cache::Tier
  // (the device entry stays 0).
  std::array<double, cache::kNumTiers> read_bytes_per_second{};
  std::array<int64_t, cache::kNumTiers> load_samples{};
  double prefill_tokens_per_second = 0;
  int64_t prefill_samples = 0;
};

class LoadCostModel {
 public:
  // `block_bytes`: bytes of one KV block; `block_tokens`: tokens in one.
  LoadCostModel(const LoadCostOptions& options, int64_t block_bytes, int64_t block_tokens);

  // How many of the leading blocks, whose tiers are `tiers` in chain
  // order, to load; the rest are recomputed. Counts the decision.
  int64_t BlocksToLoad(absl::Span<const cache::Tier> tiers);

  // BlocksToLoad on `load`'s blocks, then truncates it to them. False when
  // nothing is left to load.
  bool Trim(cache::PrefixLoad& load);

  // A finished load: `bytes` read from `tier` in `seconds`.
  void RecordLoad(cache::Tier tier, int64_t bytes, double seconds);
  // The same from a ready PrefixLoad (attributed to the disk if it read
  // any disk block, else to the host). Ignored if it is not ready.
  void RecordLoad(const cache::PrefixLoad& load);

  // A step computing `tokens` that took `seconds` (measures prefill speed
  // when it qualifies; see the top).
  void RecordPrefill(int64_t tokens, double seconds);
  // The same for an executed plan: its tokens, skipped when it moved blocks
  // or blended.
  void RecordStep(const engine::StepPlan& plan, double seconds);

  // Estimated seconds to read one block from `tier`; 0 when unmeasured.
  double BlockReadSeconds(cache::Tier tier) const;
  // Estimated seconds to recompute one block; negative when unmeasured.
  double BlockRecomputeSeconds() const;

  LoadCostStats stats() const;
  const LoadCostOptions& options() const { return options_; }

 private:
  // Cost-optimal leading run, before probing.
  int64_t CheapestPrefix(absl::Span<const cache::Tier> tiers) const;

  LoadCostOptions options_;
  int64_t block_bytes_;
  int64_t block_tokens_;
  std::array<double, cache::kNumTiers> seconds_per_byte_{};  // 0: unmeasured
  double seconds_per_token_ = -1;                            // < 0: unmeasured
  // Decisions against each tier since it was last read.
  std::array<int64_t, cache::kNumTiers> declined_in_a_row_{};
  LoadCostStats stats_;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_LOAD_COST_MODEL_H_
