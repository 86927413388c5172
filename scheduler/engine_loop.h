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

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_ENGINE_LOOP_H_
