// The in-process API of the engine: one engine thread owns a Scheduler and
// drives the step contract (Schedule -> Backend::Execute -> Update) for as
// long as there is work; any thread submits requests, cancels them and
// receives their TokenEvents. The gRPC server (server/) is one caller,
// benchmarks and tests are others.
//
// Threads. Submit, Cancel, ReleaseSession, Snapshot, BeginDrain and
// WaitIdle are thread-safe. Submissions and cancellations go through a
// mutex-guarded inbox that the engine thread drains once per step, so the
// hot path takes one short lock per step, never per token. Event sinks and
// the observer are called on the engine thread, in order per request: they
// must not block (queue the event and return) and must not call back into
// the service except Cancel.
//
// Lifetime. The tokenizer, backend, observer and the scheduler options'
// tiers are borrowed and must outlive the service. The destructor stops the
// engine thread: requests still in flight (queued ones included) end with an
// "abort" event first, and blocked ReleaseSession calls return.
//
// Failure. A request the scheduler cannot take after Submit accepted it (a
// race, e.g. the waiting queue refilled by preemptions) ends with one
// finished "error" event. A failing Backend::Execute ends only the
// sequences of that step ("error"); the service keeps serving.
#ifndef STRATA_SCHEDULER_ENGINE_SERVICE_H_
#define STRATA_SCHEDULER_ENGINE_SERVICE_H_

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cache/kv_cache_manager.h"
#include "engine/backend.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/request.h"
#include "scheduler/request_validation.h"
#include "scheduler/scheduler.h"

namespace strata::scheduler {

// Receives one request's events, the last one with finished == true. Called
// on the engine thread.
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
  std::string finish_reason;
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

// Metrics and logs hook. Called on the engine thread; must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  // After each step, and after an iteration that ran no step but changed the
  // queues (then `step` is empty: num_sequences == 0).
  virtual void OnStep(const StepStats& /*step*/, const EngineSnapshot& /*snapshot*/) {}
  // Each token after a request's first: the gap since its previous token.
  virtual void OnInterTokenLatency(double /*seconds*/) {}
  virtual void OnRequestFinished(const RequestStats& /*stats*/) {}
};

struct EngineServiceOptions {
  // num_blocks, vocab_size, max_model_len and kv_spec left at 0 are taken
  // from the backend (its arena's block count and block shape, the model's
  // vocabulary and context).
  SchedulerOptions scheduler;
  // Longest prompt accepted, in tokens; 0: the model's context less one.
  int64_t max_prompt_tokens = 0;
};

class EngineService {
 public:
  // Starts the engine thread. `observer` may be null; it is borrowed.
  EngineService(const EngineServiceOptions& options, const engine::Tokenizer& tokenizer,
                engine::Backend& backend, EngineObserver* observer = nullptr);
  ~EngineService();
  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;

  // Queues `request` (its id is ignored) and returns the id it runs under;
  // `sink` then receives its events. Checked here, on the caller's thread, so
  // that a bad request fails at once: INVALID_ARGUMENT naming the field (an
  // empty prompt, a token id outside the vocabulary, a prompt over
  // max_prompt_tokens or leaving no room to generate, bad sampling values);
  // RESOURCE_EXHAUSTED when the waiting queue is full or the prompt alone
  // needs more KV blocks than the device holds; UNAVAILABLE once draining;
  // INVALID_ARGUMENT for an empty `sink`. On error `sink` is never called.
  absl::StatusOr<RequestId> Submit(Request request, EventSink sink);

  // Ends a request at the next step with an "abort" event (no event if it
  // has already finished). Unknown ids are ignored: a cancel may race the
  // finish.
  void Cancel(RequestId id);

  // Scheduler::ReleaseSession, run on the engine thread between steps;
  // blocks until done. UNAVAILABLE once the service is shutting down.
  absl::Status ReleaseSession(std::string cache_salt, std::string session_id);

  // The state after the latest step.
  EngineSnapshot Snapshot() const;

  // Refuses new submissions (UNAVAILABLE) from now on; what is queued and
  // running carries on.
  void BeginDrain();
  bool draining() const { return draining_.load(); }
  // Waits until no request is in flight or `timeout` passes; true if idle.
  bool WaitIdle(Clock::duration timeout);
  // Requests submitted and not yet finished.
  int64_t num_in_flight() const { return in_flight_.load(); }

  // Scheduler::ValidateCache, run on the engine thread between steps; blocks
  // until done. UNAVAILABLE once the service is shutting down. For tests.
  absl::Status ValidateCacheForTesting();

 private:
  // Implementation detail; defined in engine_service.cc.
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> in_flight_{0};
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_ENGINE_SERVICE_H_
