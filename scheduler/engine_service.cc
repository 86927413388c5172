#include "scheduler/engine_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "scheduler/engine_loop.h"

namespace strata::scheduler {
namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// How often an idle engine still reports to the observer (an empty step).
constexpr Clock::duration kIdleRefresh = std::chrono::milliseconds(500);

// Fills what the caller left at zero from the backend, so that the scheduler
// and the arena agree on the number of blocks.
SchedulerOptions CompleteOptions(const EngineServiceOptions& service,
                                 const engine::Backend& backend) {
  SchedulerOptions options = service.scheduler;
  options.max_prompt_tokens = service.max_prompt_tokens;
  if (options.num_blocks == 0) options.num_blocks = backend.kv_arena_info().num_blocks;
  if (options.vocab_size == 0) options.vocab_size = backend.model_config().vocab_size;
  if (options.max_model_len == 0) {
    options.max_model_len = backend.model_config().max_position_embeddings;
  }
  if (options.kv_spec.num_layers == 0) options.kv_spec = backend.kv_arena_info().spec;
  return options;
}

}  // namespace

struct EngineService::Impl {
  // A submission waiting in the inbox.
  struct Submission {
    Request request;
    EventSink sink;
    Clock::time_point submitted;
    std::unique_ptr<OutputStream> stream;  // made on the submitting thread
  };
  // A request whose client stream ended before the scheduler ended it.
  struct EarlyEnd {
    RequestId id = 0;
    FinishReason reason = FinishReason::kStop;
  };

  // Work for the engine thread that is neither a submission nor a cancel.
  using Task = std::function<void(Scheduler&)>;

  // What the engine thread takes from the inbox once per iteration.
  struct Inbox {
    std::vector<Submission> submissions;
    std::vector<RequestId> cancels;
    std::vector<EarlyEnd> early_ends;
    std::vector<Task> tasks;
    bool empty() const {
      return submissions.empty() && cancels.empty() && early_ends.empty() && tasks.empty();
    }
  };

  Impl(EngineService& owner, const EngineServiceOptions& options,
       const engine::Tokenizer& tokenizer, engine::Backend& backend, EngineObserver* observer)
      : owner(owner),
        scheduler_options(CompleteOptions(options, backend)),
        tokenizer(tokenizer),
        backend(backend),
        observer(observer),
        scheduler(scheduler_options),
        dispatcher(observer, EventDispatcher::Callbacks{
                                 .end_early = [this](RequestId id,
                                                     FinishReason reason) { EndEarly(id, reason); },
                                 .on_finished = [this] { OnFinished(); }}) {}

  // Engine thread.
  void Run();
  // Takes the inbox, sleeping while there is nothing to do; false once the
  // service stops.
  bool TakeInbox(Inbox& inbox);
  // Submissions, cancels and early ends; the tasks wait for RunTasks.
  void ProcessInbox(Inbox& inbox);
  void RunTasks(Inbox& inbox);
  // One step; its stats when it computed (ran the backend).
  std::optional<StepStats> Step();
  void Shutdown();
  // Dispatch thread: a request's client stream ended before the scheduler
  // ended it (the scheduler hears at the next iteration), and a request's
  // final event went out.
  void EndEarly(RequestId id, FinishReason reason);
  void OnFinished();
  EngineSnapshot BuildSnapshot() const;

  // Any thread: runs `fn` on the engine thread and returns its status.
  absl::Status RunOnEngineThread(std::function<absl::Status(Scheduler&)> fn);

  EngineService& owner;
  const SchedulerOptions scheduler_options;
  const engine::Tokenizer& tokenizer;
  engine::Backend& backend;
  EngineObserver* const observer;

  // Guards the inbox and the counters Submit reads.
  std::mutex mu;
  std::condition_variable wake;  // the engine thread: inbox or stop
  std::condition_variable idle;  // WaitIdle: in_flight_ reached 0
  Inbox inbox;
  bool stop = false;
  RequestId next_id = 1;
  // Requests in the scheduler's waiting and loading queues, refreshed after
  // each Schedule and at each inbox drain (plus those the drain added): with
  // inbox.submissions, what max_waiting bounds. Never below the scheduler's
  // own count when it takes the inbox, so its AddRequest agrees.
  int64_t queued = 0;
  std::atomic<int64_t> rejected{0};  // Submit's RESOURCE_EXHAUSTED for max_waiting

  mutable std::mutex snapshot_mu;
  EngineSnapshot snapshot;

  // Engine thread only.
  Scheduler scheduler;
  // What the dispatch thread gets at the end of this iteration.
  EventDispatcher::Batch outgoing;
  // Accepted, not yet in any step.
  absl::flat_hash_set<RequestId> never_scheduled;
  // Accepted and not yet finished, as the engine thread knows them.
  absl::flat_hash_set<RequestId> open;
  int64_t steps = 0;
  // Queue sizes in the last snapshot the observer saw.
  int64_t observed_running = 0;
  int64_t observed_waiting = 0;
  Clock::time_point observed_at{};

  EventDispatcher dispatcher;
  std::thread thread;  // last: starts once everything above exists
};

void EngineService::Impl::Run() {
  Inbox taken;
  while (TakeInbox(taken)) {
    ProcessInbox(taken);
    std::optional<StepStats> step;
    if (scheduler.HasWork()) step = Step();
    dispatcher.Post(std::exchange(outgoing, EventDispatcher::Batch{}));
    EngineSnapshot latest = BuildSnapshot();
    {
      std::lock_guard<std::mutex> lock(snapshot_mu);
      snapshot = latest;
    }
    // An iteration without a step (an abort or cancel that only ended
    // requests) still changes the queue gauges: report it as an empty step.
    const bool queues_changed =
        latest.num_running != observed_running || latest.num_waiting != observed_waiting;
    const Clock::time_point now = Clock::now();
    if (observer != nullptr && (step || queues_changed || now - observed_at >= kIdleRefresh)) {
      observer->OnStep(step.value_or(StepStats{}), latest);
      observed_running = latest.num_running;
      observed_waiting = latest.num_waiting;
      observed_at = now;
    }
    // Last: a task (ReleaseSession, ValidateCacheForTesting) sees the
    // iteration's cancels applied and its snapshot published.
    RunTasks(taken);
  }
  Shutdown();
}

bool EngineService::Impl::TakeInbox(Inbox& taken) {
  const bool busy = scheduler.HasWork();
  std::unique_lock<std::mutex> lock(mu);
  queued = scheduler.num_waiting() + scheduler.num_loading();
  // No busy spinning: with nothing scheduled, sleep until the inbox fills,
  // waking now and then so the observer sees what the tiers' own threads
  // did meanwhile (disk writes finish after the step that queued them).
  wake.wait_for(lock, kIdleRefresh, [&] { return busy || stop || !inbox.empty(); });
  if (stop) return false;
  taken = std::move(inbox);
  inbox = Inbox{};
  queued += static_cast<int64_t>(taken.submissions.size());
  return true;
}

void EngineService::Impl::ProcessInbox(Inbox& taken) {
  // Submissions first, so that a cancel posted right after its submission
  // finds the request.
  for (Submission& submission : taken.submissions) {
    const RequestId id = submission.request.id;
    outgoing.registrations.push_back({.id = id,
                                      .sink = std::move(submission.sink),
                                      .submitted = submission.submitted,
                                      .stream = std::move(submission.stream)});
    // Submit passed it through the scheduler's admission gate already; the
    // ids are ours, so Enqueue cannot refuse it short of a bug.
    absl::Status added = scheduler.Enqueue(std::move(submission.request));
    if (!added.ok()) {
      outgoing.events.push_back(TokenEvent{.request_id = id,
                                           .finished = true,
                                           .finish_reason = FinishReason::kError,
                                           .error = added});
      continue;
    }
    never_scheduled.insert(id);
    open.insert(id);
  }
  for (RequestId id : taken.cancels) {
    // NOT_FOUND: it finished meanwhile (the cancel raced the finish).
    scheduler.Abort(id).IgnoreError();
  }
  for (const EarlyEnd& end : taken.early_ends) scheduler.EndEarly(end.id, end.reason).IgnoreError();
}

void EngineService::Impl::RunTasks(Inbox& taken) {
  for (Task& task : taken.tasks) task(scheduler);
  taken = Inbox{};
}

std::optional<StepStats> EngineService::Impl::Step() {
  const Clock::time_point start = Clock::now();
  engine::StepPlan plan = scheduler.Schedule();
  {
    // Admissions left the waiting queue: Submit's max_waiting check sees it.
    std::lock_guard<std::mutex> lock(mu);
    queued = scheduler.num_waiting() + scheduler.num_loading();
  }
  StepStats stats;
  stats.num_sequences = static_cast<int64_t>(plan.sequences.size());
  outgoing.step_start = start;
  for (const engine::SequenceStep& seq : plan.sequences) {
    stats.batch_tokens += static_cast<int64_t>(seq.token_ids.size());
    if (never_scheduled.erase(seq.seq_id) > 0) outgoing.first_scheduled.push_back(seq.seq_id);
  }
  const bool computes = PlanComputes(plan);
  std::vector<TokenEvent> events = ExecutePlan(scheduler, backend, plan);
  const Clock::time_point end = Clock::now();
  stats.duration_s = Seconds(end - start);
  for (TokenEvent& event : events) {
    if (event.finished) {
      never_scheduled.erase(event.request_id);
      open.erase(event.request_id);
    }
    outgoing.events.push_back(std::move(event));
  }
  outgoing.time = end;
  if (!computes) return std::nullopt;
  ++steps;
  return stats;
}

void EngineService::Impl::EndEarly(RequestId id, FinishReason reason) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stop) return;  // the shutdown ends everything anyway
    inbox.early_ends.push_back({id, reason});
  }
  wake.notify_one();
}

void EngineService::Impl::OnFinished() {
  std::lock_guard<std::mutex> lock(mu);
  if (owner.in_flight_.fetch_sub(1) == 1) idle.notify_all();
}

void EngineService::Impl::Shutdown() {
  // Stop is set: nothing enters the inbox any more. What is there still gets
  // its answer: submissions are queued and then aborted with the rest, tasks
  // run so that their callers return.
  Inbox taken;
  {
    std::lock_guard<std::mutex> lock(mu);
    taken = std::move(inbox);
    inbox = Inbox{};
  }
  ProcessInbox(taken);
  RunTasks(taken);
  for (RequestId id : open) scheduler.Abort(id).IgnoreError();
  // Aborted requests leave every queue, so these steps compute nothing and
  // only emit the abort events; the bound guards against a scheduler bug.
  for (int i = 0; i < 16 && scheduler.HasWork(); ++i) Step();
  // The dispatcher delivers these and ends whatever is still open with an
  // abort (the destructor stops it after this thread).
  dispatcher.Post(std::exchange(outgoing, EventDispatcher::Batch{}));
  EngineSnapshot latest = BuildSnapshot();
  std::lock_guard<std::mutex> lock(snapshot_mu);
  snapshot = std::move(latest);
}

EngineSnapshot EngineService::Impl::BuildSnapshot() const {
  EngineSnapshot s;
  s.num_running = scheduler.num_running();
  s.num_waiting = scheduler.num_waiting() + scheduler.num_loading();
  s.num_preemptions = scheduler.num_preemptions();
  s.cache = scheduler.cache_stats();
  s.counters = scheduler.counters();
  s.counters.rejected_requests += rejected.load();
  s.load_costs = scheduler.load_costs().stats();
  s.device_blocks_total = scheduler_options.num_blocks;
  s.device_blocks_cached = scheduler.num_cached_blocks();
  s.device_blocks_free = scheduler.num_free_blocks() - s.device_blocks_cached;
  s.device_blocks_used = s.device_blocks_total - scheduler.num_free_blocks();
  s.steps = steps;
  return s;
}

absl::Status EngineService::Impl::RunOnEngineThread(std::function<absl::Status(Scheduler&)> fn) {
  // Shared: the engine thread may still be inside set_value when the caller
  // wakes and returns.
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  {
    std::lock_guard<std::mutex> lock(mu);
    if (stop) return absl::UnavailableError("the engine is shutting down");
    inbox.tasks.push_back([done, fn = std::move(fn)](Scheduler& s) { done->set_value(fn(s)); });
  }
  wake.notify_one();
  return result.get();
}

EngineService::EngineService(const EngineServiceOptions& options,
                             const engine::Tokenizer& tokenizer, engine::Backend& backend,
                             EngineObserver* observer)
    : impl_(std::make_unique<Impl>(*this, options, tokenizer, backend, observer)) {
  impl_->snapshot = impl_->BuildSnapshot();
  impl_->thread = std::thread([impl = impl_.get()] { impl->Run(); });
}

EngineService::~EngineService() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->wake.notify_one();
  impl_->thread.join();
  impl_->dispatcher.Stop();
}

absl::StatusOr<RequestId> EngineService::Submit(Request request, EventSink sink) {
  if (draining_.load()) return absl::UnavailableError("server is draining");
  if (!sink) return absl::InvalidArgumentError("sink is empty");
  // The scheduler's one admission gate: the request here, the queue bound
  // under the lock below.
  const AdmissionGate& gate = impl_->scheduler.gate();
  if (absl::Status valid = gate.CheckRequest(request); !valid.ok()) return valid;
  auto stream = std::make_unique<OutputStream>(impl_->tokenizer, request,
                                               impl_->scheduler_options.eos_token_ids);
  const Clock::time_point submitted = Clock::now();
  RequestId id = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // Checked again under the lock: WaitIdle after BeginDrain must not miss
    // a submission that raced it.
    if (draining_.load()) return absl::UnavailableError("server is draining");
    if (impl_->stop) return absl::UnavailableError("the engine is shutting down");
    // `queued` lags the scheduler by at most one step; the inbox adds what
    // it still holds.
    const int64_t waiting = impl_->queued + static_cast<int64_t>(impl_->inbox.submissions.size());
    if (absl::Status room = gate.CheckQueue(waiting); !room.ok()) {
      impl_->rejected.fetch_add(1);
      return room;
    }
    id = impl_->next_id++;
    request.id = id;
    impl_->inbox.submissions.push_back(
        Impl::Submission{std::move(request), std::move(sink), submitted, std::move(stream)});
    in_flight_.fetch_add(1);
  }
  impl_->wake.notify_one();
  return id;
}

void EngineService::Cancel(RequestId id) {
  // The engine frees the request at its next iteration; the client sees the
  // abort at once. The engine hears first, so that whoever sees the request
  // finished and then asks the engine something finds the cancel ahead.
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->stop) impl_->inbox.cancels.push_back(id);  // else the shutdown aborts it
  }
  impl_->wake.notify_one();
  impl_->dispatcher.Cancel(id);
}

absl::Status EngineService::ReleaseSession(std::string cache_salt, std::string session_id) {
  return impl_->RunOnEngineThread(
      [&](Scheduler& scheduler) { return scheduler.ReleaseSession(cache_salt, session_id); });
}

absl::Status EngineService::ValidateCacheForTesting() {
  return impl_->RunOnEngineThread([](Scheduler& scheduler) { return scheduler.ValidateCache(); });
}

EngineSnapshot EngineService::Snapshot() const {
  std::lock_guard<std::mutex> lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

void EngineService::BeginDrain() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  draining_.store(true);
}

bool EngineService::WaitIdle(Clock::duration timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  return impl_->idle.wait_for(lock, timeout, [&] { return in_flight_.load() == 0; });
}

}  // namespace strata::scheduler
