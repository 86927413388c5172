// Serves a MetricsRegistry at GET /metrics over HTTP (civetweb), in the
// Prometheus text format 0.0.4. Every other path is 404; other methods on
// /metrics are 405.
//
// Ownership: the server borrows the registry, which must outlive it (or at
// least its Stop). The civetweb context is owned and stopped by Stop or the
// destructor.
//
// Thread-safety: Start and Stop are for one controlling thread; civetweb's
// worker threads serve scrapes concurrently with engine updates.
#ifndef STRATA_SERVER_METRICS_METRICS_HTTP_SERVER_H_
#define STRATA_SERVER_METRICS_METRICS_HTTP_SERVER_H_

#include <netinet/in.h>

#include <string>

#include "absl/status/status.h"
#include "server/metrics/metrics_registry.h"

struct mg_context;

namespace strata::metrics {

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

class MetricsHttpServer {
 public:
  // `registry` is not owned.
  explicit MetricsHttpServer(const MetricsRegistry* registry);
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Listens on `address`, "host:port" with a numeric IPv4 host
  // ("127.0.0.1:9090", "0.0.0.0:9090"); port 0 picks a free port, which
  // port() then reports. Errors: InvalidArgument for a malformed address,
  // FailedPrecondition when already started, Unavailable (naming the
  // address) when it cannot bind, e.g. the port is in use.
  absl::Status Start(const std::string& address);

  // Stops serving and waits for in-flight requests. Idempotent.
  void Stop();

  bool running() const { return context_ != nullptr; }
  // The bound port while running, else 0.
  int port() const { return port_; }

 private:
  const MetricsRegistry* registry_;
  mg_context* context_ = nullptr;
  int port_ = 0;
  in_addr wake_address_{};  // where Stop connects to wake the listener
};

}  // namespace strata::metrics

#endif  // STRATA_SERVER_METRICS_METRICS_HTTP_SERVER_H_
