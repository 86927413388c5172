// Everything `strata serve` runs, wired together from a DaemonConfig: the
// serving engine (model, backend, KV tiers), the EngineService with the
// metrics observer, the /metrics HTTP endpoint and the gRPC server; and the
// graceful way down (drain, shutdown, disk tier flush).
//
// Ownership: the Daemon owns every part; members are declared so that each
// is destroyed before what it borrows (the gRPC server before the engine
// service, the service before the tiers and the observer).
//
// Threads: Start, Drain and Stop are for one controlling thread (main).
// Callers must block SIGTERM/SIGINT (shutdown_signals.h) before Start, since
// Start launches the engine, gRPC and HTTP threads.
#ifndef STRATA_SERVER_DAEMON_DAEMON_H_
#define STRATA_SERVER_DAEMON_DAEMON_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "scheduler/engine_service.h"
#include "server/config/daemon_config.h"
#include "server/daemon/engine_metrics_observer.h"
#include "server/engine_setup.h"
#include "server/grpc/grpc_server.h"
#include "server/metrics/metrics_http_server.h"
#include "server/openai/openai_server.h"
#include "server/metrics/strata_metrics.h"

namespace strata::server {

// Where the weights come from: a checkpoint directory (model.path, or the
// embedded default model when that is empty), or random weights of a given
// config.json shape, for benchmarks.
struct ModelSource {
  std::filesystem::path random_weights_config;  // non-empty: random weights
  uint64_t random_seed = 1234;
};

class Daemon {
 public:
  // Loads the model, starts the engine and both servers, and logs one
  // `event=listening grpc=HOST:PORT metrics=HOST:PORT` line (metrics="" when
  // off). Errors name what failed: the model loaders', the backend's, a
  // config value the parts reject, or a listen address that cannot be bound
  // (UNAVAILABLE). Nothing is left running on error.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const DaemonConfig& config,
                                                       const ModelSource& source);
  ~Daemon();  // Stop() with no grace if still running
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // The bound addresses, ports resolved; metrics_address() is "" when off.
  const std::string& grpc_address() const { return grpc_address_; }
  const std::string& metrics_address() const { return metrics_address_; }
  const std::string& openai_address() const { return openai_address_; }  // "" when off

  // Health turns NOT_SERVING and new calls get UNAVAILABLE; requests in
  // flight carry on until they finish, `timeout` passes, or `interrupted`
  // (polled every 100 ms; may be empty) returns true. True when every
  // request finished.
  bool Drain(std::chrono::milliseconds timeout, const std::function<bool()>& interrupted);

  // Stops the gRPC server (calls still open after `grace` are cancelled),
  // the engine (requests still running end with "abort"), the metrics
  // endpoint, and writes the disk tier's queued blocks. Idempotent.
  void Stop(std::chrono::milliseconds grace);

  scheduler::EngineService& engine() { return *engine_; }
  const prometheus::Registry& registry() const { return *registry_; }

 private:
  Daemon() = default;
  absl::Status StartServers(const DaemonConfig& config);

  // Shared: the /metrics Exposer holds a weak reference to it.
  std::shared_ptr<prometheus::Registry> registry_;
  metrics::StrataMetrics metrics_;
  ServingEngine serving_;
  std::unique_ptr<EngineMetricsObserver> observer_;
  std::unique_ptr<scheduler::EngineService> engine_;
  ServedModel served_;
  std::unique_ptr<GrpcServer> grpc_;
  std::unique_ptr<OpenAiServer> openai_;
  std::unique_ptr<metrics::MetricsHttpServer> http_;
  std::string grpc_address_;
  std::string metrics_address_;
  std::string openai_address_;
  bool stopped_ = false;
};

// "host:port" with the port replaced: the address a listener bound to when
// asked for `listen` (whose port may be 0).
std::string BoundAddress(const std::string& listen, int port);

}  // namespace strata::server

#endif  // STRATA_SERVER_DAEMON_DAEMON_H_
