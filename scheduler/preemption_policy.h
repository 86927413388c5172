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
//   kAuto        as kSwap when swapping is cheaper: once PreemptionCosts
//                are measured, swap when copying the blocks out and back
//                (2 x blocks x copy time per block) costs less than
//                recomputing the computed tokens (tokens x compute time per
//                token; an upper bound, since full blocks still cached on
//                resumption are not recomputed, and what preemption under
//                pressure leaves cached is little). Before anything is
//                measured, a sequence with less than one block of computed
//                tokens recomputes (at most block_size - 1 tokens of
//                compute, less than two block copies and a swap's
//                bookkeeping) and the rest swap.
// Either way the resumed sequence continues with exactly the tokens an
// uninterrupted run gives (the backends are batch-invariant).
//
// Pure. Thread-compatible.
#ifndef STRATA_SCHEDULER_PREEMPTION_POLICY_H_
#define STRATA_SCHEDULER_PREEMPTION_POLICY_H_

#include <cstdint>

#include "engine/step.h"

namespace strata::scheduler {

// What a preempted sequence gives up.
enum class PreemptionMode : uint8_t {
  kAuto = 0,       // swap when a host tier has room and the copy is cheaper than recompute
  kSwap = 1,       // swap its blocks to the host tier (recompute when there is none)
  kRecompute = 2,  // free its blocks; they are recomputed on resumption
};

enum class PreemptAction : uint8_t { kRecompute, kSwap };

// What kAuto compares; a zero field is not measured yet.
struct PreemptionCosts {
  double compute_s_per_token = 0;  // computing one prompt token's K/V
  double copy_s_per_block = 0;     // copying one block between device and host
  bool known() const { return compute_s_per_token > 0 && copy_s_per_block > 0; }
};

// `swap_available`: a host tier is configured (so swap memory may be used).
// `computed_tokens`: the sequence's tokens whose K/V its blocks hold.
// `free_swap_blocks`: blocks the swap space can still take.
PreemptAction ChoosePreemption(PreemptionMode mode, bool swap_available, int64_t computed_tokens,
                               int64_t block_size, int64_t free_swap_blocks,
                               const PreemptionCosts& costs = {});

// Measures PreemptionCosts from the steps the engine runs, by fitting each
// step's time as a linear function of its work:
//   seconds = a x computed tokens + b x sequences + c x moved blocks + d
// (least squares over the recent steps: sums decayed by kDecay per step).
// `a` is the compute time per token (what a recompute costs per token: a
// prefill's marginal token), `c` the copy time per block. Decode's weight
// reads per step land in `b` and `d`, so they do not pass for copies or
// compute. costs() stays unknown (zero) until kMinMoveSteps steps with moves
// and as many without were seen and the fit gives positive a and c. An
// estimate from whole steps on a shared machine: noisy, but it only has to
// tell apart costs that differ by orders of magnitude (a memcpy against a
// prefill on the CPU; PCIe against tensor cores on a GPU).
//
// Not thread-safe: the engine thread's, like the scheduler that feeds it.
class PreemptionCostModel {
 public:
  static constexpr double kDecay = 0.98;
  static constexpr int64_t kMinMoveSteps = 4;

  // `seconds`: from the plan's end of scheduling to its Update (the
  // backend's Execute). Samples of zero or negative time (a frozen test
  // clock) and empty plans are ignored.
  void ObserveStep(const engine::StepPlan& plan, double seconds);
  // The same with the plan's counts.
  void Observe(int64_t computed_tokens, int64_t sequences, int64_t moved_blocks, double seconds);

  // The current fit (recomputed on each Observe).
  const PreemptionCosts& costs() const { return costs_; }

 private:
  static constexpr int kFeatures = 4;
  void Fit();

  double xtx_[kFeatures][kFeatures] = {};
  double xty_[kFeatures] = {};
  int64_t move_steps_ = 0;
  int64_t plain_steps_ = 0;
  PreemptionCosts costs_;
};

// Running order: higher priority first, then earlier admission. The last
// sequence in this order is the preemption victim.
inline bool RunsBefore(int32_t priority_a, uint64_t admitted_a, int32_t priority_b,
                       uint64_t admitted_b) {
  if (priority_a != priority_b) return priority_a > priority_b;
  return admitted_a < admitted_b;
}

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_PREEMPTION_POLICY_H_
