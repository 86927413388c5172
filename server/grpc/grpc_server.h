// The gRPC front end: the strata.v1.Strata service (callback API, no thread
// per request) on top of a scheduler::EngineService, plus the standard
// grpc.health.v1.Health service and server reflection.
//
// Threads: Start and Shutdown are called by one owner thread (main); the
// service handlers run on gRPC's callback threads and reach the engine only
// through EngineService's thread-safe calls.
#ifndef STRATA_SERVER_GRPC_GRPC_SERVER_H_
#define STRATA_SERVER_GRPC_GRPC_SERVER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/engine_service.h"
#include "server/grpc/blend_conversion.h"
#include "server/grpc/request_conversion.h"

namespace strata::server {

// What the service needs to know about the model it serves.
struct ServedModel {
  std::string name;                              // checkpoint directory name
  const engine::ModelConfig* config = nullptr;   // borrowed
  const engine::Tokenizer* tokenizer = nullptr;  // borrowed
  const engine::ChatTemplate* chat_template = nullptr;  // borrowed; null: none
  std::string backend;                           // "cpu" or "cuda"
  std::string fingerprint_hex;
  int64_t kv_block_size = 16;
  int64_t kv_device_blocks = 0;
  int64_t max_prompt_tokens = 0;  // 0: the model's context less one
  int32_t default_max_tokens = 16;
  BlendDefaults blend;  // scheduler.blend.*, for `chunks` inputs
};

struct GrpcServerOptions {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  int64_t max_concurrent_streams = 1024;  // open Generate/Complete calls beyond: RESOURCE_EXHAUSTED
  int64_t max_message_bytes = 16 << 20;   // receive and send
  // Bearer token -> tenant. Empty: no authentication, one anonymous tenant.
  // Each tenant's requests get the cache salt "tenant:<name>", so tenants
  // never share (or time) each other's cached KV.
  std::map<std::string, std::string> auth_tokens;
  // The bearer token of the admin, who alone reads the global cache
  // statistics when authentication is on. Empty: no admin.
  std::string admin_token;
  // Text every tenant may share cached KV for when a prompt starts with it
  // (a common system prompt); hashed under the public salt. Empty: none.
  std::string shared_prefix;
  // PEM files; both or neither. Neither: plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
};

// What request conversion checks against for `model`: its limits, chat
// template and the tokenized `shared_prefix`. Shared by every front end (gRPC,
// the OpenAI-compatible HTTP server). INVALID_ARGUMENT "shared_prefix: ..."
// if the prefix cannot be tokenized.
absl::StatusOr<ConversionContext> MakeConversionContext(const ServedModel& model,
                                                        const std::string& shared_prefix);

// The longest prompt the service accepts and GetModelInfo reports: the
// configured max_prompt_tokens (0: none) lowered to what the engine can run,
// the model's context less one and the KV arena less one token.
int64_t EffectivePromptLimit(const ServedModel& model);

// Bytes of the longest vocabulary entry (added tokens included), an upper
// bound on the text one token stands for.
int64_t LongestTokenBytes(const engine::Tokenizer& tokenizer);

class GrpcServer {
 public:
  // Borrows `engine` and `model`'s pointees; they must outlive the server.
  GrpcServer(const GrpcServerOptions& options, scheduler::EngineService* engine,
             const ServedModel& model);
  ~GrpcServer();  // Shutdown with no grace if still running

  // Binds and starts serving. INVALID_ARGUMENT for a bad address or TLS
  // files that cannot be read; UNAVAILABLE when the port cannot be bound.
  absl::Status Start();
  // The bound port (after Start; resolves port 0).
  int port() const { return port_; }

  // Drain: health turns NOT_SERVING and new calls get UNAVAILABLE
  // ("server is draining"); open streams carry on.
  void BeginDrain();
  // Stops the server, cancelling calls still open after `grace`. With a
  // grace of 200ms or more, calls refused meanwhile get their UNAVAILABLE
  // only once gRPC has stopped listening and sent its GOAWAY, so that a
  // client's next call is refused too instead of being cancelled by gRPC's
  // shutdown (refusal_gate.h); this adds about 30ms.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;  // defined in grpc_server.cc
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace strata::server

#endif  // STRATA_SERVER_GRPC_GRPC_SERVER_H_
