// The in-process API of the engine: one engine thread owns a Scheduler and
// drives the step contract (Schedule -> Backend::Execute -> Update) for as
// long as there is work; any thread submits requests, cancels them and
// receives their TokenEvents. The gRPC server (server/) is one caller,
// benchmarks and tests are others.
//
// Threads. Submit, Cancel, ReleaseSession, Snapshot, BeginDrain and
// WaitIdle are thread-safe. Submissions and cancellations go through a
// mutex-guarded inbox that the engine thread drains once per step, so the
// hot path takes one short lock per step, never per token. The engine
// thread only schedules and executes: it hands each step's token events to
// an event dispatch thread (scheduler/event_dispatcher.h), which makes their
// text, applies stop strings, and calls the event sinks and the observer's
// per-request callbacks, in order per request. Sinks must not block (queue
// the event and return) and must not call back into the service except
// Cancel.
//
// Lifetime. The tokenizer, backend, observer and the scheduler options'
// tiers are borrowed and must outlive the service. The destructor stops the
// engine thread, then the dispatch thread: requests still in flight (queued
// ones included) end with an abort event first, and blocked ReleaseSession
// calls return.
//
// Failure. Submit asks the scheduler's admission gate, so what it accepts
// the scheduler takes. A failing Backend::Execute ends only the sequences of
// that step (kError); the service keeps serving.
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
#include "scheduler/engine_observer.h"
#include "scheduler/event_dispatcher.h"
#include "scheduler/request.h"
#include "scheduler/request_validation.h"
#include "scheduler/scheduler.h"

namespace strata::scheduler {

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

  // Ends a request with a kAbort event before any further event of it (no
  // event if it has already finished); the engine frees it at its next
  // iteration. Unknown ids are ignored: a cancel may race the finish.
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
