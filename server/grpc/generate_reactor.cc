#include "server/grpc/generate_reactor.h"

#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/grpc/request_conversion.h"

namespace strata::server {

struct GenerateReactor::State {
  // Immutable after Start.
  engine::SamplingParams sampling;
  const engine::Tokenizer* tokenizer = nullptr;

  absl::Mutex mu;
  // Valid until Finish is called (OnDone cannot come before), so only an
  // action taken while !finish_called may use it.
  GenerateReactor* reactor ABSL_GUARDED_BY(mu) = nullptr;
  // The front is the message in flight while `writing`; at most one more
  // waits behind it.
  std::deque<v1::GenerateResponse> queue ABSL_GUARDED_BY(mu);
  bool writing ABSL_GUARDED_BY(mu) = false;
  // Set by the engine's finished event: the status to end with once the
  // queue is written (the final message, if any, is in the queue).
  std::optional<absl::Status> end_status ABSL_GUARDED_BY(mu);
  bool cancelled ABSL_GUARDED_BY(mu) = false;
  bool finish_called ABSL_GUARDED_BY(mu) = false;
  CallRecord record ABSL_GUARDED_BY(mu);
};

struct GenerateReactor::Action {
  enum Kind { kNone, kWrite, kWriteAndFinish, kFinish } kind = kNone;
  GenerateReactor* reactor = nullptr;
  const v1::GenerateResponse* message = nullptr;
  grpc::Status status;
};

GenerateReactor::GenerateReactor(const CallEnvironment& env, std::shared_ptr<State> state)
    : env_(env), state_(std::move(state)) {}

GenerateReactor* GenerateReactor::Start(const CallEnvironment& env, scheduler::Request request,
                                        CallRecord record) {
  auto state = std::make_shared<State>();
  state->sampling = request.sampling;
  state->tokenizer = env.tokenizer;
  auto* reactor = new GenerateReactor(env, state);
  {
    absl::MutexLock lock(&state->mu);
    state->reactor = reactor;
    state->record = std::move(record);
  }
  absl::StatusOr<scheduler::RequestId> id = env.engine->Submit(
      std::move(request), [state](const scheduler::TokenEvent& event) { OnEvent(state, event); });
  bool cancel_now = false;
  Action action;
  {
    absl::MutexLock lock(&state->mu);
    if (id.ok()) {
      state->record.id = *id;
      LogRequestStarted(state->record);
      // A cancel that came before the id was known could not reach the engine.
      cancel_now = state->cancelled;
    } else {
      state->end_status = id.status();
      action = NextAction(*state);
    }
  }
  if (cancel_now) env.engine->Cancel(*id);
  Perform(action);
  return reactor;
}

void GenerateReactor::OnEvent(const std::shared_ptr<State>& state,
                              const scheduler::TokenEvent& event) {
  Action action;
  {
    absl::MutexLock lock(&state->mu);
    if (state->finish_called || state->end_status.has_value()) return;
    state->record.Observe(event);
    absl::Status end = event.finished ? StatusOfFinishedEvent(event) : absl::OkStatus();
    const bool has_content = event.token_id.has_value() || !event.text.empty();
    const bool final_message = event.finished && end.ok();
    if (has_content || final_message) {
      // Merge into the waiting message, if any (never into the one in flight).
      const bool merge = state->queue.size() > (state->writing ? 1u : 0u);
      if (!merge) state->queue.emplace_back().set_request_id(absl::StrCat(event.request_id));
      v1::GenerateResponse& message = state->queue.back();
      message.mutable_text()->append(event.text);
      AppendToken(event, state->sampling, *state->tokenizer, message.mutable_tokens());
      if (final_message) {
        v1::FinalInfo* final_info = message.mutable_final();
        final_info->set_finish_reason(FinishReasonToProto(event.finish_reason));
        FillUsage(state->record.usage, state->record.generated_tokens, state->record.ttft_s(),
                  state->record.elapsed_s(), final_info->mutable_usage());
      }
    }
    if (event.finished) state->end_status = end;
    action = NextAction(*state);
  }
  Perform(action);
}

GenerateReactor::Action GenerateReactor::NextAction(State& state) {
  Action action;
  if (state.finish_called || state.writing) return action;
  action.reactor = state.reactor;
  if (state.cancelled) {
    state.finish_called = true;
    state.record.status = absl::CancelledError("cancelled by the client");
    action.kind = Action::kFinish;
    action.status = ToGrpcStatus(state.record.status);
    return action;
  }
  if (!state.queue.empty()) {
    action.message = &state.queue.front();
    // The last message of a call that ends OK goes out with the status.
    if (state.queue.size() == 1 && state.end_status.has_value() && state.end_status->ok()) {
      state.finish_called = true;
      state.record.status = absl::OkStatus();
      action.kind = Action::kWriteAndFinish;
    } else {
      state.writing = true;
      action.kind = Action::kWrite;
    }
    return action;
  }
  if (state.end_status.has_value()) {
    state.finish_called = true;
    state.record.status = *state.end_status;
    action.kind = Action::kFinish;
    action.status = ToGrpcStatus(*state.end_status);
  }
  return action;
}

void GenerateReactor::Perform(const Action& action) {
  switch (action.kind) {
    case Action::kNone:
      return;
    case Action::kWrite:
      action.reactor->StartWrite(action.message);
      return;
    case Action::kWriteAndFinish:
      action.reactor->StartWriteAndFinish(action.message, grpc::WriteOptions(), grpc::Status::OK);
      return;
    case Action::kFinish:
      action.reactor->Finish(action.status);
      return;
  }
}

void GenerateReactor::OnWriteDone(bool ok) {
  std::optional<scheduler::RequestId> cancel;
  Action action;
  {
    absl::MutexLock lock(&state_->mu);
    state_->writing = false;
    state_->queue.pop_front();
    // A failed write means the stream is gone: treat it as a cancel.
    if (!ok && !state_->cancelled) {
      state_->cancelled = true;
      cancel = state_->record.id;
    }
    action = NextAction(*state_);
  }
  if (cancel.has_value()) env_.engine->Cancel(*cancel);
  Perform(action);
}

void GenerateReactor::OnCancel() {
  std::optional<scheduler::RequestId> cancel;
  Action action;
  {
    absl::MutexLock lock(&state_->mu);
    if (!state_->cancelled) {
      state_->cancelled = true;
      // Unknown yet when Submit has not returned: Start cancels then.
      cancel = state_->record.id;
    }
    action = NextAction(*state_);
  }
  // The engine frees the request's blocks at its next step; the abort event
  // that follows finds the call finished and is dropped.
  if (cancel.has_value()) env_.engine->Cancel(*cancel);
  Perform(action);
}

void GenerateReactor::OnDone() {
  {
    absl::MutexLock lock(&state_->mu);
    state_->reactor = nullptr;
    LogRequestFinished(state_->record);
  }
  env_.open_calls->fetch_sub(1);
  delete this;
}

}  // namespace strata::server
