#include "scheduler/engine_loop.h"

#include <thread>

namespace strata::scheduler {

std::vector<TokenEvent> RunStep(Scheduler& scheduler, engine::Backend& backend) {
  engine::StepPlan plan = scheduler.Schedule();
  if (plan.sequences.empty() && plan.block_moves.empty()) {
    // Nothing to compute (perhaps only disk reads in flight: give their
    // threads the core), but aborts may still need their events.
    if (scheduler.num_loading() > 0 || scheduler.num_prefetching() > 0) std::this_thread::yield();
    return scheduler.Update(plan, engine::StepResult{});
  }
  absl::StatusOr<engine::StepResult> result = backend.Execute(plan);
  if (!result.ok()) return scheduler.FailStep(plan, result.status());
  return scheduler.Update(plan, *result);
}

}  // namespace strata::scheduler
