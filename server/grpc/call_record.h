// What every engine-bound call of the gRPC service (Generate, Complete,
// CacheControl prefetch) shares: the environment it runs in, the record of
// its life that ends up in the request_started / request_finished log lines
// and in the reply's usage, and the status and deadline conversions.
//
// A CallRecord is guarded by its owner's mutex; the free functions are pure
// and thread-safe.
#ifndef STRATA_SERVER_GRPC_CALL_RECORD_H_
#define STRATA_SERVER_GRPC_CALL_RECORD_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "engine/tokenizer/tokenizer.h"
#include "grpcpp/grpcpp.h"
#include "scheduler/engine_service.h"
#include "scheduler/request.h"
#include "strata/v1/strata.pb.h"

namespace strata::server {

// Borrowed by every call; all pointees outlive the gRPC server.
struct CallEnvironment {
  scheduler::EngineService* engine = nullptr;
  const engine::Tokenizer* tokenizer = nullptr;
  // Open engine-bound calls; each call releases its slot in OnDone.
  std::atomic<int64_t>* open_calls = nullptr;
};

struct CallRecord {
  std::string method;             // "Generate", "Complete", "Prefetch"
  std::string client_request_id;  // the request's request_id field, may be empty
  std::string tenant;
  scheduler::Clock::time_point start = scheduler::Clock::now();
  std::optional<scheduler::RequestId> id;  // once submitted
  std::optional<scheduler::Clock::time_point> first_token;
  scheduler::PromptUsage usage;  // as of the latest event that carried it
  int64_t generated_tokens = 0;
  std::optional<scheduler::FinishReason> finish_reason;  // set once finished
  absl::Status status;        // what the call ended with

  // Updates the timings and counts from one engine event.
  void Observe(const scheduler::TokenEvent& event);
  double ttft_s() const;  // < 0 when no token came
  double elapsed_s() const;
};

// absl and gRPC share the canonical code numbers.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The call's deadline on the engine's clock; nullopt when it has none.
std::optional<scheduler::Clock::time_point> EngineDeadline(
    const grpc::CallbackServerContext& context);

// CacheControl replies' statistics: all of them for an admin; for anyone
// else only the block size, since the rest covers every tenant.
void FillCacheStatsFor(bool admin, const scheduler::EngineSnapshot& snapshot, int64_t block_size,
                       v1::CacheStats* stats);

// The client's request id as logged: at most kMaxLoggedClientIdBytes of it
// (cut at a character boundary), then "...(N bytes)" when longer, so a
// client cannot make the daemon write megabytes per request.
inline constexpr size_t kMaxLoggedClientIdBytes = 128;
std::string ClientRequestIdForLog(std::string_view id);

// One line each, with the server's id (and the client's) so that one grep
// follows a request.
void LogRequestStarted(const CallRecord& record);
void LogRequestFinished(const CallRecord& record);

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_CALL_RECORD_H_
