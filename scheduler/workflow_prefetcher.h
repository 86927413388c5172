// Workflow prefetch (KVFlow's overlapped prefetch): when a request names the
// agents that run next (WorkflowTracker::MarkNext), whatever of their last
// blocks was demoted to the host or disk tier is read back ahead of their
// requests, and promoted into device blocks while other sequences step.
//
// A prefetch is a guess, so it only takes room nobody else needs sooner:
// free blocks, cached blocks at kNormal, and the kWorkflowSoon blocks of
// agents of the same workflow that run after it (the tracker keeps those
// first in the pool's eviction order, furthest first). Session, pinned and
// sooner agents' blocks are never displaced. Promoted blocks are
// held by a pseudo sequence (a negative id in the KvCacheManager) for the
// plan that moves them, then registered in the prefix index like computed
// ones and left cached at the priority their holders ask for. The plan
// carries each promotion's record (PrefetchFlight in InflightMoves) until
// then, beside its other moves. A prefetch of
// an agent whose request came, or whose hold expired, is dropped.
//
// Not thread-safe: the engine thread's, like the KvCacheManager it borrows.
#ifndef STRATA_SCHEDULER_WORKFLOW_PREFETCHER_H_
#define STRATA_SCHEDULER_WORKFLOW_PREFETCHER_H_

#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "cache/kv_cache_manager.h"
#include "cache/prefix_load.h"
#include "scheduler/key_holds.h"
#include "scheduler/plan_builder.h"
#include "scheduler/workflow_tracker.h"
#include "storage/tier_store.h"

namespace strata::scheduler {

class WorkflowPrefetcher {
 public:
  // Borrows all three; either store may be null (tier off).
  WorkflowPrefetcher(cache::KvCacheManager& cache, storage::TierStore* host,
                     storage::TierStore* disk)
      : cache_(cache), host_(host), disk_(disk) {}

  // Starts the lower-tier lookups of `turn`'s blocks past its device
  // prefix. No-op without tiers, when one is already pending for `agent`,
  // or when no tier holds the next block.
  void Start(const AgentKey& agent, const AgentTurn& turn);

  // While a plan is built: promotes the prefetches whose reads are done (of
  // agents still held soon) into device blocks, through `builder`
  // (PlanBuilder::Promote, then RecordPrefetch). Their evictions may demote
  // blocks first (through the cache's eviction listener), which is why this
  // runs with the plan.
  void Run(const WorkflowTracker& workflows, PlanBuilder& builder);

  // After the plan's moves ran (`performed`) or failed: registers the
  // blocks of the plan's `flights` and gives them the priority `holds` asks
  // for, or drops them; then restores each promoted workflow's
  // steps-to-execution order in the pool (WorkflowTracker::EvictionOrder).
  // Returns the blocks promoted.
  int64_t Finish(bool performed, std::vector<PrefetchFlight> flights,
                 const WorkflowTracker& workflows, const KeyHolds& holds);

  int64_t num_pending() const { return static_cast<int64_t>(pending_.size()); }
  bool HasReadsInFlight() const;

 private:
  struct Pending {
    AgentKey agent;
    std::unique_ptr<cache::PrefixLoad> load;
    int64_t first_block = 0;  // the agent's block the load starts at
  };
  // Blocks a promotion of `agent`'s blocks after `prefix` may take.
  int64_t Room(const cache::CachedPrefix& prefix, const AgentKey& agent,
               const WorkflowTracker& workflows) const;

  cache::KvCacheManager& cache_;
  storage::TierStore* host_;
  storage::TierStore* disk_;
  std::vector<Pending> pending_;
  cache::SeqId next_seq_ = std::numeric_limits<cache::SeqId>::min();
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_WORKFLOW_PREFETCHER_H_
