#include "server/grpc/grpc_server.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
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

// Shutdown with a grace this long or longer holds refusals back while gRPC
// closes; shorter means "now" (a drain that timed out), and held calls
// would only be cancelled at the deadline.
constexpr std::chrono::milliseconds kMinGraceToHoldRefusals{200};
// A call already sent when the gate closes reaches the service within this.
constexpr std::chrono::milliseconds kInTransitSettle{20};
// gRPC sends its GOAWAY right after it stops listening.
constexpr std::chrono::milliseconds kGoawaySettle{10};

// True when a TCP connect to `port` on the host of `listen` is refused
// (loopback for wildcard hosts); false while something accepts it or when
// the address cannot be tried (unix sockets, unresolvable hosts).
bool ConnectionRefused(const std::string& listen, int port) {
  if (absl::StartsWith(listen, "unix:")) return false;
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0" || host == "localhost") host = "127.0.0.1";
  if (host == "::") host = "::1";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) return false;
  bool refused = false;
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) {
    refused = ::connect(fd, found->ai_addr, found->ai_addrlen) != 0 && errno == ECONNREFUSED;
    ::close(fd);
  }
  freeaddrinfo(found);
  return refused;
}

// Polls until the listener is gone or `until`; unix sockets just wait a
// moment, as there is no cheap probe.
void WaitUntilNotListening(const std::string& listen, int port,
                           std::chrono::steady_clock::time_point until) {
  if (absl::StartsWith(listen, "unix:")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return;
  }
  while (!ConnectionRefused(listen, port) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
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

absl::StatusOr<ConversionContext> MakeConversionContext(const ServedModel& model,
                                                        const std::string& shared_prefix) {
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
  context.chat_template = model.chat_template;
  context.blend = model.blend;
  if (context.blend.num_layers == 0) context.blend.num_layers = model.config->num_layers;
  if (!shared_prefix.empty()) {
    absl::StatusOr<std::vector<engine::TokenId>> ids =
        model.tokenizer->Encode(shared_prefix, /*add_special_tokens=*/true);
    if (!ids.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("shared_prefix: ", std::string(ids.status().message())));
    }
    context.shared_prefix_ids = *std::move(ids);
  }
  return context;
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
  return server::MakeConversionContext(model, options.shared_prefix);
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
  const auto deadline = std::chrono::system_clock::now() + grace;
  if (grace < kMinGraceToHoldRefusals) {
    // Returns once every call is done: those still open at the deadline are
    // cancelled, and their reactors finish on cancellation.
    impl_->server->Shutdown(deadline);
  } else {
    // Refusals wait (refusal_gate.h says why) while gRPC stops listening and
    // sends its GOAWAY; calls already on the wire arrive and wait too.
    impl_->service->HoldRefusals();
    std::this_thread::sleep_for(kInTransitSettle);
    std::thread closer([this, deadline] { impl_->server->Shutdown(deadline); });
    WaitUntilNotListening(impl_->options.listen, port_,
                          std::chrono::steady_clock::now() + grace / 2);
    std::this_thread::sleep_for(kGoawaySettle);
    impl_->service->ReleaseRefusals();
    closer.join();
  }
  impl_->server->Wait();
  impl_->server.reset();
  impl_->service.reset();
}

}  // namespace strata::server
