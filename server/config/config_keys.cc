// The one table of config keys. Adding a key: add the field (with its
// default) to DaemonConfig, a row here, and regenerate configs/default.yaml
// (the drift test prints the expected text).
#include "server/config/config_keys.h"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
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

// Upper bounds of counts: generous, but small enough that a typo (an extra
// digit or three) is caught rather than allocated.
constexpr int64_t kMi = int64_t{1} << 20;

std::vector<KeySpec> MakeServerKeys() {
  return {
      {"server.listen", "Address of the gRPC service (host:port).",
       AddressKey{&Field<&C::server, &ServerConfig::listen>}},
      {"server.max_concurrent_streams",
       "Most Generate/Complete calls open at once, all clients together; more are\n"
       "refused with RESOURCE_EXHAUSTED.",
       IntKey{&Field<&C::server, &ServerConfig::max_concurrent_streams>, 1, kMi}},
      {"server.max_message_bytes",
       "Largest gRPC message received or sent (a size: 16MiB; at most 2147483647,\n"
       "gRPC's limit).",
       BytesKey{.signed_ref = &Field<&C::server, &ServerConfig::max_message_bytes>,
                .min = 1024,
                .max = INT32_MAX}},
      {"server.drain_timeout",
       "On SIGTERM, how long running requests may finish before they are cancelled\n"
       "(a duration: 500ms, 30s, 2m).",
       DurationKey{&Field<&C::server, &ServerConfig::drain_timeout_ms>}},
  };
}

std::vector<KeySpec> MakeAccessKeys() {
  return {
      {"metrics.listen",
       "Address of the Prometheus /metrics HTTP endpoint (host:port); \"\" turns it off.",
       AddressKey{&Field<&C::metrics, &MetricsSection::listen>, /*allow_empty=*/true}},
      {"openai.listen",
       "Address of the OpenAI-compatible HTTP API (/v1/completions,\n"
       "/v1/chat/completions, /v1/models), host:port; \"\" turns it off. It shares\n"
       "auth.tokens, auth.shared_prefix and the limits with the gRPC service.",
       AddressKey{&Field<&C::openai, &OpenAiSection::listen>, /*allow_empty=*/true}},
      {"openai.threads",
       "Worker threads of the HTTP API; each open request (a stream included) holds\n"
       "one, so this bounds concurrent HTTP requests (more wait for a thread).",
       IntKey{&Field<&C::openai, &OpenAiSection::threads>, 1, 4096}},
      {"auth.tokens",
       "Bearer token -> tenant name. Requests must carry a listed token; the tenant\n"
       "name salts the prefix-cache keys, so tenants never share cached KV. {}: no\n"
       "authentication, one tenant. Example: {\"sk-abc\": \"acme\"}",
       MapKey{&Field<&C::auth, &AuthSection::tokens>}},
      {"auth.admin_token",
       "Bearer token that may read the cache statistics of all tenants together\n"
       "(CacheControl get_stats); other tenants get PERMISSION_DENIED. \"\": with\n"
       "tokens set, nobody may; without, every caller may (there is one tenant).",
       StringKey{&Field<&C::auth, &AuthSection::admin_token>}},
      {"auth.shared_prefix",
       "Text whose cached KV every tenant may share when a prompt starts with it (a\n"
       "common system prompt); \"\": none.",
       StringKey{&Field<&C::auth, &AuthSection::shared_prefix>}},
      {"tls.cert_file",
       "PEM certificate chain; with key_file, the gRPC service speaks TLS. \"\": plain\n"
       "text. Set both or neither.",
       StringKey{&Field<&C::tls, &TlsSection::cert_file>}},
      {"tls.key_file", "PEM private key of cert_file.",
       StringKey{&Field<&C::tls, &TlsSection::key_file>}},
  };
}

std::vector<KeySpec> MakeModelAndEngineKeys() {
  return {
      {"model.path",
       "Model directory (config.json, safetensors, tokenizer); \"\": the embedded\n"
       "default model.",
       StringKey{&Field<&C::model, &ModelSection::path>}},
      {"engine.backend",
       "Execution backend: auto (cuda when a usable GPU is present, else cpu), cpu\n"
       "or cuda.",
       ChoiceKey{&Field<&C::engine, &EngineSection::backend>, {"auto", "cpu", "cuda"}}},
      {"engine.threads", "Worker threads of the cpu backend; 0: all hardware threads.",
       IntKey{&Field<&C::engine, &EngineSection::threads>, 0, 4096}},
      {"engine.precision",
       "GEMM precision: bf16 (bf16 weights and activations, fp32 accumulation,\n"
       "like every peer serves; logits within ~5e-2 of fp32), split (activations\n"
       "as bf16 pairs: ~fp32 accuracy, 2x the prefill GEMM work) or f32 (fp32\n"
       "weights; small models only). With kv_dtype f32, split and f32 are the\n"
       "exact modes.",
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
       "(MemAvailable on cpu) that the arena takes; 0: a 256MiB arena.",
       DoubleKey{&Field<&C::cache, &KvCacheOptions::device_memory_fraction>, 0.0, 1.0}},
      {"cache.host_bytes",
       "Host tier (pinned memory on cuda) for blocks evicted from the device; 0: none.",
       BytesKey{.unsigned_ref = &Field<&C::cache, &KvCacheOptions::host_bytes>}},
      {"cache.disk_path", "RocksDB directory of the disk tier, shared across restarts; \"\": none.",
       StringKey{&Field<&C::cache, &KvCacheOptions::disk_path>}},
      {"cache.disk_bytes", "Size of the disk tier; required when disk_path is set.",
       BytesKey{.unsigned_ref = &Field<&C::cache, &KvCacheOptions::disk_bytes>}},
      {"cache.disk_admit_after_sightings",
       "Write a block evicted to the disk tier only once this many requests have\n"
       "wanted it (counted in a small fixed-size sketch), so one-off prompts cost no\n"
       "disk writes; 1 writes every block.",
       IntKey{&Field<&C::cache, &KvCacheOptions::disk_admit_after_sightings>, 1, 255}},
      {"cache.load_by_cost",
       "Load a cached prefix from the host or disk tier only when the measured read\n"
       "speed of the tier and the measured prefill speed say it is faster than\n"
       "recomputing it (true or false; false always loads).",
       BoolKey{&Field<&C::cache, &KvCacheOptions::load_by_cost>}},
      {"cache.write_behind_blocks_per_step",
       "Copy the cached blocks of finished requests down to the host tier (or the\n"
       "disk tier) ahead of their eviction, at most this many per step, so that\n"
       "evicting them later copies nothing; 0: copy blocks only when evicted.",
       IntKey{&Field<&C::cache, &KvCacheOptions::write_behind_blocks_per_step>, 0, kMi}},
      {"cache.disk_low_priority_writes",
       "Run the disk tier's writes at the lowest CPU priority (nice 19), so that\n"
       "they take only the CPU the engine leaves (true or false).",
       BoolKey{&Field<&C::cache, &KvCacheOptions::disk_low_priority_writes>}},
  };
}

std::vector<KeySpec> MakeSchedulerKeys() {
  using S = SchedulerSection;
  return {
      {"scheduler.max_tokens_per_step", "Tokens computed per step, all sequences together.",
       IntKey{&Field<&C::scheduler, &S::max_tokens_per_step>, 1, 16 * kMi}},
      {"scheduler.max_running", "Sequences in one step.",
       IntKey{&Field<&C::scheduler, &S::max_running>, 1, 65536}},
      {"scheduler.max_waiting",
       "Requests queued before new ones are refused with RESOURCE_EXHAUSTED; 0: no\n"
       "limit.",
       IntKey{&Field<&C::scheduler, &S::max_waiting>, 0, 16 * kMi}},
      {"scheduler.default_max_tokens", "Tokens generated when a request does not say.",
       IntKey{&Field<&C::scheduler, &S::default_max_tokens>, 1, 16 * kMi}},
      {"scheduler.max_prompt_tokens",
       "Longest prompt accepted; 0: the model's context length less one.",
       IntKey{&Field<&C::scheduler, &S::max_prompt_tokens>, 0, 16 * kMi}},
      {"scheduler.policy",
       "Order of admission: cache_aware (longest cached prefix first, bounded by\n"
       "max_queue_delay) or fcfs (arrival order).",
       ChoiceKey{&Field<&C::scheduler, &S::policy>, {"cache_aware", "fcfs"}}},
      {"scheduler.prefix_cache",
       "Reuse the KV of cached prefixes across requests (true or false; false is\n"
       "the no-cache baseline).",
       BoolKey{&Field<&C::scheduler, &S::prefix_cache>}},
      {"scheduler.max_queue_delay",
       "cache_aware: a request that has waited this long is served in arrival order\n"
       "ahead of better cache hits, so none starves (a duration).",
       DurationKey{&Field<&C::scheduler, &S::max_queue_delay_ms>}},
      {"scheduler.session_ttl",
       "How long a session's KV stays pinned after its last turn (a duration).",
       DurationKey{&Field<&C::scheduler, &S::session_ttl_ms>}},
      {"scheduler.preemption",
       "When memory runs out, how a running sequence gives up its blocks: auto (swap\n"
       "to the host tier when that is cheaper than recomputing), swap or recompute.",
       ChoiceKey{&Field<&C::scheduler, &S::preemption>, {"auto", "swap", "recompute"}}},
      {"scheduler.yield_to_new_after_tokens",
       "When the device is full, a request with no token yet may preempt a running\n"
       "decode of its priority that has made this many tokens since it was admitted\n"
       "(needs a host or disk tier, which keeps what the decode gives up): lower time\n"
       "to first token under overload, for slower decodes; 0: off.",
       IntKey{&Field<&C::scheduler, &S::yield_to_new_after_tokens>, 0, 16 * kMi}},
      {"scheduler.blend.enable",
       "CacheBlend for requests whose input is a list of chunks: each chunk's KV is\n"
       "cached on its own and reused wherever the chunk stands, with a fraction of\n"
       "its tokens recomputed (requests may override every blend key).",
       BoolKey{&Field<&C::scheduler, &S::blend_enable>}},
      {"scheduler.blend.recompute_ratio",
       "Fraction of the cached chunk tokens recomputed, those whose KV deviates most:\n"
       "0 reuses all (fastest), 1 recomputes all (a full prefill).",
       DoubleKey{&Field<&C::scheduler, &S::blend_recompute_ratio>, 0.0, 1.0 + 1e-9}},
      {"scheduler.blend.check_layers",
       "Layers where the deviations are measured, ascending; several filter\n"
       "gradually (the kept fraction shrinks from 2 x ratio to the ratio). Layers the\n"
       "model does not have are left out (a 2-layer model checks at layer 1 only).",
       IntListKey{&Field<&C::scheduler, &S::blend_check_layers>, 0, 4096}},
  };
}

std::vector<KeySpec> MakeLoggingKeys() {
  return {
      {"logging.level", "Least severe events logged: debug, info, warning or error.",
       ChoiceKey{&Field<&C::logging, &LoggingSection::level>,
                 {"debug", "info", "warning", "error"}}},
      {"logging.format",
       "One line per event: text (key=value pairs) or json (one object per line).",
       ChoiceKey{&Field<&C::logging, &LoggingSection::format>, {"text", "json"}}},
  };
}

std::vector<KeySpec> MakeKeys() {
  std::vector<KeySpec> keys;
  for (auto part : {MakeServerKeys, MakeAccessKeys, MakeModelAndEngineKeys, MakeCacheKeys,
                    MakeSchedulerKeys, MakeLoggingKeys}) {
    for (KeySpec& key : part()) keys.push_back(std::move(key));
  }
  return keys;
}

}  // namespace

const std::vector<SectionSpec>& Sections() {
  static const auto* const kSections = new std::vector<SectionSpec>{
      {"server", "The gRPC service."},
      {"metrics", "The Prometheus endpoint."},
      {"openai", "The OpenAI-compatible HTTP API."},
      {"auth", "Who may call, and which tenant each caller is."},
      {"tls", "Transport security of the gRPC service."},
      {"model", "Which model to serve."},
      {"engine", "How the forward pass runs."},
      {"cache", "The KV cache: the device arena and the host and disk tiers below it."},
      {"scheduler", "Batching and admission."},
      {"logging", "The structured log on stderr."},
  };
  return *kSections;
}

const std::vector<KeySpec>& Keys() {
  static const auto* const kKeys = new std::vector<KeySpec>(MakeKeys());
  return *kKeys;
}

const std::map<std::string_view, std::string_view>& RenamedKeys() {
  static const auto* const kRenamed = new std::map<std::string_view, std::string_view>{
      {"server.grpc_listen", "server.listen"},
      {"server.metrics_listen", "metrics.listen"},
      {"server.api_keys", "auth.tokens"},
      {"scheduler.max_batch_tokens", "scheduler.max_tokens_per_step"},
  };
  return *kRenamed;
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
    std::string operator()(const MapKey&) const { return "a mapping"; }
    std::string operator()(const BoolKey&) const { return "true or false"; }
    std::string operator()(const IntListKey&) const { return "a list of integers"; }
  };
  return std::visit(Visitor{}, key.kind);
}

}  // namespace strata::server::config_internal
