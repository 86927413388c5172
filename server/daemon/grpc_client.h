// Client-side helpers shared by `strata client`, `strata bench serve` and the
// integration tests: a channel to a daemon (plaintext or TLS), the metadata
// every call carries (bearer token, session affinity), the standard health
// check (grpc.health.v1, generated from proto/grpc/health/v1/health.proto),
// and readable status codes.
//
// Thread-safety: the functions are thread-safe; a channel may be shared by
// any number of threads, a ClientContext belongs to one call.
#ifndef STRATA_SERVER_DAEMON_GRPC_CLIENT_H_
#define STRATA_SERVER_DAEMON_GRPC_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace strata::server {

struct ChannelOptions {
  std::string server;       // "host:port"
  std::string tls_ca_file;  // PEM roots for TLS; empty: plaintext
  int64_t max_message_bytes = 16 << 20;
};

// INVALID_ARGUMENT naming the option for an empty address or an unreadable
// CA file. Connection problems surface on the first call (UNAVAILABLE).
absl::StatusOr<std::shared_ptr<grpc::Channel>> OpenChannel(const ChannelOptions& options);

// "authorization: Bearer TOKEN" when `token` is non-empty, and the
// x-session-id header the load balancer hashes on when `session_id` is.
void AddCallMetadata(grpc::ClientContext& context, const std::string& token,
                     const std::string& session_id);

// grpc.health.v1 ServingStatus values (same numbers).
enum class HealthState { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };
std::string HealthStateName(HealthState state);

// grpc.health.v1.Health/Check for `service` ("" is the whole server). The
// call's error (UNAVAILABLE when nothing listens, DEADLINE_EXCEEDED after
// `timeout`) as a status.
absl::StatusOr<HealthState> CheckHealth(grpc::Channel& channel, const std::string& service,
                                        std::chrono::milliseconds timeout);

// "INVALID_ARGUMENT" etc.
std::string StatusCodeName(grpc::StatusCode code);

// grpc::Status as absl::Status (same code and message).
absl::Status ToAbslStatus(const grpc::Status& status);

}  // namespace strata::server

#endif  // STRATA_SERVER_DAEMON_GRPC_CLIENT_H_
