#include "server/metrics/metrics_http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string_view>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace strata::metrics {
namespace {

// civetweb wants one library-wide initialisation before the first context.
void InitCivetwebOnce() {
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

// civetweb logs bind failures and the like to stderr; Start reports them
// as a Status instead.
int DiscardLog(const mg_connection*, const char*) { return 1; }

int HandleRequest(mg_connection* conn, void* user_data) {
  const auto* registry = static_cast<const MetricsRegistry*>(user_data);
  const mg_request_info* info = mg_get_request_info(conn);
  if (info->local_uri == nullptr || std::strcmp(info->local_uri, "/metrics") != 0) {
    mg_send_http_error(conn, 404, "%s", "Not Found\n");
    return 404;
  }
  const bool head = std::strcmp(info->request_method, "HEAD") == 0;
  if (!head && std::strcmp(info->request_method, "GET") != 0) {
    mg_send_http_error(conn, 405, "%s", "Method Not Allowed\n");
    return 405;
  }
  const std::string body = registry->Serialize();
  mg_send_http_ok(conn, kMetricsContentType, static_cast<long long>(body.size()));
  if (!head) mg_write(conn, body.data(), body.size());
  return 200;
}

// Checks "a.b.c.d:port" up front, so a typo is InvalidArgument rather than
// a bind failure.
absl::Status ValidateAddress(const std::string& address, in_addr* host_out) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\" is not host:port"));
  }
  const std::string host = address.substr(0, colon);
  in_addr parsed;
  if (inet_pton(AF_INET, host.c_str(), &parsed) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\": host must be a numeric IPv4 address"));
  }
  // A wildcard listener is reachable through loopback.
  if (parsed.s_addr == htonl(INADDR_ANY)) parsed.s_addr = htonl(INADDR_LOOPBACK);
  *host_out = parsed;
  const std::string_view port_text = std::string_view(address).substr(colon + 1);
  int port = -1;
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(std::string(port_text), &port) || port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("metrics address \"", address, "\": bad port"));
  }
  return absl::OkStatus();
}

// Opens and closes one connection to the listener at `host`:`port`.
void WakeListener(const in_addr& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in addr;
  std::memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr = host;
  connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  close(fd);
}

}  // namespace

MetricsHttpServer::MetricsHttpServer(const MetricsRegistry* registry) : registry_(registry) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const std::string& address) {
  if (context_ != nullptr) {
    return absl::FailedPreconditionError("metrics server already started");
  }
  in_addr host{};
  if (absl::Status status = ValidateAddress(address, &host); !status.ok()) return status;
  InitCivetwebOnce();

  // Scrapes are rare and small: two workers, no keep-alive.
  const char* options[] = {
      "listening_ports",    address.c_str(), "num_threads", "2", "enable_keep_alive", "no",
      "request_timeout_ms", "10000",         nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = &DiscardLog;
  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.configuration_options = options;
  char error_text[256] = {0};
  unsigned error_code = 0;
  mg_error_data error;
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);

  mg_context* context = mg_start2(&init, &error);
  if (context == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("metrics server cannot listen on ", address, ": ", error_text));
  }
  mg_set_request_handler(context, "/", &HandleRequest, const_cast<MetricsRegistry*>(registry_));

  mg_server_port ports[1];
  std::memset(ports, 0, sizeof(ports));
  if (mg_get_server_ports(context, 1, ports) != 1 || ports[0].port <= 0) {
    mg_stop(context);
    return absl::InternalError(
        absl::StrCat("metrics server on ", address, " reports no listening port"));
  }
  context_ = context;
  port_ = ports[0].port;
  wake_address_ = host;
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() {
  if (context_ == nullptr) return;
  // civetweb's listener polls in 2-second quanta and checks for a stop only
  // between polls, so mg_stop alone takes up to 2 s. Connecting to the
  // listener wakes the poll; repeat until mg_stop returns, since a connection
  // made before the stop flag is set is just served.
  std::atomic<bool> stopped{false};
  std::thread stopper([this, &stopped] {
    mg_stop(context_);
    stopped.store(true);
  });
  while (!stopped.load()) {
    WakeListener(wake_address_, port_);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stopper.join();
  context_ = nullptr;
  port_ = 0;
}

}  // namespace strata::metrics
