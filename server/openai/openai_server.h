// The OpenAI-compatible HTTP front end: POST /v1/completions and
// /v1/chat/completions (JSON, or server-sent events with "stream": true) and
// GET /v1/models, served by civetweb over the same scheduler::EngineService
// as the gRPC service. Requests go through the gRPC service's conversion
// (request_conversion.h, on a strata.v1.GenerateRequest built from the
// body), so limits, validation, chat templates and the shared prefix are
// the same; the same bearer tokens authenticate (Authorization: Bearer) and
// salt each tenant's cache; the x-session-id header sets the session. The
// engine's metrics observer counts these requests like any other.
//
// Threads: each request runs on one of civetweb's worker threads, which a
// stream holds until it ends (so `threads` bounds concurrent HTTP requests);
// the engine's events reach it through a queue. Start, BeginDrain and
// Shutdown are called by one owner thread.
//
// Lifetime: borrows the engine and the model's pointees; Shutdown (or the
// destructor) must run before the engine is destroyed.
#ifndef STRATA_SERVER_OPENAI_OPENAI_SERVER_H_
#define STRATA_SERVER_OPENAI_OPENAI_SERVER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "scheduler/engine_service.h"
#include "server/grpc/grpc_server.h"

namespace strata::server {

struct OpenAiServerOptions {
  std::string listen = "127.0.0.1:8000";  // host:port (numeric IPv4); port 0 picks a free one
  int64_t threads = 16;                   // civetweb workers: concurrent HTTP requests
  int64_t max_body_bytes = 16 << 20;      // larger request bodies: 413
  std::map<std::string, std::string> auth_tokens;  // as GrpcServerOptions
  std::string shared_prefix;                       // as GrpcServerOptions
};

class OpenAiServer {
 public:
  OpenAiServer(const OpenAiServerOptions& options, scheduler::EngineService* engine,
               const ServedModel& model);
  ~OpenAiServer();  // Shutdown with no grace if still running

  // Binds and starts serving. INVALID_ARGUMENT for a malformed address or
  // bad tokens; UNAVAILABLE when the port cannot be bound.
  absl::Status Start();
  int port() const { return port_; }

  // New requests get 503 ("server is draining"); open ones, streams
  // included, carry on.
  void BeginDrain();
  // Waits up to `grace` for open requests, cancels the rest (their streams
  // end), then stops the listener.
  void Shutdown(std::chrono::milliseconds grace);

  struct Impl;  // defined in openai_server.cc

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_OPENAI_OPENAI_SERVER_H_
