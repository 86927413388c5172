// Preemption (part of class Scheduler; kept apart from scheduler.cc, the
// step loop): who gives way to whom, and how a sequence gives its blocks up
// (swap or recompute, scheduler/preemption_policy.h).
#include <algorithm>
#include <optional>
#include <vector>

#include "scheduler/scheduler.h"
#include "scheduler/scheduler_sequence.h"

namespace strata::scheduler {

void Scheduler::GiveWay(RequestId victim, const Sequence& seq, PlanBuilder& builder) {
  if (sequences_.at(victim)->request.priority >= seq.request.priority) ++counters_.yields_to_new;
  PreemptRunning(victim, builder);
}

bool Scheduler::GivesWayTo(const Sequence& other, const Sequence& seq) const {
  if (other.request.priority < seq.request.priority) return true;
  if (options_.yield_to_new_after_tokens <= 0 || other.request.priority > seq.request.priority) {
    return false;
  }
  if (!seq.output_ids.empty() || seq.is_fill || other.is_fill || blend_active(other)) return false;
  if (other.num_tokens() - other.tokens_at_admission < options_.yield_to_new_after_tokens) {
    return false;
  }
  // Nothing much is thrown away: it is swapped out, or its full blocks stay
  // in the prefix cache, whose evictions go down to a lower tier, and only
  // its partial last block is computed again.
  return WouldSwap(other) || (prefix_cache() && has_tiers());
}

std::optional<RequestId> Scheduler::Victim(const Sequence& seq) const {
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    const Sequence& other = *sequences_.at(*it);
    if (GivesWayTo(other, seq)) return *it;
    // Past the lowest priorities, only a yield can still be found.
    if (options_.yield_to_new_after_tokens <= 0) break;
  }
  return std::nullopt;
}

bool Scheduler::CouldFitByPreempting(Sequence& seq, int64_t budget) {
  const int64_t block_size = options_.block_size;
  const int64_t cached = DevicePrefix(seq).num_tokens;
  const int64_t start = std::max(cached, seq.swapped_tokens);
  const int64_t n = std::min(seq.num_tokens() - start, budget);
  const int64_t needed = BlocksFor(start + n, block_size) - cached / block_size;
  // An upper bound: blocks shared with others are not freed by a preemption.
  int64_t freeable = cache_.num_available_blocks();
  for (RequestId other : running_) {
    if (GivesWayTo(*sequences_.at(other), seq)) {
      freeable += static_cast<int64_t>(cache_.block_table(other).size());
    }
  }
  return needed <= freeable;
}

void Scheduler::PreemptLast(PlanBuilder& builder) { PreemptRunning(running_.back(), builder); }

void Scheduler::PreemptRunning(RequestId victim, PlanBuilder& builder) {
  builder.RemoveStep(victim);
  Preempt(*sequences_.at(victim), builder);
}

void Scheduler::Preempt(Sequence& seq, PlanBuilder& builder) {
  const bool swapped = SwapOut(seq, builder);
  if (swapped) {
    ++counters_.preemptions_swap;
  } else {
    // Its full blocks stay cached: on return it recomputes only what was
    // evicted meanwhile, plus the partial tail. A blend sequence blends again.
    ++counters_.preemptions_recompute;
    seq.blended = false;
  }
  ReleaseChunks(seq);
  if (write_behind_.enabled()) write_behind_.Enqueue(cache_.IndexedKeys(seq.request.id));
  cache_.Free(seq.request.id);
  seq.computed = 0;
  MoveTo(seq, swapped ? RequestState::kSwapped : RequestState::kWaiting);
  seq.preempted_step = step_;
  seq.preempted_at = options_.now();
  ++num_preemptions_;
  ExtendKeys(seq);  // it resumes with its output: a longer prefix to look up
}

bool Scheduler::WouldSwap(const Sequence& seq) const {
  if (swap_ == nullptr) return false;
  const int64_t free_slots = max_swap_blocks_ - swap_->num_in_use();
  return ChoosePreemption(options_.preemption, /*swap_available=*/true, seq.computed,
                          options_.block_size, free_slots,
                          preemption_costs_.costs()) == PreemptAction::kSwap;
}

bool Scheduler::SwapOut(Sequence& seq, PlanBuilder& builder) {
  if (!WouldSwap(seq)) return false;
  const int64_t blocks = BlocksFor(seq.computed, options_.block_size);
  std::vector<int32_t> slots;
  for (int64_t i = 0; i < blocks; ++i) {
    std::optional<int32_t> slot = swap_->Acquire();
    if (!slot) {  // the allocator failed: recompute after all
      for (int32_t taken : slots) swap_->Release(taken);
      return false;
    }
    slots.push_back(*slot);
  }
  // Before any reuse of these blocks in this plan: recorded now, run first.
  const cache::BlockTable& table = cache_.block_table(seq.request.id);
  for (int64_t i = 0; i < blocks; ++i) {
    builder.SwapOutBlock(table[static_cast<size_t>(i)], swap_->Data(slots[static_cast<size_t>(i)]));
  }
  builder.RecordSwapOut(seq.request.id);
  cache_.RecordTransfer(cache::Tier::kDevice, cache::Tier::kHost, blocks);
  seq.swap_slots = std::move(slots);
  seq.swapped_tokens = seq.computed;
  counters_.swapped_out_blocks += blocks;
  return true;
}

}  // namespace strata::scheduler
