// Which running sequence gives up its blocks when they run out, and how (a
// policy of the scheduler, tested alone in
// tests/scheduler/preemption_policy_test.cc).
//
// Victim: the lowest Request::priority, the most recently admitted among
// equals. The scheduler keeps its running list in RunsBefore order, so the
// victim is always the last one, and a sequence never preempts one that is
// already in the plan being built unless that one has a lower priority.
//
// Action: a swap copies the sequence's computed blocks (its partial last
// block included) into host memory the scheduler holds (kDeviceToHost moves
// at the front of the plan) and copies them back on resumption
// (kHostToDevice), so nothing is recomputed. Recomputation frees the blocks:
// the full ones stay in the prefix cache, and on resumption only what was
// evicted meanwhile, plus the partial tail, is computed again. The rule:
//   kRecompute   always recompute.
//   kSwap        swap when a host tier is configured and the swap space has
//                room for the blocks; otherwise recompute.
//   kAuto        as kSwap, but a sequence with less than one block of
//                computed tokens recomputes: that is at most block_size - 1
//                tokens of compute, which costs less than the two copies of
//                a block and the bookkeeping of a swap.
// Either way the resumed sequence continues with exactly the tokens an
// uninterrupted run gives (the backends are batch-invariant).
//
// Pure. Thread-compatible.
#ifndef STRATA_SCHEDULER_PREEMPTION_POLICY_H_
#define STRATA_SCHEDULER_PREEMPTION_POLICY_H_

#include <cstdint>

namespace strata::scheduler {

// What a preempted sequence gives up.
enum class PreemptionMode : uint8_t {
  kAuto = 0,       // swap when a host tier has room and the copy is cheaper than recompute
  kSwap = 1,       // swap its blocks to the host tier (recompute when there is none)
  kRecompute = 2,  // free its blocks; they are recomputed on resumption
};

enum class PreemptAction : uint8_t { kRecompute, kSwap };

// `swap_available`: a host tier is configured (so swap memory may be used).
// `computed_tokens`: the sequence's tokens whose K/V its blocks hold.
// `free_swap_blocks`: blocks the swap space can still take.
PreemptAction ChoosePreemption(PreemptionMode mode, bool swap_available, int64_t computed_tokens,
                               int64_t block_size, int64_t free_swap_blocks);

// Running order: higher priority first, then earlier admission. The last
// sequence in this order is the preemption victim.
inline bool RunsBefore(int32_t priority_a, uint64_t admitted_a, int32_t priority_b,
                       uint64_t admitted_b) {
  if (priority_a != priority_b) return priority_a > priority_b;
  return admitted_a < admitted_b;
}

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_PREEMPTION_POLICY_H_
