// Maps the daemon's YAML config (server/config/daemon_config.h) onto the
// options of the parts `strata serve` wires together: the serving engine
// (backend and KV tiers), the scheduler, the EngineService and the gRPC
// server. Pure functions over plain values; thread-safe.
//
// Failure: INVALID_ARGUMENT naming the config key for a value the config
// loader let through but the part cannot use (an unknown backend name).
#ifndef STRATA_SERVER_DAEMON_DAEMON_OPTIONS_H_
#define STRATA_SERVER_DAEMON_DAEMON_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "scheduler/engine_service.h"
#include "scheduler/scheduler.h"
#include "server/config/daemon_config.h"
#include "server/engine_setup.h"
#include "server/grpc/grpc_server.h"

namespace strata::server {

// The device KV arena when the config sets neither cache.device_bytes nor
// cache.device_memory_fraction.
inline constexpr int64_t kDefaultDeviceKvBytes = int64_t{256} << 20;

// engine.* and cache.* as ServingOptions. engine.backend "auto" resolves to
// the first of `available_backends` in {"cuda", "cpu"}; the caller may fall
// back to "cpu" when CUDA is built but no device is usable.
absl::StatusOr<ServingOptions> ServingOptionsFromConfig(
    const DaemonConfig& config, const std::vector<std::string>& available_backends);

// scheduler.* on top of the model-derived options LoadServingEngine filled
// (block size, arena, vocabulary, tiers): the batch budget, policy, prefix
// cache, queue bounds, session TTL and preemption mode.
absl::StatusOr<scheduler::EngineServiceOptions> EngineServiceOptionsFromConfig(
    const DaemonConfig& config, const scheduler::SchedulerOptions& model_options);

// scheduler.blend.* as the server's blend defaults for `model`: check layers
// the model does not have are left out. INVALID_ARGUMENT
// "scheduler.blend.check_layers: ..." for layers out of order or none left.
absl::StatusOr<BlendDefaults> BlendDefaultsFromConfig(const SchedulerSection& section,
                                                      const engine::ModelConfig& model);

// server.*, auth.* and tls.* as GrpcServerOptions.
GrpcServerOptions GrpcOptionsFromConfig(const DaemonConfig& config);

}  // namespace strata::server

#endif  // STRATA_SERVER_DAEMON_DAEMON_OPTIONS_H_
