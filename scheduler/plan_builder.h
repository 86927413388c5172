// Builds one StepPlan: the sequences' work under the token budget, and the
// block moves together with the record of what they leave in flight (the
// staging slots demotions fill, the loads whose bytes promotions read, the
// swap memory swaps fill and empty). Scheduler::Schedule makes one per step;
// the record it hands over (InflightMoves: loads, swaps, workflow
// prefetches) is settled by the Update or FailStep of that plan, once the
// backend has run the moves or not.
//
// Move order. The backend performs a plan's moves in the order they were
// recorded, before the forward pass. Each move is recorded when the
// bookkeeping that needs it happens, which is what makes the order right: a
// block evicted by an allocation is demoted during that allocation (its read
// recorded before anything reuses the block), and a promotion or swap-in
// into a block is recorded after the allocation that gave the block out.
//
// Not thread-safe: the engine thread, inside one Schedule.
#ifndef STRATA_SCHEDULER_PLAN_BUILDER_H_
#define STRATA_SCHEDULER_PLAN_BUILDER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"
#include "cache/block_hash.h"
#include "cache/prefix_load.h"
#include "engine/step.h"
#include "scheduler/request.h"
#include "scheduler/workflow_tracker.h"

namespace strata::scheduler {

// A workflow prefetch the plan promotes (scheduler/workflow_prefetcher.h):
// a pseudo sequence holds its device blocks until the plan ran, when they
// are registered in the prefix index (or freed).
struct PrefetchFlight {
  cache::SeqId seq = 0;
  AgentKey agent;
  std::vector<TokenId> tokens;              // the blocks' tokens, the device prefix's included
  std::vector<cache::Tier> tiers;           // of each promoted block
  std::unique_ptr<cache::PrefixLoad> load;  // owns the bytes the moves read
};

// What a plan's moves leave in flight until its Update (or FailStep), besides
// the demotions, which cache::Demotions records (cache/demotions.h).
struct InflightMoves {
  // Loads whose bytes the plan's promotions read (host hits stay pinned
  // until these are destroyed).
  std::vector<std::unique_ptr<cache::PrefixLoad>> promotions;
  // Requests swapped out by the plan: usable only if its copies ran.
  std::vector<RequestId> swapped_out;
  // Swap slots the plan's swap-ins read, freed after it.
  std::vector<int32_t> swap_in_slots;
  // Workflow prefetches the plan promotes.
  std::vector<PrefetchFlight> prefetches;
  // Of the plan's demotions, write-behind copies (scheduler/write_behind.h).
  int64_t written_behind = 0;

  bool empty() const {
    return promotions.empty() && swapped_out.empty() && swap_in_slots.empty() &&
           prefetches.empty() && written_behind == 0;
  }
};

class PlanBuilder {
 public:
  // `finished_ids`: sequences that ended since the previous plan.
  PlanBuilder(int64_t token_budget, std::vector<engine::SequenceId> finished_ids);

  // Tokens the plan may still compute.
  int64_t budget() const { return budget_; }
  bool has_budget() const { return budget_ > 0; }

  // Adds one sequence's work, charged to the budget (a blend step's span may
  // exceed what is left: the budget then drops to 0).
  void AddStep(engine::SequenceStep step);
  // Removes `id`'s step, if the plan holds one, and refunds its tokens.
  void RemoveStep(engine::SequenceId id);

  // Moves, in the order of the header comment.
  // `dst`: where cache::Demotions wants the block's bytes.
  void Demote(cache::BlockId block, absl::Span<std::byte> dst);
  void Promote(cache::BlockId block, absl::Span<const std::byte> bytes);
  // Keeps `load` (whose bytes Promote calls named) alive until the plan ran.
  void KeepLoad(std::unique_ptr<cache::PrefixLoad> load);
  void SwapOutBlock(cache::BlockId block, absl::Span<std::byte> swap);
  void RecordSwapOut(RequestId id);
  void SwapInBlock(cache::BlockId block, absl::Span<const std::byte> swap);
  // A swap slot this plan may read: freed once it ran.
  void FreeSwapSlotAfter(int32_t slot);
  // Records a prefetch whose blocks Promote calls just named.
  void RecordPrefetch(PrefetchFlight flight);
  // Counts `copies` of the Demote calls as write-behind copies.
  void RecordWriteBehind(int64_t copies) { inflight_.written_behind += copies; }
  // Whether the plan computes anything (else it only moves blocks).
  bool computes() const { return !plan_.sequences.empty(); }

  // The plan and its in-flight record; the builder is spent.
  engine::StepPlan TakePlan() { return std::move(plan_); }
  InflightMoves TakeInflight() { return std::move(inflight_); }

 private:
  engine::StepPlan plan_;
  InflightMoves inflight_;
  int64_t budget_ = 0;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_PLAN_BUILDER_H_
