#include "scheduler/event_dispatcher.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/check.h"

namespace strata::scheduler {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

EventDispatcher::EventDispatcher(EngineObserver* observer, Callbacks callbacks)
    : observer_(observer), callbacks_(std::move(callbacks)), thread_([this] { Run(); }) {}

EventDispatcher::~EventDispatcher() { Stop(); }

void EventDispatcher::Post(Batch batch) {
  if (batch.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(batch));
  }
  wake_.notify_one();
}

void EventDispatcher::Cancel(RequestId id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.push_back(id);
  }
  cancel_pending_.store(true);
  wake_.notify_one();
}

void EventDispatcher::DeliverCancels() {
  if (!cancel_pending_.exchange(false)) return;
  std::vector<RequestId> cancels;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels.swap(cancels_);
  }
  for (RequestId id : cancels) {
    auto it = active_.find(id);
    if (it == active_.end()) continue;
    TokenEvent event{.request_id = id,
                     .finished = true,
                     .finish_reason = FinishReason::kAbort,
                     .usage = it->second.usage,
                     .generated_tokens = it->second.tokens};
    FinishRequest(id, it->second, event, Clock::now());
  }
}

void EventDispatcher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void EventDispatcher::Run() {
  while (true) {
    std::deque<Batch> taken;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || !queue_.empty() || !cancels_.empty(); });
      taken.swap(queue_);
      stopping = stop_;
    }
    DeliverCancels();
    for (Batch& batch : taken) Deliver(batch);
    if (stopping) break;
  }
  // What the engine never finished (it stopped first) ends as an abort.
  std::vector<RequestId> open;
  for (const auto& [id, active] : active_) open.push_back(id);
  std::sort(open.begin(), open.end());
  for (RequestId id : open) {
    TokenEvent event{.request_id = id, .finished = true, .finish_reason = FinishReason::kAbort};
    DeliverEvent(event, Clock::now());
  }
}

void EventDispatcher::Deliver(Batch& batch) {
  for (Registration& r : batch.registrations) {
    Active& active = active_[r.id];
    active.sink = std::move(r.sink);
    active.stream = std::move(r.stream);
    active.submitted = r.submitted;
  }
  // A cancel from a sink in an earlier batch ends its request before this
  // batch's events for it.
  DeliverCancels();
  for (RequestId id : batch.first_scheduled) {
    auto it = active_.find(id);
    if (it != active_.end() && !it->second.first_scheduled) {
      it->second.first_scheduled = batch.step_start;
    }
  }
  for (TokenEvent& event : batch.events) {
    DeliverEvent(event, batch.time);
    // A sink that cancelled its own request sees nothing more of it.
    DeliverCancels();
  }
}

void EventDispatcher::DeliverEvent(TokenEvent& event, Clock::time_point now) {
  auto it = active_.find(event.request_id);
  // Not found: it ended early here (a stop string) and this is what the
  // engine computed before it heard.
  if (it == active_.end()) return;
  Active& active = it->second;
  active.stream->Apply(event);
  if (event.usage) active.usage = *event.usage;
  if (event.token_id) {
    ++active.tokens;
    if (!active.first_token) {
      active.first_token = now;
    } else if (observer_ != nullptr) {
      observer_->OnInterTokenLatency(Seconds(now - active.last_token));
    }
    active.last_token = now;
  }
  if (!event.finished) {
    active.sink(event);
    return;
  }
  if (active.stream->stopped_early()) {
    callbacks_.end_early(event.request_id, event.finish_reason);
  }
  FinishRequest(event.request_id, active, event, now);
}

void EventDispatcher::FinishRequest(RequestId id, Active& active, const TokenEvent& event,
                                    Clock::time_point now) {
  CHECK(event.finished);
  RequestStats stats{.id = id,
                     .finish_reason = event.finish_reason,
                     .usage = event.usage.value_or(active.usage),
                     .generated_tokens = std::max(active.tokens, event.generated_tokens),
                     .e2e_s = Seconds(now - active.submitted)};
  if (active.first_scheduled) stats.queue_s = Seconds(*active.first_scheduled - active.submitted);
  if (active.first_token) stats.ttft_s = Seconds(*active.first_token - active.submitted);
  // The observer first: a client that has seen its stream end and then
  // reads the metrics finds its request counted.
  if (observer_ != nullptr) observer_->OnRequestFinished(stats);
  active.sink(event);
  active_.erase(id);  // `active` dangles from here
  callbacks_.on_finished();
}

}  // namespace strata::scheduler
