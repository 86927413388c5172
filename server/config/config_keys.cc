// The one table of config keys. Adding a key: add the field (with its
// default) to DaemonConfig, a row here, and regenerate configs/default.yaml
// (the drift test prints the expected text).
#include "server/config/config_keys.h"

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "cache/kv_cache_options.h"

namespace strata::server::config_internal {
namespace {

// The accessor for config.*kSection.*kMember.
template <auto kSection, auto kMember>
auto& Field(DaemonConfig& config) {
  return (config.*kSection).*kMember;
}

using C = DaemonConfig;
using cache::KvCacheOptions;

constexpr int64_t kMillion = 1 << 20;

std::vector<KeySpec> MakeServerKeys() {
  return {
      {"server.grpc_listen", "Address of the gRPC service (host:port).",
       AddressKey{&Field<&C::server, &ServerConfig::grpc_listen>}},
      {"server.metrics_listen",
       "Address of the Prometheus /metrics HTTP endpoint (host:port); \"\" turns it off.",
       AddressKey{&Field<&C::server, &ServerConfig::metrics_listen>, /*allow_empty=*/true}},
      {"server.max_concurrent_streams",
       "Most Generate streams open at once, all clients together; more are refused\n"
       "with RESOURCE_EXHAUSTED.",
       IntKey{&Field<&C::server, &ServerConfig::max_concurrent_streams>, 1, kMillion}},
      {"server.drain_timeout",
       "On SIGTERM, how long running requests may finish before they are cancelled\n"
       "(a duration: 500ms, 30s, 2m).",
       DurationKey{&Field<&C::server, &ServerConfig::drain_timeout_ms>}},
      {"server.api_keys",
       "API key -> tenant name. Requests must carry a listed key; the tenant name\n"
       "salts the prefix-cache keys, so tenants never share cached KV. {}: no\n"
       "authentication, one tenant. Example: {\"sk-abc\": \"acme\"}",
       MapKey{&Field<&C::server, &ServerConfig::api_keys>}},
  };
}

std::vector<KeySpec> MakeModelAndEngineKeys() {
  return {
      {"model.path",
       "Model directory (config.json, safetensors, tokenizer); \"\": the embedded\n"
       "default model.",
       StringKey{&Field<&C::model, &ModelSection::path>}},
      {"engine.backend", "Execution backend: cpu or cuda.",
       ChoiceKey{&Field<&C::engine, &EngineSection::backend>, {"cpu", "cuda"}}},
      {"engine.threads", "Worker threads of the cpu backend; 0: all hardware threads.",
       IntKey{&Field<&C::engine, &EngineSection::threads>, 0, 4096}},
      {"engine.precision",
       "GEMM precision: split (bf16 weights, activations as bf16 pairs; ~fp32\n"
       "accuracy), bf16 (fastest prefill) or f32 (fp32 weights; small models only).",
       ChoiceKey{&Field<&C::engine, &EngineSection::precision>, {"split", "bf16", "f32"}}},
      {"engine.kv_dtype", "Element type of the KV cache: bf16 or f32.",
       ChoiceKey{&Field<&C::engine, &EngineSection::kv_dtype>, {"bf16", "f32"}}},
  };
}

std::vector<KeySpec> MakeCacheKeys() {
  return {
      {"cache.block_size", "Tokens per KV block, the unit of allocation and of prefix reuse.",
       IntKey{&Field<&C::cache, &KvCacheOptions::block_size>, 1, 4096}},
      {"cache.device_bytes",
       "Size of the device KV arena (4GiB, 512MiB, 1GB, or bytes); 0: see\n"
       "device_memory_fraction.",
       BytesKey{.signed_ref = &Field<&C::cache, &KvCacheOptions::device_bytes>}},
      {"cache.device_memory_fraction",
       "When device_bytes is 0: the fraction of the memory left free by the weights\n"
       "(MemAvailable on cpu) that the arena takes; 0: enough for one sequence of\n"
       "the model's context.",
       DoubleKey{&Field<&C::cache, &KvCacheOptions::device_memory_fraction>, 0.0, 1.0}},
      {"cache.host_bytes",
       "Host tier (pinned memory on cuda) for blocks evicted from the device; 0: none.",
       BytesKey{.unsigned_ref = &Field<&C::cache, &KvCacheOptions::host_bytes>}},
      {"cache.disk_path", "RocksDB directory of the disk tier, shared across restarts; \"\": none.",
       StringKey{&Field<&C::cache, &KvCacheOptions::disk_path>}},
      {"cache.disk_bytes", "Size of the disk tier; required when disk_path is set.",
       BytesKey{.unsigned_ref = &Field<&C::cache, &KvCacheOptions::disk_bytes>}},
      {"cache.eviction", "Which blocks each tier drops first: lru.", EvictionKey{}},
  };
}

std::vector<KeySpec> MakeSchedulerAndLoggingKeys() {
  return {
      {"scheduler.max_batch_tokens", "Tokens computed per step, all sequences together.",
       IntKey{&Field<&C::scheduler, &SchedulerSection::max_batch_tokens>, 1, 16 * kMillion}},
      {"scheduler.max_running", "Sequences in one step.",
       IntKey{&Field<&C::scheduler, &SchedulerSection::max_running>, 1, 65536}},
      {"scheduler.max_waiting",
       "Requests queued before new ones are refused with RESOURCE_EXHAUSTED; 0: no\n"
       "limit.",
       IntKey{&Field<&C::scheduler, &SchedulerSection::max_waiting>, 0, 16 * kMillion}},
      {"scheduler.default_max_tokens", "Tokens generated when a request does not say.",
       IntKey{&Field<&C::scheduler, &SchedulerSection::default_max_tokens>, 1, 16 * kMillion}},
      {"scheduler.max_prompt_tokens", "Longest prompt accepted; 0: the model's context length.",
       IntKey{&Field<&C::scheduler, &SchedulerSection::max_prompt_tokens>, 0, 16 * kMillion}},
      {"logging.level", "Least severe messages logged: debug, info, warning or error.",
       ChoiceKey{&Field<&C::logging, &LoggingSection::level>,
                 {"debug", "info", "warning", "error"}}},
  };
}

std::vector<KeySpec> MakeKeys() {
  std::vector<KeySpec> keys;
  for (auto part :
       {MakeServerKeys, MakeModelAndEngineKeys, MakeCacheKeys, MakeSchedulerAndLoggingKeys}) {
    for (KeySpec& key : part()) keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace

const std::vector<SectionSpec>& Sections() {
  static const auto* const kSections = new std::vector<SectionSpec>{
      {"server", "The gRPC service, the metrics endpoint, authentication."},
      {"model", "Which model to serve."},
      {"engine", "How the forward pass runs."},
      {"cache", "The KV cache: the device arena and the host and disk tiers below it."},
      {"scheduler", "Batching and admission."},
      {"logging", "Diagnostics."},
  };
  return *kSections;
}

const std::vector<KeySpec>& Keys() {
  static const auto* const kKeys = new std::vector<KeySpec>(MakeKeys());
  return *kKeys;
}

std::string TypeName(const KeySpec& key) {
  struct Visitor {
    std::string operator()(const StringKey&) const { return "a string"; }
    std::string operator()(const AddressKey&) const { return "a host:port address"; }
    std::string operator()(const ChoiceKey&) const { return "a name"; }
    std::string operator()(const IntKey&) const { return "an integer"; }
    std::string operator()(const DoubleKey&) const { return "a number"; }
    std::string operator()(const BytesKey&) const { return "a byte size"; }
    std::string operator()(const DurationKey&) const { return "a duration"; }
    std::string operator()(const EvictionKey&) const { return "a policy name"; }
    std::string operator()(const MapKey&) const { return "a mapping"; }
  };
  return std::visit(Visitor{}, key.kind);
}

}  // namespace strata::server::config_internal
