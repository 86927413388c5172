#include "scheduler/preemption_policy.h"

namespace strata::scheduler {

PreemptAction ChoosePreemption(PreemptionMode mode, bool swap_available, int64_t computed_tokens,
                               int64_t block_size, int64_t free_swap_blocks) {
  if (mode == PreemptionMode::kRecompute || !swap_available || computed_tokens <= 0) {
    return PreemptAction::kRecompute;
  }
  const int64_t blocks = (computed_tokens + block_size - 1) / block_size;
  if (blocks > free_swap_blocks) return PreemptAction::kRecompute;
  if (mode == PreemptionMode::kAuto && computed_tokens < block_size) {
    return PreemptAction::kRecompute;
  }
  return PreemptAction::kSwap;
}

}  // namespace strata::scheduler
