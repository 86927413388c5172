#include "server/daemon/daemon_options.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace strata::server {
namespace {

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

absl::StatusOr<std::string> ResolveBackend(const std::string& requested,
                                           const std::vector<std::string>& available) {
  if (requested == "auto") return Contains(available, "cuda") ? "cuda" : "cpu";
  if (Contains(available, requested)) return requested;
  return absl::InvalidArgumentError(absl::StrCat(
      "engine.backend: \"", requested,
      "\" is not built into this binary (built: ", absl::StrJoin(available, ", "), ")"));
}

absl::StatusOr<scheduler::SchedulingPolicy> ParsePolicy(const std::string& name) {
  if (name == "cache_aware") return scheduler::SchedulingPolicy::kCacheAware;
  if (name == "fcfs") return scheduler::SchedulingPolicy::kFcfs;
  return absl::InvalidArgumentError(
      absl::StrCat("scheduler.policy: \"", name, "\" is not one of cache_aware, fcfs"));
}

absl::StatusOr<scheduler::PreemptionMode> ParsePreemption(const std::string& name) {
  if (name == "auto") return scheduler::PreemptionMode::kAuto;
  if (name == "swap") return scheduler::PreemptionMode::kSwap;
  if (name == "recompute") return scheduler::PreemptionMode::kRecompute;
  return absl::InvalidArgumentError(
      absl::StrCat("scheduler.preemption: \"", name, "\" is not one of auto, swap, recompute"));
}

}  // namespace

absl::StatusOr<ServingOptions> ServingOptionsFromConfig(
    const DaemonConfig& config, const std::vector<std::string>& available_backends) {
  ServingOptions options;
  absl::StatusOr<std::string> backend = ResolveBackend(config.engine.backend, available_backends);
  if (!backend.ok()) return backend.status();
  options.backend = *backend;
  absl::StatusOr<engine::Precision> precision =
      ParsePrecision(config.engine.precision, "engine.precision");
  if (!precision.ok()) return precision.status();
  absl::StatusOr<engine::DType> kv_dtype = ParseKvDtype(config.engine.kv_dtype, "engine.kv_dtype");
  if (!kv_dtype.ok()) return kv_dtype.status();
  options.backend_options.threads = static_cast<int>(config.engine.threads);
  options.backend_options.precision = *precision;
  options.backend_options.kv_dtype = *kv_dtype;
  options.cache = config.cache;
  // The engine's own default (one sequence's worth of blocks) cannot serve
  // concurrent requests; a daemon given no size takes a fixed arena.
  if (options.cache.device_bytes == 0 && options.cache.device_memory_fraction == 0 &&
      options.cache.device_blocks == 0) {
    options.cache.device_bytes = kDefaultDeviceKvBytes;
  }
  return options;
}

absl::StatusOr<scheduler::EngineServiceOptions> EngineServiceOptionsFromConfig(
    const DaemonConfig& config, const scheduler::SchedulerOptions& model_options) {
  const SchedulerSection& section = config.scheduler;
  scheduler::EngineServiceOptions options;
  options.scheduler = model_options;
  scheduler::SchedulerOptions& s = options.scheduler;
  s.max_batch_tokens = section.max_tokens_per_step;
  s.max_running = section.max_running;
  s.max_waiting = section.max_waiting;
  s.enable_prefix_cache = section.prefix_cache;
  s.max_queue_delay = std::chrono::milliseconds(section.max_queue_delay_ms);
  s.session_ttl = std::chrono::milliseconds(section.session_ttl_ms);
  absl::StatusOr<scheduler::SchedulingPolicy> policy = ParsePolicy(section.policy);
  if (!policy.ok()) return policy.status();
  s.policy = *policy;
  absl::StatusOr<scheduler::PreemptionMode> preemption = ParsePreemption(section.preemption);
  if (!preemption.ok()) return preemption.status();
  s.preemption = *preemption;
  s.yield_to_new_after_tokens = section.yield_to_new_after_tokens;
  options.max_prompt_tokens = section.max_prompt_tokens;
  return options;
}

absl::StatusOr<BlendDefaults> BlendDefaultsFromConfig(const SchedulerSection& section,
                                                      const engine::ModelConfig& model) {
  BlendDefaults defaults{.enable = section.blend_enable, .num_layers = model.num_layers};
  defaults.options.recompute_ratio = static_cast<float>(section.blend_recompute_ratio);
  defaults.options.check_layers.clear();
  for (size_t i = 0; i < section.blend_check_layers.size(); ++i) {
    const int64_t layer = section.blend_check_layers[i];
    if (i > 0 && layer <= section.blend_check_layers[i - 1]) {
      return absl::InvalidArgumentError(
          absl::StrCat("scheduler.blend.check_layers: layer ", layer, " is out of order"));
    }
    // As documented: a shallower model checks at the layers it has.
    if (layer < model.num_layers)
      defaults.options.check_layers.push_back(static_cast<int32_t>(layer));
  }
  if (defaults.options.check_layers.empty() && !section.blend_check_layers.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("scheduler.blend.check_layers: none of the layers is below the model's ",
                     model.num_layers));
  }
  return defaults;
}

GrpcServerOptions GrpcOptionsFromConfig(const DaemonConfig& config) {
  GrpcServerOptions options;
  options.listen = config.server.listen;
  options.max_concurrent_streams = config.server.max_concurrent_streams;
  options.max_message_bytes = config.server.max_message_bytes;
  options.auth_tokens = config.auth.tokens;
  options.admin_token = config.auth.admin_token;
  options.shared_prefix = config.auth.shared_prefix;
  options.tls_cert_file = config.tls.cert_file;
  options.tls_key_file = config.tls.key_file;
  return options;
}

}  // namespace strata::server
