// The reactor of one Generate call (server streaming, callback API): the
// engine's event dispatch thread hands it TokenEvents through an EventSink, and it writes them
// to the client one message at a time.
//
// Threads. The sink runs on the engine's event dispatch thread and never blocks: it converts
// the event, queues it under the call's mutex and, when no write is in
// flight, starts one. gRPC's threads run OnWriteDone (start the next write),
// OnCancel (EngineService::Cancel, then finish) and OnDone. The per-call
// state lives in a shared_ptr that the sink captures, so an event that
// arrives after the call is done (a cancel racing the finish) finds it and
// is dropped. StartWrite/Finish are never called under the mutex, Finish is
// called exactly once, and the reactor deletes itself in OnDone only.
//
// Backpressure: at most one message is in flight and one more pending; a
// slow reader gets later deltas merged into the pending message, so memory
// per call stays bounded and the dispatch thread never waits.
#ifndef STRATA_SERVER_GRPC_GENERATE_REACTOR_H_
#define STRATA_SERVER_GRPC_GENERATE_REACTOR_H_

#include <memory>

#include "grpcpp/grpcpp.h"
#include "scheduler/request.h"
#include "server/grpc/call_record.h"
#include "strata/v1/strata.pb.h"

namespace strata::server {

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  // Submits `request` and returns the reactor for gRPC to own. The caller
  // has taken a slot in env.open_calls; OnDone gives it back. A Submit error
  // finishes the call at once with that status.
  static GenerateReactor* Start(const CallEnvironment& env, scheduler::Request request,
                                CallRecord record);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  struct State;
  struct Action;

  GenerateReactor(const CallEnvironment& env, std::shared_ptr<State> state);

  // The sink's body, on the engine's event dispatch thread.
  static void OnEvent(const std::shared_ptr<State>& state, const scheduler::TokenEvent& event);
  // Under the state's mutex: what to do next (start a write, finish, or
  // nothing), with the flags updated as if it were done.
  static Action NextAction(State& state);
  // Outside the mutex.
  static void Perform(const Action& action);

  CallEnvironment env_;
  std::shared_ptr<State> state_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_GENERATE_REACTOR_H_
