// One iteration of the engine thread's loop (DESIGN.md, "The step contract"):
// Schedule, Execute, Update. `strata generate` and the daemon both run it.
#ifndef STRATA_SCHEDULER_ENGINE_LOOP_H_
#define STRATA_SCHEDULER_ENGINE_LOOP_H_

#include <vector>

#include "engine/backend.h"
#include "scheduler/scheduler.h"

namespace strata::scheduler {

// Runs one step and returns its events. A backend error fails only the
// sequences of that step (each gets an "error" event); the scheduler and the
// backend stay usable. Call from the engine thread.
std::vector<TokenEvent> RunStep(Scheduler& scheduler, engine::Backend& backend);

// The second half of RunStep, for callers that look at the plan first
// (EngineService times and counts it): executes `plan`, which the last
// Schedule returned, and returns Update's (or FailStep's) events.
std::vector<TokenEvent> ExecutePlan(Scheduler& scheduler, engine::Backend& backend,
                                    const engine::StepPlan& plan);

// True when `plan` gives the backend anything to do.
inline bool PlanComputes(const engine::StepPlan& plan) {
  return !plan.sequences.empty() || !plan.block_moves.empty();
}

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_ENGINE_LOOP_H_
