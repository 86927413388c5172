// Write-behind: copies of cached device blocks into the lower tier made
// ahead of their eviction, so that evicting them later costs no copy.
//
// Without it, a block's bytes reach the host (or disk) tier only when an
// allocation evicts it, inside the plan that reuses the block: the copy runs
// on the engine thread in the step that admits the next request, and a host
// hit whose admission evicts another prompt pays for that prompt's copy in
// its own time to first token. With it, when a request ends (or is
// preempted to be recomputed), the keys of its cached blocks are queued, and
// each later plan copies up to `blocks_per_step` of them down (more when the
// plan computes nothing), as ordinary device-to-tier moves that leave the
// device block in place. The tier then holds each key, so the eviction's
// Demotions::Add finds it held and copies nothing. LMCache and vLLM's CPU
// offloading store KV the same way, when it is computed rather than when it
// is evicted.
//
// A copy is only recorded for a key still indexed on the device when the
// plan is built, after the plan's allocations, so no later move of the same
// plan can reuse its block before the copy reads it (moves run in plan
// order). The tier may still decline it (disk admission) or hold it already:
// Demotions answers nullopt and nothing is copied. The queue holds at most
// `max_queued` keys; past that the oldest are dropped, and their eviction
// copies them as before.
//
// Not thread-safe: the engine thread, inside Schedule.
#ifndef STRATA_SCHEDULER_WRITE_BEHIND_H_
#define STRATA_SCHEDULER_WRITE_BEHIND_H_

#include <cstdint>
#include <deque>

#include "absl/container/flat_hash_set.h"
#include "absl/types/span.h"
#include "cache/block_hash.h"
#include "cache/demotions.h"
#include "cache/kv_cache_manager.h"
#include "scheduler/plan_builder.h"

namespace strata::scheduler {

class WriteBehind {
 public:
  // A plan that computes nothing copies this many times blocks_per_step.
  static constexpr int64_t kIdleFactor = 8;

  // blocks_per_step 0: off (Enqueue ignores everything).
  WriteBehind(int64_t blocks_per_step, int64_t max_queued);

  bool enabled() const { return blocks_per_step_ > 0; }

  // Queues keys to copy down, in order; keys already queued keep their place.
  void Enqueue(absl::Span<const cache::BlockKey> keys);

  // Keys waiting to be copied.
  int64_t num_queued() const { return static_cast<int64_t>(queue_.size()); }

  // Records this plan's copies: up to blocks_per_step (times kIdleFactor when
  // `idle`) queued keys that are still indexed on the device and that the
  // tier wants, each a Demote move from its device block. Returns the number
  // of copies recorded; the queue gives up the keys it looked at.
  int64_t AddTo(PlanBuilder& builder, const cache::KvCacheManager& cache,
                cache::Demotions& demotions, bool idle);

 private:
  const int64_t blocks_per_step_;
  const int64_t max_queued_;
  std::deque<cache::BlockKey> queue_;
  absl::flat_hash_set<cache::BlockKey> queued_;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_WRITE_BEHIND_H_
