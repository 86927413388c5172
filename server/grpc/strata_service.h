// The strata.v1.Strata service (callback API): admission (drain, bearer
// auth, the open-call limit), request conversion, and one reactor per call
// that talks to the EngineService. No thread per request: handlers return
// at once and the engine's events drive the replies.
//
// Threads: handlers run on gRPC's callback threads; BeginDrain on any
// thread. Lifetime: borrows the engine, tokenizer and model config; must be
// destroyed only after the grpc::Server that serves it has shut down (every
// call done), which also guarantees no reactor uses the executor afterwards.
#ifndef STRATA_SERVER_GRPC_STRATA_SERVICE_H_
#define STRATA_SERVER_GRPC_STRATA_SERVICE_H_

#include <atomic>
#include <cstdint>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "scheduler/engine_service.h"
#include "server/grpc/auth.h"
#include "server/grpc/call_record.h"
#include "server/grpc/grpc_server.h"
#include "server/grpc/refusal_gate.h"
#include "server/grpc/request_conversion.h"
#include "server/grpc/serial_executor.h"
#include "strata/v1/strata.grpc.pb.h"

namespace strata::server {

class StrataService final : public v1::Strata::CallbackService {
 public:
  // `conversion` carries the tokenized shared prefix and the resolved
  // limits; `model`'s pointees are borrowed.
  StrataService(scheduler::EngineService* engine, const ServedModel& model,
                Authenticator authenticator, ConversionContext conversion,
                int64_t max_concurrent_streams);
  ~StrataService() override;

  // From now on every call gets UNAVAILABLE ("server is draining"); open
  // calls carry on.
  void BeginDrain() { draining_.store(true); }
  // While the server shuts down: UNAVAILABLE replies wait (RefusalGate)
  // from HoldRefusals until ReleaseRefusals.
  void HoldRefusals() { refusals_.Hold(); }
  void ReleaseRefusals() { refusals_.Release(); }
  // Generate, Complete and prefetch calls open now.
  int64_t open_calls() const { return open_calls_.load(); }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Complete(grpc::CallbackServerContext* context,
                                     const v1::GenerateRequest* request,
                                     v1::CompleteResponse* response) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;
  grpc::ServerUnaryReactor* CacheControl(grpc::CallbackServerContext* context,
                                         const v1::CacheControlRequest* request,
                                         v1::CacheControlResponse* response) override;

 private:
  // UNAVAILABLE while draining, else the caller's tenant (UNAUTHENTICATED
  // without a valid token).
  absl::StatusOr<Tenant> Admit(const grpc::CallbackServerContext& context) const;
  // Finishes a unary call with `status`; an UNAVAILABLE one goes through the
  // refusal gate.
  grpc::ServerUnaryReactor* FinishUnary(grpc::CallbackServerContext* context,
                                        const absl::Status& status);
  // Takes a slot for an engine-bound call; false (nothing taken) beyond
  // max_concurrent_streams.
  bool TakeSlot();
  // The engine request of a Generate/Complete call, its record, and a slot.
  // On error nothing is held and the status is logged.
  absl::StatusOr<scheduler::Request> PrepareGeneration(grpc::CallbackServerContext* context,
                                                       const v1::GenerateRequest& request,
                                                       CallRecord& record);
  grpc::ServerUnaryReactor* Prefetch(grpc::CallbackServerContext* context, const Tenant& tenant,
                                     const v1::Prefetch& prefetch,
                                     v1::CacheControlResponse* response);
  grpc::ServerUnaryReactor* ReleaseSession(grpc::CallbackServerContext* context,
                                           const Tenant& tenant, const v1::ReleaseSession& release,
                                           v1::CacheControlResponse* response);

  scheduler::EngineService* engine_;
  ServedModel model_;
  Authenticator authenticator_;
  ConversionContext conversion_;
  int64_t max_concurrent_streams_;
  std::atomic<bool> draining_{false};
  std::atomic<int64_t> open_calls_{0};
  CallEnvironment env_;
  SerialExecutor executor_;
  RefusalGate refusals_;
};

// Model facts for GetModelInfo; `max_prompt_tokens` is the resolved limit.
void FillModelInfo(const ServedModel& model, int64_t max_prompt_tokens, v1::ModelInfo* info);

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_STRATA_SERVICE_H_
