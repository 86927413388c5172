#include "server/grpc/unary_reactors.h"

#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/grpc/request_conversion.h"

namespace strata::server {
namespace {

// What both reactors keep behind their mutex.
struct CallState {
  absl::Mutex mu;
  // Valid until Finish is called (OnDone cannot come before it).
  grpc::ServerUnaryReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  bool finish_called ABSL_GUARDED_BY(mu) = false;
  CallRecord record ABSL_GUARDED_BY(mu);
};

// Marks the call finished with `status` if nobody has; returns the reactor
// to call Finish on (outside the mutex), or null when it was already done.
grpc::ServerUnaryReactor* ClaimFinish(CallState& state, const absl::Status& status)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(state.mu) {
  if (state.finish_called) return nullptr;
  state.finish_called = true;
  state.record.status = status;
  return state.reactor;
}

// Submits with `sink` and finishes at once on a Submit error.
template <typename State, typename Sink>
void SubmitAndTrack(const CallEnvironment& env, const std::shared_ptr<State>& state,
                    scheduler::Request request, Sink sink) {
  absl::StatusOr<scheduler::RequestId> id = env.engine->Submit(std::move(request), std::move(sink));
  grpc::ServerUnaryReactor* finish = nullptr;
  bool cancel_now = false;
  {
    absl::MutexLock lock(&state->mu);
    if (id.ok()) {
      state->record.id = *id;
      LogRequestStarted(state->record);
      cancel_now =
          state->finish_called && state->record.status.code() == absl::StatusCode::kCancelled;
    } else {
      finish = ClaimFinish(*state, id.status());
    }
  }
  if (cancel_now) env.engine->Cancel(*id);
  if (finish != nullptr) finish->Finish(ToGrpcStatus(id.status()));
}

// OnCancel of either reactor: the engine frees the request at its next step;
// its abort event then finds the call finished and is dropped.
void CancelCall(const CallEnvironment& env, CallState& state) {
  grpc::ServerUnaryReactor* finish = nullptr;
  std::optional<scheduler::RequestId> id;
  const absl::Status cancelled = absl::CancelledError("cancelled by the client");
  {
    absl::MutexLock lock(&state.mu);
    finish = ClaimFinish(state, cancelled);
    id = state.record.id;
  }
  if (finish == nullptr) return;
  if (id.has_value()) env.engine->Cancel(*id);
  finish->Finish(ToGrpcStatus(cancelled));
}

void EndCall(const CallEnvironment& env, CallState& state) {
  {
    absl::MutexLock lock(&state.mu);
    state.reactor = nullptr;
    LogRequestFinished(state.record);
  }
  env.open_calls->fetch_sub(1);
}

}  // namespace

// ---- Complete ----

struct CompleteReactor::State : CallState {
  engine::SamplingParams sampling;
  const engine::Tokenizer* tokenizer = nullptr;
  v1::CompleteResponse* response ABSL_GUARDED_BY(mu) = nullptr;
};

CompleteReactor::CompleteReactor(const CallEnvironment& env, std::shared_ptr<State> state)
    : env_(env), state_(std::move(state)) {}

CompleteReactor* CompleteReactor::Start(const CallEnvironment& env, scheduler::Request request,
                                        CallRecord record, v1::CompleteResponse* response) {
  auto state = std::make_shared<State>();
  state->sampling = request.sampling;
  state->tokenizer = env.tokenizer;
  auto* reactor = new CompleteReactor(env, state);
  {
    absl::MutexLock lock(&state->mu);
    state->reactor = reactor;
    state->response = response;
    state->record = std::move(record);
  }
  SubmitAndTrack(env, state, std::move(request),
                 [state](const scheduler::TokenEvent& event) { OnEvent(state, event); });
  return reactor;
}

void CompleteReactor::OnEvent(const std::shared_ptr<State>& state,
                              const scheduler::TokenEvent& event) {
  grpc::ServerUnaryReactor* finish = nullptr;
  absl::Status end;
  {
    absl::MutexLock lock(&state->mu);
    if (state->finish_called) return;
    state->record.Observe(event);
    v1::CompleteResponse& response = *state->response;
    if (response.request_id().empty()) response.set_request_id(absl::StrCat(event.request_id));
    response.mutable_text()->append(event.text);
    AppendToken(event, state->sampling, *state->tokenizer, response.mutable_tokens());
    if (!event.finished) return;
    end = StatusOfFinishedEvent(event);
    if (end.ok()) {
      v1::FinalInfo* final_info = response.mutable_final();
      final_info->set_finish_reason(FinishReasonToProto(event.finish_reason));
      FillUsage(state->record.usage, state->record.generated_tokens, state->record.ttft_s(),
                state->record.elapsed_s(), final_info->mutable_usage());
    }
    finish = ClaimFinish(*state, end);
  }
  if (finish != nullptr) finish->Finish(ToGrpcStatus(end));
}

void CompleteReactor::OnCancel() { CancelCall(env_, *state_); }

void CompleteReactor::OnDone() {
  EndCall(env_, *state_);
  delete this;
}

// ---- Prefetch ----

struct PrefetchReactor::State : CallState {
  scheduler::EngineService* engine = nullptr;
  SerialExecutor* executor = nullptr;
  int64_t block_size = 0;
  bool admin = false;
  int64_t context_tokens = 0;
  v1::CacheControlResponse* response ABSL_GUARDED_BY(mu) = nullptr;
};

PrefetchReactor::PrefetchReactor(const CallEnvironment& env, std::shared_ptr<State> state)
    : env_(env), state_(std::move(state)) {}

PrefetchReactor* PrefetchReactor::Start(const CallEnvironment& env, SerialExecutor* executor,
                                        int64_t block_size, bool admin, scheduler::Request request,
                                        CallRecord record, v1::CacheControlResponse* response) {
  auto state = std::make_shared<State>();
  state->engine = env.engine;
  state->executor = executor;
  state->block_size = block_size;
  state->admin = admin;
  state->context_tokens = static_cast<int64_t>(request.prompt_ids.size());
  auto* reactor = new PrefetchReactor(env, state);
  {
    absl::MutexLock lock(&state->mu);
    state->reactor = reactor;
    state->response = response;
    state->record = std::move(record);
  }
  SubmitAndTrack(env, state, std::move(request),
                 [state](const scheduler::TokenEvent& event) { OnEvent(state, event); });
  return reactor;
}

void PrefetchReactor::OnEvent(const std::shared_ptr<State>& state,
                              const scheduler::TokenEvent& event) {
  if (!event.finished) return;
  grpc::ServerUnaryReactor* finish = nullptr;
  absl::Status end = StatusOfFinishedEvent(event);
  {
    absl::MutexLock lock(&state->mu);
    if (state->finish_called) return;
    state->record.Observe(event);
    if (end.ok() && event.finish_reason == scheduler::FinishReason::kAbort) {
      end = absl::CancelledError("the prefetch was aborted before its KV was computed");
    }
    if (end.ok()) {
      // Posted under the mutex: the call is not finished, so the service,
      // and with it the executor, is still alive.
      state->executor->Post([state] { Reply(state); });
      return;
    }
    finish = ClaimFinish(*state, end);
  }
  if (finish != nullptr) finish->Finish(ToGrpcStatus(end));
}

void PrefetchReactor::Reply(const std::shared_ptr<State>& state) {
  const scheduler::EngineSnapshot snapshot = state->engine->Snapshot();
  grpc::ServerUnaryReactor* finish = nullptr;
  {
    absl::MutexLock lock(&state->mu);
    if (state->finish_called) return;
    v1::CacheControlResponse& response = *state->response;
    response.set_context_tokens(state->context_tokens);
    response.set_cached_tokens_before(state->record.usage.cached_tokens());
    FillCacheStatsFor(state->admin, snapshot, state->block_size, response.mutable_stats());
    finish = ClaimFinish(*state, absl::OkStatus());
  }
  if (finish != nullptr) finish->Finish(grpc::Status::OK);
}

void PrefetchReactor::OnCancel() { CancelCall(env_, *state_); }

void PrefetchReactor::OnDone() {
  EndCall(env_, *state_);
  delete this;
}

}  // namespace strata::server
