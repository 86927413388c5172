#include "server/openai/openai_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/grpc/auth.h"
#include "server/grpc/call_record.h"
#include "server/grpc/request_conversion.h"
#include "server/logging/log.h"
#include "server/openai/openai_protocol.h"

namespace strata::server {
namespace {

using openai::ApiError;
using openai::Endpoint;

// The engine's events of one request, handed from its dispatch thread to the
// worker thread that answers it. Shared by both, so a late event after the
// worker left is harmless.
class EventQueue {
 public:
  void Push(const scheduler::TokenEvent& event) {
    absl::MutexLock lock(&mu_);
    events_.push_back(event);
  }
  scheduler::TokenEvent Pop() {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](std::deque<scheduler::TokenEvent>* events) { return !events->empty(); }, &events_));
    scheduler::TokenEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
  }

 private:
  absl::Mutex mu_;
  std::deque<scheduler::TokenEvent> events_ ABSL_GUARDED_BY(mu_);
};

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Internal Server Error";
  }
}

int SendJson(mg_connection* conn, int status, const nlohmann::json& body) {
  const std::string text = openai::Serialize(body);
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
            "Connection: close\r\n\r\n",
            status, ReasonPhrase(status), text.size());
  mg_write(conn, text.data(), text.size());
  return status;
}

int SendError(mg_connection* conn, const ApiError& error) {
  return SendJson(conn, error.http_status, openai::ErrorBody(error));
}

// One server-sent event; false when the client is gone.
bool SendEvent(mg_connection* conn, std::string_view data) {
  const std::string event = absl::StrCat("data: ", std::string(data), "\n\n");
  return mg_send_chunk(conn, event.data(), static_cast<unsigned>(event.size())) > 0;
}

std::optional<std::string_view> Header(mg_connection* conn, const char* name) {
  const char* value = mg_get_header(conn, name);
  if (value == nullptr) return std::nullopt;
  return std::string_view(value);
}

int DiscardLog(const mg_connection*, const char*) { return 1; }

// Opens and closes one connection, which wakes civetweb's listener poll.
void WakeListener(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  close(fd);
}

}  // namespace

struct OpenAiServer::Impl {
  OpenAiServerOptions options;
  scheduler::EngineService* engine = nullptr;
  ServedModel model;
  std::optional<Authenticator> authenticator;
  ConversionContext conversion;
  int64_t created = 0;  // the model's "created" time: when the server started
  mg_context* context = nullptr;
  int port = 0;
  std::atomic<bool> draining{false};
  std::atomic<int64_t> next_id{1};

  absl::Mutex mu;
  int64_t active ABSL_GUARDED_BY(mu) = 0;  // handlers running
  absl::flat_hash_set<scheduler::RequestId> in_flight ABSL_GUARDED_BY(mu);
  bool stopping ABSL_GUARDED_BY(mu) = false;

  static int Handle(mg_connection* conn, void* self);
  int Route(mg_connection* conn);
  int Generate(mg_connection* conn, Endpoint endpoint, const Tenant& tenant);
  int Answer(mg_connection* conn, Endpoint endpoint, bool stream, bool include_usage,
             EventQueue& queue, CallRecord& record, openai::Completion& completion);
  absl::StatusOr<std::string> ReadBody(mg_connection* conn);
};

int OpenAiServer::Impl::Handle(mg_connection* conn, void* self) {
  Impl* impl = static_cast<Impl*>(self);
  {
    absl::MutexLock lock(&impl->mu);
    ++impl->active;
  }
  const int status = impl->Route(conn);
  absl::MutexLock lock(&impl->mu);
  --impl->active;
  return status;
}

int OpenAiServer::Impl::Route(mg_connection* conn) {
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string_view uri = info->local_uri != nullptr ? info->local_uri : "";
  const std::string_view method = info->request_method != nullptr ? info->request_method : "";
  std::optional<Endpoint> endpoint;
  if (uri == "/v1/completions") endpoint = Endpoint::kCompletions;
  if (uri == "/v1/chat/completions") endpoint = Endpoint::kChatCompletions;
  if (!endpoint.has_value() && uri != "/v1/models") {
    return SendError(
        conn, ApiError{.http_status = 404,
                       .type = "invalid_request_error",
                       .message = absl::StrCat("Unknown request URL: ", std::string(method), " ",
                                               std::string(uri)),
                       .code = "unknown_url"});
  }
  if (method != (endpoint.has_value() ? "POST" : "GET")) {
    return SendError(conn,
                     ApiError{.http_status = 405,
                              .type = "invalid_request_error",
                              .message = absl::StrCat(std::string(method), " is not allowed on ",
                                                      std::string(uri))});
  }
  const Endpoint kind = endpoint.value_or(Endpoint::kCompletions);
  if (draining.load()) {
    return SendError(conn,
                     openai::ErrorFromStatus(absl::UnavailableError("server is draining"), kind));
  }
  absl::StatusOr<Tenant> tenant = authenticator->Authenticate(Header(conn, "Authorization"));
  if (!tenant.ok()) return SendError(conn, openai::ErrorFromStatus(tenant.status(), kind));
  if (!endpoint.has_value()) return SendJson(conn, 200, openai::ModelsBody(model.name, created));
  return Generate(conn, *endpoint, *tenant);
}

absl::StatusOr<std::string> OpenAiServer::Impl::ReadBody(mg_connection* conn) {
  std::string body;
  char buffer[16384];
  for (;;) {
    const int n = mg_read(conn, buffer, sizeof(buffer));
    if (n < 0) return absl::InvalidArgumentError("cannot read the request body");
    if (n == 0) return body;
    body.append(buffer, static_cast<size_t>(n));
    if (static_cast<int64_t>(body.size()) > options.max_body_bytes) {
      return absl::OutOfRangeError(
          absl::StrCat("the request body exceeds ", options.max_body_bytes, " bytes"));
    }
  }
}

int OpenAiServer::Impl::Generate(mg_connection* conn, Endpoint endpoint, const Tenant& tenant) {
  absl::StatusOr<std::string> body = ReadBody(conn);
  if (!body.ok()) {
    ApiError error = openai::ErrorFromStatus(body.status(), endpoint);
    if (body.status().code() == absl::StatusCode::kOutOfRange) error.http_status = 413;
    return SendError(conn, error);
  }
  ApiError error;
  absl::StatusOr<openai::ParsedRequest> parsed = openai::ParseRequest(
      endpoint, *body, model.name, Header(conn, "x-session-id").value_or(""), &error);
  if (!parsed.ok()) return SendError(conn, error);

  CallRecord record{.method = endpoint == Endpoint::kChatCompletions ? "OpenAI.ChatCompletions"
                                                                     : "OpenAI.Completions",
                    .tenant = tenant.name};
  absl::StatusOr<scheduler::Request> request =
      RequestFromProto(parsed->request, conversion, tenant);
  auto queue = std::make_shared<EventQueue>();
  absl::StatusOr<scheduler::RequestId> id =
      request.ok() ? engine->Submit(*std::move(request),
                                    [queue](const scheduler::TokenEvent& e) { queue->Push(e); })
                   : absl::StatusOr<scheduler::RequestId>(request.status());
  if (!id.ok()) {
    record.status = id.status();
    LogRequestFinished(record);
    return SendError(conn, openai::ErrorFromStatus(id.status(), endpoint));
  }
  bool cancel_now = false;
  {
    absl::MutexLock lock(&mu);
    in_flight.insert(*id);
    cancel_now = stopping;  // Shutdown's cancel sweep may have passed already
  }
  if (cancel_now) engine->Cancel(*id);
  record.id = *id;
  LogRequestStarted(record);
  openai::Completion completion{
      .id = absl::StrCat(endpoint == Endpoint::kChatCompletions ? "chatcmpl-" : "cmpl-",
                         next_id.fetch_add(1)),
      .created = static_cast<int64_t>(std::time(nullptr)),
      .model = model.name};
  const int status =
      Answer(conn, endpoint, parsed->stream, parsed->include_usage, *queue, record, completion);
  {
    absl::MutexLock lock(&mu);
    in_flight.erase(*id);
  }
  LogRequestFinished(record);
  return status;
}

// Relays the engine's events until the request finishes: one JSON body, or
// server-sent events as text arrives.
int OpenAiServer::Impl::Answer(mg_connection* conn, Endpoint endpoint, bool stream,
                               bool include_usage, EventQueue& queue, CallRecord& record,
                               openai::Completion& completion) {
  bool connected = true;
  if (stream) {
    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
              "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    if (endpoint == Endpoint::kChatCompletions) {
      connected =
          SendEvent(conn, openai::Serialize(openai::ChunkBody(endpoint, completion, "", "", true)));
    }
  }
  scheduler::TokenEvent event;
  do {
    event = queue.Pop();
    record.Observe(event);
    completion.text += event.text;
    if (stream && connected && !event.text.empty()) {
      connected = SendEvent(
          conn, openai::Serialize(openai::ChunkBody(endpoint, completion, event.text, "", false)));
    }
    // A client that hung up: stop generating; the abort event ends the loop.
    if (!connected && !event.finished) engine->Cancel(*record.id);
  } while (!event.finished);
  completion.usage = record.usage;
  completion.completion_tokens = record.generated_tokens;
  completion.finish_reason = openai::OpenAiFinishReason(event.finish_reason);
  record.status = connected ? StatusOfFinishedEvent(event)
                            : absl::CancelledError("the client closed the connection");
  if (!stream) {
    if (!record.status.ok())
      return SendError(conn, openai::ErrorFromStatus(record.status, endpoint));
    return SendJson(conn, 200, openai::CompletionBody(endpoint, completion));
  }
  if (!connected) return 200;
  if (!record.status.ok()) {
    SendEvent(conn, openai::Serialize(
                        openai::ErrorBody(openai::ErrorFromStatus(record.status, endpoint))));
  } else {
    SendEvent(conn, openai::Serialize(openai::ChunkBody(endpoint, completion, "",
                                                        completion.finish_reason, false)));
    if (include_usage)
      SendEvent(conn, openai::Serialize(openai::UsageChunkBody(endpoint, completion)));
  }
  SendEvent(conn, "[DONE]");
  mg_send_chunk(conn, "", 0);
  return 200;
}

OpenAiServer::OpenAiServer(const OpenAiServerOptions& options, scheduler::EngineService* engine,
                           const ServedModel& model)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  impl_->engine = engine;
  impl_->model = model;
}

OpenAiServer::~OpenAiServer() { Shutdown(std::chrono::milliseconds(0)); }

absl::Status OpenAiServer::Start() {
  if (impl_->context != nullptr) return absl::FailedPreconditionError("the server is running");
  const OpenAiServerOptions& options = impl_->options;
  const size_t colon = options.listen.rfind(':');
  in_addr host{};
  if (colon == std::string::npos ||
      inet_pton(AF_INET, options.listen.substr(0, colon).c_str(), &host) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", options.listen, "\" is not a numeric IPv4 host:port"));
  }
  absl::StatusOr<Authenticator> authenticator = Authenticator::Create(options.auth_tokens);
  if (!authenticator.ok()) return authenticator.status();
  impl_->authenticator = *std::move(authenticator);
  absl::StatusOr<ConversionContext> conversion =
      MakeConversionContext(impl_->model, options.shared_prefix);
  if (!conversion.ok()) return conversion.status();
  impl_->conversion = *std::move(conversion);
  impl_->created = static_cast<int64_t>(std::time(nullptr));

  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
  const std::string threads = absl::StrCat(options.threads);
  const char* config[] = {"listening_ports",
                          options.listen.c_str(),
                          "num_threads",
                          threads.c_str(),
                          "enable_keep_alive",
                          "no",
                          "request_timeout_ms",
                          "60000",
                          nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = &DiscardLog;
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.configuration_options = config;
  char error_text[256] = {0};
  unsigned error_code = 0;
  mg_error_data error;
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);
  mg_context* context = mg_start2(&init, &error);
  if (context == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen, ": ", error_text));
  }
  mg_set_request_handler(context, "/", &Impl::Handle, impl_.get());
  mg_server_port ports[1];
  std::memset(ports, 0, sizeof(ports));
  if (mg_get_server_ports(context, 1, ports) != 1 || ports[0].port <= 0) {
    mg_stop(context);
    return absl::InternalError(absl::StrCat("no listening port on ", options.listen));
  }
  impl_->context = context;
  impl_->port = ports[0].port;
  port_ = ports[0].port;
  logging::Event(logging::Level::kInfo, "openai_listening")
      .With("listen", options.listen)
      .With("port", port_)
      .With("auth", !options.auth_tokens.empty());
  return absl::OkStatus();
}

void OpenAiServer::BeginDrain() {
  if (impl_->context == nullptr) return;
  impl_->draining.store(true);
  absl::MutexLock lock(&impl_->mu);
  logging::Event(logging::Level::kInfo, "openai_draining").With("open_requests", impl_->active);
}

void OpenAiServer::Shutdown(std::chrono::milliseconds grace) {
  if (impl_->context == nullptr) return;
  Impl& impl = *impl_;
  impl.draining.store(true);
  auto idle = [&impl]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl.mu) { return impl.active == 0; };
  {
    absl::MutexLock lock(&impl.mu);
    impl.mu.AwaitWithTimeout(absl::Condition(&idle), absl::FromChrono(grace));
    impl.stopping = true;
    // Requests still open end with "abort"; their handlers then return.
    for (scheduler::RequestId id : impl.in_flight) impl.engine->Cancel(id);
    impl.mu.Await(absl::Condition(&idle));
  }
  // civetweb's listener checks for a stop between 2-second polls; a
  // connection wakes it (repeated, as one made before the flag is just served).
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    mg_stop(impl.context);
    stopped.store(true);
  });
  while (!stopped.load()) {
    WakeListener(impl.port);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stopper.join();
  impl.context = nullptr;
  port_ = 0;
}

}  // namespace strata::server
