// Serves a prometheus-cpp registry at GET /metrics over HTTP through
// prometheus-cpp's Exposer (civetweb), in the Prometheus text format. Every
// other path is 404.
//
// Idle or half-sent connections (a slowloris) each hold one civetweb worker
// until the request timeout closes them: the worker pool is sized well past
// what scrapers need, and the timeout bounds how long a header may take in
// total, however slowly its bytes trickle in.
//
// Ownership: the server holds a weak reference to the collectable; a scrape
// after the collectable is gone answers an empty body. The Exposer is owned
// and stopped by Stop or the destructor.
//
// Thread-safety: Start and Stop are for one controlling thread; civetweb's
// worker threads serve scrapes concurrently with engine updates.
#ifndef STRATA_SERVER_METRICS_METRICS_HTTP_SERVER_H_
#define STRATA_SERVER_METRICS_METRICS_HTTP_SERVER_H_

#include <netinet/in.h>

#include <memory>
#include <string>

#include "absl/status/status.h"

namespace prometheus {
class Collectable;
class Exposer;
}  // namespace prometheus

namespace strata::metrics {

struct MetricsHttpOptions {
  // civetweb workers: each open connection holds one while its request is
  // read and answered. Prometheus scrapes with one connection at a time;
  // the rest is headroom for idle or malicious connections.
  int worker_threads = 32;
  // The longest a request may take to arrive, in total, before its
  // connection is closed. A scraper sends its few hundred bytes at once.
  int request_timeout_ms = 5000;
};

class MetricsHttpServer {
 public:
  explicit MetricsHttpServer(std::weak_ptr<prometheus::Collectable> collectable,
                             MetricsHttpOptions options = {});
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Listens on `address`, "host:port" with a numeric IPv4 host
  // ("127.0.0.1:9090", "0.0.0.0:9090"); port 0 picks a free port, which
  // port() then reports. Errors: InvalidArgument for a malformed address or
  // options (fewer than one worker, a timeout under 1 ms),
  // FailedPrecondition when already started, Unavailable (naming the
  // address) when it cannot bind, e.g. the port is in use.
  absl::Status Start(const std::string& address);

  // Stops serving and waits for in-flight requests. Idempotent.
  void Stop();

  bool running() const { return exposer_ != nullptr; }
  // The bound port while running, else 0.
  int port() const { return port_; }

 private:
  std::weak_ptr<prometheus::Collectable> collectable_;
  MetricsHttpOptions options_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
  in_addr wake_address_{};  // where Stop connects to wake the listener
};

}  // namespace strata::metrics

#endif  // STRATA_SERVER_METRICS_METRICS_HTTP_SERVER_H_
