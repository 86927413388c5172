// What EngineService reports as it runs: each request's events (EventSink),
// and per-step and per-request statistics (EngineObserver), for the server,
// metrics, logs, benchmarks and tests.
#ifndef STRATA_SCHEDULER_ENGINE_OBSERVER_H_
#define STRATA_SCHEDULER_ENGINE_OBSERVER_H_

#include <cstdint>
#include <functional>

#include "cache/kv_cache_manager.h"
#include "scheduler/finish_reason.h"
#include "scheduler/request.h"
#include "scheduler/scheduler.h"

namespace strata::scheduler {

// Receives one request's events, the last one with finished == true. Called
// on the service's event dispatch thread (scheduler/event_dispatcher.h).
using EventSink = std::function<void(const TokenEvent&)>;

// One engine step, as the observer sees it.
struct StepStats {
  double duration_s = 0;     // Schedule + Execute + Update
  int64_t batch_tokens = 0;  // tokens computed by the step, all sequences
  int64_t num_sequences = 0;
};

// One request's life, reported when it finishes.
struct RequestStats {
  RequestId id = 0;
  FinishReason finish_reason = FinishReason::kStop;
  PromptUsage usage;
  int64_t generated_tokens = 0;
  double queue_s = 0;  // submission to its first scheduled step (0 if never ran)
  double ttft_s = -1;  // submission to its first token; < 0 if none
  double e2e_s = 0;    // submission to finish
};

// Queue and cache state, published by the engine thread after every step.
struct EngineSnapshot {
  int64_t num_running = 0;
  int64_t num_waiting = 0;  // waiting and loading
  int64_t num_preemptions = 0;
  cache::CacheStats cache;
  SchedulerCounters counters;
  LoadCostStats load_costs;  // load versus recompute decisions and estimates
  int64_t device_blocks_total = 0;
  int64_t device_blocks_free = 0;    // never written, or freed and unkeyed
  int64_t device_blocks_cached = 0;  // unreferenced but reusable
  int64_t device_blocks_used = 0;    // referenced by a sequence
  int64_t steps = 0;                 // steps that ran the backend
};

// Metrics and logs hook; must not block. OnStep is called on the engine
// thread, the per-request callbacks on the event dispatch thread.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // After each step, after an iteration that ran no step but changed the
  // queues, and about twice a second while idle, so that gauges fed by the
  // tiers' own threads catch up (then `step` is empty: num_sequences == 0).
  virtual void OnStep(const StepStats& /*step*/, const EngineSnapshot& /*snapshot*/) {}
  // Each token after a request's first: the gap since its previous token.
  virtual void OnInterTokenLatency(double /*seconds*/) {}
  // Before the request's final event reaches its sink: a client that has
  // seen its stream end finds the request counted.
  virtual void OnRequestFinished(const RequestStats& /*stats*/) {}
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_ENGINE_OBSERVER_H_
