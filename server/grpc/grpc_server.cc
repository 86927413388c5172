#include "server/grpc/grpc_server.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/grpc/auth.h"
#include "server/grpc/library_logs.h"
#include "server/grpc/parse_error_interceptor.h"
#include "server/grpc/request_conversion.h"
#include "server/grpc/strata_service.h"
#include "server/logging/log.h"

namespace strata::server {
namespace {

constexpr char kServiceName[] = "strata.v1.Strata";

// host:port with a numeric port (IPv6 hosts in brackets), or a unix: path.
absl::Status CheckListenAddress(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:")) return absl::OkStatus();
  size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen: \"", listen, "\" is not host:port with a port in [0, 65535]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const char* field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(field, ": cannot read \"", path, "\""));
  std::stringstream contents;
  contents << in.rdbuf();
  if (contents.str().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": \"", path, "\" is empty"));
  }
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeCredentials(
    const GrpcServerOptions& options) {
  if (options.tls_cert_file.empty() && options.tls_key_file.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError("tls_cert_file and tls_key_file: set both or neither");
  }
  absl::StatusOr<std::string> cert = ReadPemFile(options.tls_cert_file, "tls_cert_file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile(options.tls_key_file, "tls_key_file");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({.private_key = *key, .cert_chain = *cert});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

int64_t EffectivePromptLimit(const ServedModel& model) {
  // The engine refuses a prompt that leaves no room to generate within the
  // context, or that with its first token needs more blocks than the arena
  // holds (prompt / block_size + 1 <= blocks).
  int64_t limit = model.config->max_position_embeddings - 1;
  if (model.max_prompt_tokens > 0) limit = std::min(limit, model.max_prompt_tokens);
  if (model.kv_device_blocks > 0 && model.kv_block_size > 0) {
    limit = std::min(limit, model.kv_device_blocks * model.kv_block_size - 1);
  }
  return limit;
}

int64_t LongestTokenBytes(const engine::Tokenizer& tokenizer) {
  // A vocabulary entry is never shorter than the text it stands for: byte-
  // level BPE spells each byte as one or two UTF-8 bytes, SentencePiece a
  // space as the 3-byte U+2581, byte fallback a byte as "<0xNN>".
  size_t longest = 1;
  for (int64_t id = 0; id < tokenizer.vocab_size(); ++id) {
    std::optional<std::string> token = tokenizer.IdToToken(static_cast<engine::TokenId>(id));
    if (token.has_value()) longest = std::max(longest, token->size());
  }
  return static_cast<int64_t>(longest);
}

struct GrpcServer::Impl {
  GrpcServerOptions options;
  scheduler::EngineService* engine = nullptr;
  ServedModel model;
  // Destroyed after `server` (declaration order): the service must outlive
  // every call.
  std::unique_ptr<StrataService> service;
  std::unique_ptr<grpc::Server> server;

  absl::StatusOr<ConversionContext> MakeConversionContext() const;
};

absl::StatusOr<ConversionContext> GrpcServer::Impl::MakeConversionContext() const {
  ConversionContext context;
  context.tokenizer = model.tokenizer;
  context.vocab_size = model.config->vocab_size;
  context.max_prompt_tokens = EffectivePromptLimit(model);
  if (context.max_prompt_tokens < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_prompt_tokens: the model's context (", model.config->max_position_embeddings,
        " tokens) and KV cache (", model.kv_device_blocks, " blocks of ", model.kv_block_size,
        ") leave no room for a prompt"));
  }
  if (model.max_prompt_tokens > context.max_prompt_tokens) {
    logging::Event(logging::Level::kWarning, "max_prompt_tokens_lowered")
        .With("configured", model.max_prompt_tokens)
        .With("effective", context.max_prompt_tokens);
  }
  // No prompt within the token limit can have more bytes than this; an
  // oversized text is refused before the tokenizer spends time on it.
  context.max_prompt_bytes = context.max_prompt_tokens * LongestTokenBytes(*model.tokenizer);
  context.default_max_tokens = model.default_max_tokens;
  if (!options.shared_prefix.empty()) {
    absl::StatusOr<std::vector<engine::TokenId>> ids =
        model.tokenizer->Encode(options.shared_prefix, /*add_special_tokens=*/true);
    if (!ids.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("shared_prefix: ", std::string(ids.status().message())));
    }
    context.shared_prefix_ids = *std::move(ids);
  }
  return context;
}

GrpcServer::GrpcServer(const GrpcServerOptions& options, scheduler::EngineService* engine,
                       const ServedModel& model)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->engine = engine;
  impl_->model = model;
}

GrpcServer::~GrpcServer() { Shutdown(std::chrono::milliseconds(0)); }

absl::Status GrpcServer::Start() {
  if (impl_->server != nullptr) return absl::FailedPreconditionError("the server is running");
  const GrpcServerOptions& options = impl_->options;
  if (absl::Status address = CheckListenAddress(options.listen); !address.ok()) return address;
  if (options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("max_concurrent_streams: must be >= 1");
  }
  if (options.max_message_bytes < 1 || options.max_message_bytes > INT32_MAX) {
    return absl::InvalidArgumentError("max_message_bytes: must be in [1, 2^31)");
  }
  absl::StatusOr<Authenticator> authenticator =
      Authenticator::Create(options.auth_tokens, options.admin_token);
  if (!authenticator.ok()) return authenticator.status();
  absl::StatusOr<ConversionContext> conversion = impl_->MakeConversionContext();
  if (!conversion.ok()) return conversion.status();
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = MakeCredentials(options);
  if (!credentials.ok()) return credentials.status();

  auto service =
      std::make_unique<StrataService>(impl_->engine, impl_->model, *std::move(authenticator),
                                      *std::move(conversion), options.max_concurrent_streams);
  // Both are process-wide switches read when a server is built.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  // libprotobuf's and gRPC's own lines (a request that is not UTF-8, ...)
  // go through the structured log, so a JSON log stays JSON.
  static std::once_flag route_library_logs;
  std::call_once(route_library_logs, RouteLibraryLogs);
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<ParseErrorInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  builder.RegisterService(service.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(options.max_message_bytes));
  // gRPC sets SO_REUSEPORT by default, which would let a second daemon bind
  // the same port and silently split the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on \"", options.listen, "\""));
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);
    health->SetServingStatus(kServiceName, true);
  }
  impl_->service = std::move(service);
  impl_->server = std::move(server);
  port_ = port;
  logging::Event(logging::Level::kInfo, "grpc_listening")
      .With("listen", options.listen)
      .With("port", port_)
      .With("tls", !options.tls_cert_file.empty())
      .With("auth", !options.auth_tokens.empty());
  return absl::OkStatus();
}

void GrpcServer::BeginDrain() {
  if (impl_->server == nullptr) return;
  impl_->service->BeginDrain();
  if (grpc::HealthCheckServiceInterface* health = impl_->server->GetHealthCheckService()) {
    health->SetServingStatus(false);
  }
  logging::Event(logging::Level::kInfo, "grpc_draining")
      .With("open_calls", impl_->service->open_calls());
}

void GrpcServer::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->server == nullptr) return;
  impl_->service->BeginDrain();
  // Returns once every call is done: those still open at the deadline are
  // cancelled, and their reactors finish on cancellation.
  impl_->server->Shutdown(std::chrono::system_clock::now() + grace);
  impl_->server->Wait();
  impl_->server.reset();
  impl_->service.reset();
}

}  // namespace strata::server
