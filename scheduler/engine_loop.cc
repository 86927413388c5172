#include "scheduler/engine_loop.h"

#include <chrono>
#include <thread>

namespace strata::scheduler {
namespace {

constexpr std::chrono::microseconds kLoadPoll(100);

}  // namespace

std::vector<TokenEvent> RunStep(Scheduler& scheduler, engine::Backend& backend) {
  return ExecutePlan(scheduler, backend, scheduler.Schedule());
}

std::vector<TokenEvent> ExecutePlan(Scheduler& scheduler, engine::Backend& backend,
                                    const engine::StepPlan& plan) {
  if (!PlanComputes(plan)) {
    // Nothing to compute, but aborts and deadlines may still need events.
    // With only disk reads in flight, pause before the next plan: a yield
    // alone let the loop plan hundreds of thousands of empty steps per
    // second against the readers it waits for (two cores), where a disk
    // read takes milliseconds and a pause costs at most kLoadPoll.
    if (scheduler.num_loading() > 0 || scheduler.num_prefetching() > 0) {
      std::this_thread::sleep_for(kLoadPoll);
    }
    return scheduler.Update(plan, engine::StepResult{});
  }
  // A backend error fails only this step's sequences: the backend validated
  // the plan before touching the arena, and the others carry on.
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<engine::StepResult> result = backend.Execute(plan);
  if (!result.ok()) return scheduler.FailStep(plan, result.status());
  // Prefill speed, for load versus recompute.
  scheduler.load_costs().RecordStep(
      plan, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return scheduler.Update(plan, *result);
}

}  // namespace strata::scheduler
