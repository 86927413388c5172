#include "server/metrics/metrics_http_server.h"

#include <CivetServer.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <prometheus/exposer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace strata::metrics {
namespace {

// civetweb logs bind failures and the like to stderr; Start reports the last
// one on its own thread as a Status instead, and workers' messages (a
// request that timed out) are dropped.
thread_local std::string last_civetweb_message;

int CaptureLog(const mg_connection*, const char* message) {
  last_civetweb_message = message == nullptr ? "" : message;
  return 1;
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

MetricsHttpServer::MetricsHttpServer(std::weak_ptr<prometheus::Collectable> collectable,
                                     MetricsHttpOptions options)
    : collectable_(std::move(collectable)), options_(options) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::Status MetricsHttpServer::Start(const std::string& address) {
  if (exposer_ != nullptr) {
    return absl::FailedPreconditionError("metrics server already started");
  }
  if (options_.worker_threads < 1 || options_.request_timeout_ms < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics server needs at least one worker and a positive request timeout, "
                     "got ",
                     options_.worker_threads, " workers and ", options_.request_timeout_ms, " ms"));
  }
  in_addr host{};
  if (absl::Status status = ValidateAddress(address, &host); !status.ok()) return status;

  // No keep-alive: a scraper's connection is done after one answer, and an
  // idle kept-alive one would hold a worker.
  const std::vector<std::string> options = {
      "listening_ports",    address,
      "num_threads",        absl::StrCat(options_.worker_threads),
      "request_timeout_ms", absl::StrCat(options_.request_timeout_ms),
      "enable_keep_alive",  "no",
  };
  CivetCallbacks callbacks;
  callbacks.log_message = &CaptureLog;
  last_civetweb_message.clear();
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(options, &callbacks);
  } catch (const std::exception& e) {
    // CivetServer throws when mg_start fails, which is a failed bind once
    // the address is well-formed.
    return absl::UnavailableError(absl::StrCat(
        "metrics server cannot listen on ", address, ": ",
        last_civetweb_message.empty() ? std::string(e.what()) : last_civetweb_message));
  }
  exposer->RegisterCollectable(collectable_);
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.size() != 1 || ports[0] <= 0) {
    return absl::InternalError(
        absl::StrCat("metrics server on ", address, " reports no listening port"));
  }
  exposer_ = std::move(exposer);
  port_ = ports[0];
  wake_address_ = host;
  return absl::OkStatus();
}

void MetricsHttpServer::Stop() {
  if (exposer_ == nullptr) return;
  // civetweb's listener polls in 2-second quanta and checks for a stop only
  // between polls, so stopping alone takes up to 2 s. Connecting to the
  // listener wakes the poll; repeat until the Exposer is gone, since a
  // connection made before the stop flag is set is just served.
  std::atomic<bool> stopped{false};
  std::thread stopper([this, &stopped] {
    exposer_.reset();
    stopped.store(true);
  });
  while (!stopped.load()) {
    WakeListener(wake_address_, port_);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stopper.join();
  port_ = 0;
}

}  // namespace strata::metrics
