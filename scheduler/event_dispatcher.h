// EngineService's event dispatch: one thread that takes each step's token
// events from the engine thread, turns them into the client's text
// (OutputStream: incremental detokenization and stop strings), calls each
// request's sink and reports per-request statistics to the observer. The
// engine thread posts one batch per iteration and never waits for it, so
// detokenization, stop strings and slow sinks cost it nothing.
//
// A request that its OutputStream ends before the scheduler did (a stop
// string) is finished for its client at once; the dispatcher asks the engine
// to end it too (Callbacks::end_early) and drops the events still on their
// way for it.
//
// Threads: Post from the engine thread, Stop from the owner; everything
// else runs on the dispatch thread.
#ifndef STRATA_SCHEDULER_EVENT_DISPATCHER_H_
#define STRATA_SCHEDULER_EVENT_DISPATCHER_H_

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "scheduler/engine_observer.h"
#include "scheduler/output_stream.h"
#include "scheduler/request.h"

namespace strata::scheduler {

class EventDispatcher {
 public:
  struct Callbacks {
    // A stream ended before the scheduler knew (kStop on a stop string,
    // kError on an id the tokenizer cannot decode): end it there too.
    std::function<void(RequestId, FinishReason)> end_early;
    // A request's final event has been delivered to its sink.
    std::function<void()> on_finished;
  };

  // A request the engine thread accepted, before any of its events.
  struct Registration {
    RequestId id = 0;
    EventSink sink;
    Clock::time_point submitted;
    std::unique_ptr<OutputStream> stream;
  };

  // One engine iteration's worth, delivered in order.
  struct Batch {
    std::vector<Registration> registrations;
    std::vector<RequestId> first_scheduled;  // in their first step at `time`'s step start
    Clock::time_point step_start;
    std::vector<TokenEvent> events;
    Clock::time_point time;  // when the events were produced
    bool empty() const {
      return registrations.empty() && first_scheduled.empty() && events.empty();
    }
  };

  // Starts the dispatch thread. `observer` may be null; it is borrowed.
  EventDispatcher(EngineObserver* observer, Callbacks callbacks);
  ~EventDispatcher();  // Stop()
  EventDispatcher(const EventDispatcher&) = delete;
  EventDispatcher& operator=(const EventDispatcher&) = delete;

  // Queues `batch` for the dispatch thread; never blocks on it.
  void Post(Batch batch);

  // Any thread (a sink included): ends request `id` for its client with a
  // kAbort event before any other event of it is delivered; the engine's
  // later events for it are dropped. Unknown or finished ids are ignored.
  void Cancel(RequestId id);

  // Delivers everything posted, then ends every request still open with a
  // kAbort event, and joins the thread. Nothing may be posted after it.
  void Stop();

 private:
  // A request's life as the dispatch thread tracks it.
  struct Active {
    EventSink sink;
    std::unique_ptr<OutputStream> stream;
    Clock::time_point submitted;
    std::optional<Clock::time_point> first_scheduled;
    std::optional<Clock::time_point> first_token;
    Clock::time_point last_token;
    int64_t tokens = 0;
    PromptUsage usage;
  };

  void Run();
  // Ends the requests cancelled since the last call.
  void DeliverCancels();
  void Deliver(Batch& batch);
  void DeliverEvent(TokenEvent& event, Clock::time_point now);
  void FinishRequest(RequestId id, Active& active, const TokenEvent& event, Clock::time_point now);

  EngineObserver* const observer_;
  const Callbacks callbacks_;

  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Batch> queue_;         // guarded by mu_
  std::vector<RequestId> cancels_;  // guarded by mu_
  // Set after a push to cancels_: checked after every event without the lock.
  std::atomic<bool> cancel_pending_{false};
  bool stop_ = false;  // guarded by mu_

  // Dispatch thread only.
  absl::flat_hash_map<RequestId, Active> active_;

  std::thread thread_;  // last: starts once everything above exists
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_EVENT_DISPATCHER_H_
