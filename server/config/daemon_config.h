// The daemon's configuration: one YAML file (configs/default.yaml documents
// every key) plus `--set key=value` overrides on the command line. There are
// no environment-variable switches.
//
// Every key lives in one table (daemon_config.cc) that the YAML loader, the
// overrides and DumpConfig all read, so the generated configs/default.yaml
// cannot drift from the code (a test compares them).
//
// The structs are plain values: copy them freely; they are not synchronized,
// so share one only read-only between threads. Each section maps onto the
// options of the part it configures (the cache section *is*
// cache::KvCacheOptions); the engine section keeps names as strings because
// this library does not link the engine, and the daemon maps them onto
// engine::BackendOptions.
#ifndef STRATA_SERVER_CONFIG_DAEMON_CONFIG_H_
#define STRATA_SERVER_CONFIG_DAEMON_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "cache/kv_cache_options.h"

namespace strata::server {

struct ServerConfig {
  std::string listen = "127.0.0.1:50051";  // server.listen: gRPC host:port
  int64_t max_concurrent_streams = 1024;   // open Generate/Complete calls, all clients
  int64_t max_message_bytes = 16 << 20;    // largest gRPC message received or sent
  int64_t drain_timeout_ms = 30000;        // graceful drain on SIGTERM before cancelling
};

struct MetricsSection {
  std::string listen = "127.0.0.1:9400";  // metrics.listen: /metrics host:port; empty: off
};

struct OpenAiSection {
  std::string listen;    // openai.listen: OpenAI-compatible HTTP host:port; empty: off
  int64_t threads = 16;  // openai.threads: HTTP worker threads (concurrent HTTP requests)
};

struct AuthSection {
  // auth.tokens: bearer token -> tenant name. The tenant salts the
  // prefix-cache keys, so tenants never share cached KV. Empty: no
  // authentication, one tenant.
  std::map<std::string, std::string> tokens;
  // auth.admin_token: the bearer token that may read the global cache
  // statistics (CacheControl get_stats). Empty: with tokens set, nobody may;
  // without, every caller may (there is one tenant).
  std::string admin_token;
  // auth.shared_prefix: text whose cached KV every tenant may share when a
  // prompt starts with it (a common system prompt). Empty: none.
  std::string shared_prefix;
};

struct TlsSection {
  std::string cert_file;  // tls.cert_file: PEM; with key_file, serves TLS
  std::string key_file;   // tls.key_file: PEM
};

struct ModelSection {
  std::string path;  // model directory; empty: the embedded default model
};

struct EngineSection {
  std::string backend = "auto";     // "auto" (CUDA when usable, else CPU), "cpu" or "cuda"
  int64_t threads = 0;              // 0: all hardware threads
  std::string precision = "bf16";   // "split" (kBf16Split), "bf16", "f32"
  std::string kv_dtype = "bf16";    // "bf16" or "f32"
};

// The daemon's scheduler.yield_to_new_after_tokens. In `strata bench
// scheduler --workloads sessions` (128-token answers) it trades p99 TTFT
// against p99 end-to-end latency: 16 cut TTFT p99 ~16x for e2e p99 +38%, 64
// ~5x for +17%, 96 ~3.4x for +6%. 64: a decode writes a paragraph before it
// gives way.
inline constexpr int64_t kDaemonYieldToNewAfterTokens = 64;

struct SchedulerSection {
  int64_t max_tokens_per_step = 512;   // tokens computed per step, all sequences
  int64_t max_running = 64;            // sequences in one step
  int64_t max_waiting = 1024;          // queued requests before RESOURCE_EXHAUSTED; 0: no limit
  int64_t default_max_tokens = 256;    // when a request leaves max_tokens unset
  int64_t max_prompt_tokens = 0;       // 0: the model's context length less one
  std::string policy = "cache_aware";  // "cache_aware" or "fcfs"
  bool prefix_cache = true;            // reuse cached prefixes across requests
  int64_t max_queue_delay_ms = 2000;   // cache_aware: ageing bound of the reordering
  int64_t session_ttl_ms = 300000;     // a session's KV stays pinned this long after a turn
  std::string preemption = "auto";     // "auto", "swap" or "recompute"
  // Decodes give way to requests with no token yet after this many tokens.
  int64_t yield_to_new_after_tokens = kDaemonYieldToNewAfterTokens;
  // CacheBlend defaults (scheduler.blend.*); requests may override them.
  bool blend_enable = true;
  double blend_recompute_ratio = 0.15;
  std::vector<int64_t> blend_check_layers{1, 2, 3};
};

struct LoggingSection {
  std::string level = "info";   // "debug", "info", "warning" or "error"
  std::string format = "text";  // "text" (key=value) or "json", one line per event
};

// The daemon's cache.write_behind_blocks_per_step: on a 110M model (576 KiB
// blocks) 32 copies take ~1.5 ms, a few percent of a batched decode step.
inline constexpr int64_t kDaemonWriteBehindBlocksPerStep = 32;
// The daemon's cache.disk_low_priority_writes (the serving benchmarks use it
// too).
inline constexpr bool kDaemonDiskLowPriorityWrites = true;

struct DaemonConfig {
  ServerConfig server;
  MetricsSection metrics;
  OpenAiSection openai;
  AuthSection auth;
  TlsSection tls;
  ModelSection model;
  EngineSection engine;
  // The daemon writes to disk only blocks wanted twice and loads a prefix
  // only when that beats recomputing it; the library's defaults
  // (KvCacheOptions) keep the earlier behaviour: write every block, always
  // load.
  cache::KvCacheOptions cache = [] {
    cache::KvCacheOptions options;
    options.disk_admit_after_sightings = 2;
    options.load_by_cost = true;
    options.write_behind_blocks_per_step = kDaemonWriteBehindBlocksPerStep;
    options.disk_low_priority_writes = kDaemonDiskLowPriorityWrites;
    return options;
  }();
  SchedulerSection scheduler;
  LoggingSection logging;
};

// Reads and validates the YAML file at `path`; keys left out keep their
// defaults. NOT_FOUND naming the file if it does not exist; INVALID_ARGUMENT
// as "path:line: message" naming the key for malformed YAML, an unknown key
// (with a suggestion), a wrong type, an out-of-range value or a bad size or
// duration, and for cross-field rules (ValidateDaemonConfig).
absl::StatusOr<DaemonConfig> LoadConfig(const std::string& path);

// The same from YAML text; `name` stands for the file in messages.
absl::StatusOr<DaemonConfig> ParseConfig(std::string_view yaml, std::string_view name);

// Applies one `--set key=value` override with a dotted key
// ("cache.host_bytes=2GiB"); values are written as in YAML. INVALID_ARGUMENT
// naming the override for a missing '=', an unknown key or a bad value;
// `config` is unchanged then. Cross-field rules are not checked here, since
// several overrides may be needed to reach a valid config: call
// ValidateDaemonConfig after the last one.
absl::Status ApplyOverride(DaemonConfig& config, std::string_view assignment);

// The file's keys (each checked alone), then each override in order, then
// the cross-field rules on the result: the file alone need not satisfy them,
// since an override may complete or fix it. A violation names the last
// override that set one of its keys, else the file's line.
absl::StatusOr<DaemonConfig> LoadConfigWithOverrides(const std::string& path,
                                                     absl::Span<const std::string> overrides);

// Cross-field rules: a disk tier needs both cache.disk_path and
// cache.disk_bytes; cache.device_bytes and cache.device_memory_fraction
// exclude each other; metrics.listen and server.listen are different sockets
// (the same non-zero port on the same host, or on a wildcard host, clash);
// tokens and tenant names are non-empty and tokens hold no whitespace;
// tls.cert_file and tls.key_file come together; plus
// cache::ValidateKvCacheOptions.
// INVALID_ARGUMENT naming the key (LoadConfig adds the line of the key the
// file sets, else of its section).
absl::Status ValidateDaemonConfig(const DaemonConfig& config);

// YAML with every key, each preceded by a comment saying what it does.
// DumpConfig(DaemonConfig{}) is configs/default.yaml, and ParseConfig of the
// output gives back `config`.
std::string DumpConfig(const DaemonConfig& config);

// "4GiB", "512MiB", "1GB", "1.5KiB", "4096", "0": bytes. Units are B, KB, MB,
// GB, TB (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024), any case.
// INVALID_ARGUMENT for anything else, a fraction of a byte, or overflow.
absl::StatusOr<uint64_t> ParseByteSize(std::string_view text);

// Bytes in the largest binary unit that divides them exactly ("4GiB", "100").
std::string FormatByteSize(uint64_t bytes);

// "30s", "500ms", "2m", "1h", or a plain number of seconds: milliseconds.
// INVALID_ARGUMENT for a negative, fractional-millisecond or malformed value.
absl::StatusOr<int64_t> ParseDurationMs(std::string_view text);

// Milliseconds in the largest unit that divides them exactly: "5m", "30s",
// "1500ms" ("0s" for zero).
std::string FormatDurationMs(int64_t ms);

}  // namespace strata::server

#endif  // STRATA_SERVER_CONFIG_DAEMON_CONFIG_H_
