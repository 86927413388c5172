// Reactors of the unary calls that wait for one engine request: Complete (a
// whole generation in one reply) and CacheControl's prefetch (a kPrefill
// request; replies when the context's KV is computed or loaded).
//
// Threads. The EventSink runs on the engine's event dispatch thread and never blocks: it
// accumulates into the reply under the call's mutex and, on the finished
// event, calls Finish (prefetch first hops to the service's SerialExecutor,
// because the reply's cache statistics need EngineService::Snapshot, which
// a sink must not call). OnCancel (a gRPC thread) cancels the engine request
// and finishes CANCELLED at once. Per-call state lives in a shared_ptr the
// sink captures; whichever side finishes first wins, the other drops, and
// the reactor deletes itself in OnDone only.
#ifndef STRATA_SERVER_GRPC_UNARY_REACTORS_H_
#define STRATA_SERVER_GRPC_UNARY_REACTORS_H_

#include <cstdint>
#include <memory>

#include "grpcpp/grpcpp.h"
#include "scheduler/request.h"
#include "server/grpc/call_record.h"
#include "server/grpc/serial_executor.h"
#include "strata/v1/strata.pb.h"

namespace strata::server {

class CompleteReactor final : public grpc::ServerUnaryReactor {
 public:
  // Submits `request`; `response` is gRPC's and stays valid until OnDone.
  // The caller has taken a slot in env.open_calls; OnDone gives it back.
  static CompleteReactor* Start(const CallEnvironment& env, scheduler::Request request,
                                CallRecord record, v1::CompleteResponse* response);
  void OnCancel() override;
  void OnDone() override;

 private:
  struct State;
  CompleteReactor(const CallEnvironment& env, std::shared_ptr<State> state);
  static void OnEvent(const std::shared_ptr<State>& state, const scheduler::TokenEvent& event);

  CallEnvironment env_;
  std::shared_ptr<State> state_;
};

class PrefetchReactor final : public grpc::ServerUnaryReactor {
 public:
  // Submits `request` (kind kPrefill). `executor` is borrowed and outlives
  // every call (the service owns it and is destroyed after the server has
  // shut down). `block_size` is for the reply's statistics, which cover
  // every tenant and so are filled in only for an admin (FillCacheStatsFor).
  static PrefetchReactor* Start(const CallEnvironment& env, SerialExecutor* executor,
                                int64_t block_size, bool admin, scheduler::Request request,
                                CallRecord record, v1::CacheControlResponse* response);
  void OnCancel() override;
  void OnDone() override;

 private:
  struct State;
  PrefetchReactor(const CallEnvironment& env, std::shared_ptr<State> state);
  static void OnEvent(const std::shared_ptr<State>& state, const scheduler::TokenEvent& event);
  // On the executor: the statistics after the prefill, then Finish.
  static void Reply(const std::shared_ptr<State>& state);

  CallEnvironment env_;
  std::shared_ptr<State> state_;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_UNARY_REACTORS_H_
