// LoadConfig, ApplyOverride and DumpConfig, and the files in configs/.
#include "server/config/daemon_config.h"

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cache/kv_cache_options.h"
#include "engine/backend.h"
#include "engine/sampling/sampling_params.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "tests/common/files.h"
#include "tests/common/temp_dir.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;

namespace fs = std::filesystem;

// Writes `text` to `name` in a directory private to this process: ctest runs
// tests as parallel processes, and a shared /tmp/name would be overwritten.
std::string WriteTemp(const std::string& name, const std::string& text) {
  static strata::testing::TempDir dir;  // removed at exit
  const fs::path path = dir.path() / name;
  std::ofstream(path) << text;
  return path.string();
}

using strata::testing::ReadFile;

// The message of a config that must fail to load with INVALID_ARGUMENT.
std::string LoadError(const std::string& yaml) {
  const std::string path = WriteTemp("bad.yaml", yaml);
  absl::StatusOr<DaemonConfig> config = LoadConfig(path);
  EXPECT_FALSE(config.ok()) << yaml;
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  std::string message(config.status().message());
  // Every message starts with the file name.
  EXPECT_EQ(message.rfind(path, 0), 0u) << message;
  return message.substr(path.size());
}

TEST(DaemonConfigTest, DefaultsMatchTheCode) {
  const DaemonConfig config;
  EXPECT_EQ(config.server.listen, "127.0.0.1:50051");
  EXPECT_EQ(config.server.max_concurrent_streams, 1024);
  EXPECT_EQ(config.server.max_message_bytes, 16 << 20);
  EXPECT_EQ(config.server.drain_timeout_ms, 30000);
  EXPECT_EQ(config.metrics.listen, "127.0.0.1:9400");
  EXPECT_TRUE(config.auth.tokens.empty());
  EXPECT_EQ(config.auth.shared_prefix, "");
  EXPECT_EQ(config.tls.cert_file, "");
  EXPECT_EQ(config.tls.key_file, "");
  EXPECT_EQ(config.model.path, "");
  EXPECT_EQ(config.engine.backend, "auto");
  EXPECT_EQ(config.engine.threads, engine::BackendOptions{}.threads);
  EXPECT_EQ(config.engine.precision, "bf16");  // serving; the engine API's default stays split
  EXPECT_EQ(engine::BackendOptions{}.precision, engine::Precision::kBf16Split);
  EXPECT_EQ(config.engine.kv_dtype, "bf16");
  EXPECT_EQ(engine::BackendOptions{}.kv_dtype, engine::DType::kBF16);
  EXPECT_EQ(config.cache.block_size, cache::KvCacheOptions{}.block_size);
  EXPECT_EQ(config.cache.host_bytes, 0u);
  // The scheduler's own defaults, where the daemon keeps them.
  const scheduler::SchedulerOptions scheduler_defaults;
  EXPECT_EQ(config.scheduler.max_tokens_per_step, scheduler_defaults.max_batch_tokens);
  EXPECT_EQ(config.scheduler.max_running, scheduler_defaults.max_running);
  EXPECT_EQ(scheduler_defaults.policy, scheduler::SchedulingPolicy::kCacheAware);
  EXPECT_EQ(config.scheduler.policy, "cache_aware");
  EXPECT_EQ(config.scheduler.prefix_cache, scheduler_defaults.enable_prefix_cache);
  EXPECT_EQ(
      config.scheduler.max_queue_delay_ms,
      std::chrono::duration_cast<std::chrono::milliseconds>(scheduler_defaults.max_queue_delay)
          .count());
  EXPECT_EQ(config.scheduler.session_ttl_ms,
            std::chrono::duration_cast<std::chrono::milliseconds>(scheduler_defaults.session_ttl)
                .count());
  EXPECT_EQ(scheduler_defaults.preemption, scheduler::PreemptionMode::kAuto);
  EXPECT_EQ(config.scheduler.preemption, "auto");
  // The daemon bounds the queue and answers longer than a bare SamplingParams.
  EXPECT_EQ(config.scheduler.max_waiting, 1024);
  EXPECT_EQ(config.scheduler.default_max_tokens, 256);
  EXPECT_EQ(config.scheduler.max_prompt_tokens, 0);
  EXPECT_EQ(config.logging.level, "info");
  EXPECT_EQ(config.logging.format, "text");
  EXPECT_TRUE(ValidateDaemonConfig(config).ok());
}

TEST(DaemonConfigTest, EmptyFileGivesDefaults) {
  absl::StatusOr<DaemonConfig> config = LoadConfig(WriteTemp("empty.yaml", ""));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(DumpConfig(*config), DumpConfig(DaemonConfig{}));
}

TEST(DaemonConfigTest, ParsesEverySection) {
  absl::StatusOr<DaemonConfig> config = LoadConfig(WriteTemp("full.yaml", R"(
server:
  listen: 0.0.0.0:8000
  max_concurrent_streams: 10
  max_message_bytes: 64MiB
  drain_timeout: 2m
metrics:
  listen: ""
auth:
  tokens:
    sk-one: acme
    sk-two: globex
  shared_prefix: "You are a helpful assistant.\n"
tls:
  cert_file: /etc/strata/cert.pem
  key_file: /etc/strata/key.pem
model:
  path: /models/qwen
engine:
  backend: cuda
  threads: 8
  precision: bf16
  kv_dtype: f32
cache:
  block_size: 32
  device_bytes: 4GiB
  host_bytes: 512MiB
  disk_path: /var/cache/strata
  disk_bytes: 1GB
scheduler:
  max_tokens_per_step: 2048
  max_running: 128
  max_waiting: 1000
  default_max_tokens: 200
  max_prompt_tokens: 4096
  policy: fcfs
  prefix_cache: false
  max_queue_delay: 500ms
  session_ttl: 10m
  preemption: recompute
logging:
  level: debug
  format: json
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.listen, "0.0.0.0:8000");
  EXPECT_EQ(config->server.max_concurrent_streams, 10);
  EXPECT_EQ(config->server.max_message_bytes, 64 << 20);
  EXPECT_EQ(config->server.drain_timeout_ms, 120000);
  EXPECT_EQ(config->metrics.listen, "");
  EXPECT_EQ(config->auth.tokens.size(), 2u);
  EXPECT_EQ(config->auth.tokens.at("sk-one"), "acme");
  EXPECT_EQ(config->auth.tokens.at("sk-two"), "globex");
  EXPECT_EQ(config->auth.shared_prefix, "You are a helpful assistant.\n");
  EXPECT_EQ(config->tls.cert_file, "/etc/strata/cert.pem");
  EXPECT_EQ(config->tls.key_file, "/etc/strata/key.pem");
  EXPECT_EQ(config->model.path, "/models/qwen");
  EXPECT_EQ(config->engine.backend, "cuda");
  EXPECT_EQ(config->engine.threads, 8);
  EXPECT_EQ(config->engine.precision, "bf16");
  EXPECT_EQ(config->engine.kv_dtype, "f32");
  EXPECT_EQ(config->cache.block_size, 32);
  EXPECT_EQ(config->cache.device_bytes, int64_t{4} << 30);
  EXPECT_EQ(config->cache.host_bytes, uint64_t{512} << 20);
  EXPECT_EQ(config->cache.disk_path, "/var/cache/strata");
  EXPECT_EQ(config->cache.disk_bytes, 1000000000u);
  EXPECT_EQ(config->scheduler.max_tokens_per_step, 2048);
  EXPECT_EQ(config->scheduler.max_running, 128);
  EXPECT_EQ(config->scheduler.max_waiting, 1000);
  EXPECT_EQ(config->scheduler.default_max_tokens, 200);
  EXPECT_EQ(config->scheduler.max_prompt_tokens, 4096);
  EXPECT_EQ(config->scheduler.policy, "fcfs");
  EXPECT_FALSE(config->scheduler.prefix_cache);
  EXPECT_EQ(config->scheduler.max_queue_delay_ms, 500);
  EXPECT_EQ(config->scheduler.session_ttl_ms, 600000);
  EXPECT_EQ(config->scheduler.preemption, "recompute");
  EXPECT_EQ(config->logging.level, "debug");
  EXPECT_EQ(config->logging.format, "json");

  // DumpConfig writes it back exactly.
  absl::StatusOr<DaemonConfig> again = ParseConfig(DumpConfig(*config), "dump");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(DumpConfig(*again), DumpConfig(*config));
}

TEST(DaemonConfigTest, MissingFileIsNotFound) {
  absl::StatusOr<DaemonConfig> config = LoadConfig("/nonexistent/strata.yaml");
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("/nonexistent/strata.yaml"));
}

TEST(DaemonConfigTest, UnknownKeyNamesLineAndSuggests) {
  EXPECT_EQ(LoadError("cache:\n  block_size: 16\n  hostbytes: 1GiB\n"),
            ":3: unknown key 'cache.hostbytes' (did you mean 'cache.host_bytes'?)");
  EXPECT_EQ(LoadError("\nservr:\n  listen: a:1\n"),
            ":2: unknown key 'servr' (did you mean 'server'?)");
  EXPECT_EQ(LoadError("cache:\n  zzzzzzzzzz: 1\n"), ":2: unknown key 'cache.zzzzzzzzzz'");
  EXPECT_EQ(LoadError("scheduler:\n  polcy: fcfs\n"),
            ":2: unknown key 'scheduler.polcy' (did you mean 'scheduler.policy'?)");
  EXPECT_EQ(LoadError("metric:\n  listen: a:1\n"),
            ":1: unknown key 'metric' (did you mean 'metrics'?)");
}

// Keys of the layout before issue 6 point at their new names.
TEST(DaemonConfigTest, RenamedKeysSuggestTheirNewNames) {
  EXPECT_EQ(LoadError("server:\n  grpc_listen: a:1\n"),
            ":2: unknown key 'server.grpc_listen' (did you mean 'server.listen'? the key was "
            "renamed)");
  EXPECT_EQ(LoadError("server:\n  metrics_listen: a:2\n"),
            ":2: unknown key 'server.metrics_listen' (did you mean 'metrics.listen'? the key "
            "was renamed)");
  EXPECT_EQ(LoadError("server:\n\n  api_keys: {}\n"),
            ":3: unknown key 'server.api_keys' (did you mean 'auth.tokens'? the key was renamed)");
  EXPECT_EQ(LoadError("scheduler:\n  max_batch_tokens: 8\n"),
            ":2: unknown key 'scheduler.max_batch_tokens' (did you mean "
            "'scheduler.max_tokens_per_step'? the key was renamed)");
  DaemonConfig config;
  EXPECT_EQ(ApplyOverride(config, "server.api_keys={a: b}").message(),
            "--set server.api_keys={a: b}: unknown key 'server.api_keys' (did you mean "
            "'auth.tokens'? the key was renamed)");
}

TEST(DaemonConfigTest, WrongTypeNamesLineAndKey) {
  EXPECT_EQ(LoadError("scheduler:\n  max_running: [1, 2]\n"),
            ":2: scheduler.max_running: wrong type: expected an integer, got a sequence");
  EXPECT_EQ(LoadError("scheduler:\n\n  max_running: lots\n"),
            ":3: scheduler.max_running: expected an integer, got 'lots'");
  EXPECT_EQ(LoadError("cache: 5\n"),
            ":1: wrong type for 'cache': expected a mapping, got a scalar");
  EXPECT_EQ(LoadError("auth:\n  tokens: sk-1\n"),
            ":2: auth.tokens: wrong type: expected a mapping, got a scalar");
  EXPECT_EQ(LoadError("auth:\n  tokens:\n    sk-1: [a, b]\n"),
            ":2: auth.tokens: wrong type: expected string: string entries");
  EXPECT_EQ(LoadError("scheduler:\n  prefix_cache: {a: 1}\n"),
            ":2: scheduler.prefix_cache: wrong type: expected true or false, got a mapping");
  EXPECT_EQ(LoadError("server:\n  max_message_bytes: [1]\n"),
            ":2: server.max_message_bytes: wrong type: expected a byte size, got a sequence");
  EXPECT_THAT(LoadError("- a\n- b\n"), HasSubstr("expected a mapping of sections"));
  EXPECT_EQ(LoadError("engine:\n  threads:\n"),
            ":2: engine.threads: wrong type: expected an integer, got nothing");
}

TEST(DaemonConfigTest, OutOfRangeAndBadChoices) {
  EXPECT_EQ(LoadError("cache:\n  block_size: 0\n"),
            ":2: cache.block_size: value 0 is out of range [1, 4096]");
  EXPECT_EQ(LoadError("cache:\n  device_memory_fraction: 1.5\n"),
            ":2: cache.device_memory_fraction: value 1.5 is out of range [0, 1)");
  EXPECT_EQ(LoadError("scheduler:\n  yield_to_new_after_tokens: -1\n"),
            ":2: scheduler.yield_to_new_after_tokens: value -1 is out of range [0, 16777216]");
  EXPECT_EQ(LoadError("cache:\n  write_behind_blocks_per_step: -1\n"),
            ":2: cache.write_behind_blocks_per_step: value -1 is out of range [0, 1048576]");
  EXPECT_EQ(LoadError("cache:\n  disk_low_priority_writes: sometimes\n"),
            ":2: cache.disk_low_priority_writes: expected true or false, got 'sometimes'");
  EXPECT_EQ(LoadError("engine:\n  precision: fp8\n"),
            ":2: engine.precision: 'fp8' is not one of split, bf16, f32");
  EXPECT_THAT(LoadError("server:\n  listen: localhost:99999\n"),
              HasSubstr(":2: server.listen: bad port in 'localhost:99999'"));
  EXPECT_EQ(LoadError("metrics:\n  listen: nohost\n"),
            ":2: metrics.listen: expected host:port, got 'nohost'");
  EXPECT_EQ(LoadError("engine:\n  backend: tpu\n"),
            ":2: engine.backend: 'tpu' is not one of auto, cpu, cuda");
  // cache.eviction was removed (nothing read it): an old config names it.
  EXPECT_THAT(LoadError("cache:\n  eviction: lru\n"),
              HasSubstr(":2: unknown key 'cache.eviction'"));
}

TEST(DaemonConfigTest, BadSizesAndDurations) {
  EXPECT_EQ(LoadError("cache:\n  host_bytes: 4XB\n"),
            ":2: cache.host_bytes: bad size '4XB': unknown unit 'XB' (use B, KB, MB, GB, TB, "
            "KiB, MiB, GiB, TiB)");
  EXPECT_THAT(LoadError("server:\n  drain_timeout: soon\n"),
              HasSubstr(":2: server.drain_timeout: bad duration 'soon'"));
}

TEST(DaemonConfigTest, MalformedYamlNamesLine) {
  EXPECT_THAT(LoadError("cache:\n  block_size: 16\n  host_bytes: [1\n"),
              HasSubstr("malformed YAML"));
  const std::string message = LoadError("server:\n  listen: a:1\n - b\n");
  EXPECT_THAT(message, HasSubstr("malformed YAML"));
  EXPECT_EQ(message.rfind(":3:", 0), 0u) << message;
}

TEST(DaemonConfigTest, DuplicateKeysAreRejected) {
  EXPECT_EQ(LoadError("cache:\n  block_size: 16\n  block_size: 32\n"),
            ":3: duplicate key 'cache.block_size'");
}

TEST(DaemonConfigTest, CrossFieldRulesNameTheKeyLine) {
  EXPECT_EQ(LoadError("cache:\n  block_size: 16\n  disk_path: /tmp/kv\n"),
            ":3: cache.disk_path is set but cache.disk_bytes is 0: give the disk tier a size");
  EXPECT_THAT(LoadError("cache:\n  disk_bytes: 1GiB\n"),
              HasSubstr(":2: cache.disk_bytes is set but cache.disk_path is empty"));
  EXPECT_THAT(LoadError("cache:\n  device_bytes: 1GiB\n  device_memory_fraction: 0.5\n"),
              HasSubstr(":3: cache.device_bytes and cache.device_memory_fraction"));
}

TEST(ApplyOverrideTest, SetsDottedKeys) {
  DaemonConfig config;
  ASSERT_TRUE(ApplyOverride(config, "cache.host_bytes=2GiB").ok());
  ASSERT_TRUE(ApplyOverride(config, "server.listen=0.0.0.0:8000").ok());
  ASSERT_TRUE(ApplyOverride(config, " engine.backend = cuda ").ok());
  ASSERT_TRUE(ApplyOverride(config, "server.drain_timeout=5s").ok());
  ASSERT_TRUE(ApplyOverride(config, "server.max_message_bytes=4MiB").ok());
  ASSERT_TRUE(ApplyOverride(config, "metrics.listen=").ok());
  ASSERT_TRUE(ApplyOverride(config, "auth.tokens={sk-1: acme}").ok());
  ASSERT_TRUE(ApplyOverride(config, "auth.shared_prefix='System: be brief.'").ok());
  ASSERT_TRUE(ApplyOverride(config, "tls.cert_file=/c.pem").ok());
  ASSERT_TRUE(ApplyOverride(config, "tls.key_file=/k.pem").ok());
  ASSERT_TRUE(ApplyOverride(config, "scheduler.prefix_cache=false").ok());
  ASSERT_TRUE(ApplyOverride(config, "scheduler.max_queue_delay=250ms").ok());
  ASSERT_TRUE(ApplyOverride(config, "scheduler.session_ttl=1h").ok());
  ASSERT_TRUE(ApplyOverride(config, "scheduler.preemption=swap").ok());
  ASSERT_TRUE(ApplyOverride(config, "scheduler.policy=fcfs").ok());
  ASSERT_TRUE(ApplyOverride(config, "logging.format=json").ok());
  ASSERT_TRUE(ApplyOverride(config, "cache.disk_path=\"/data/kv cache\"").ok());
  EXPECT_EQ(config.cache.host_bytes, uint64_t{2} << 30);
  EXPECT_EQ(config.server.listen, "0.0.0.0:8000");
  EXPECT_EQ(config.engine.backend, "cuda");
  EXPECT_EQ(config.server.drain_timeout_ms, 5000);
  EXPECT_EQ(config.server.max_message_bytes, 4 << 20);
  EXPECT_EQ(config.metrics.listen, "");
  EXPECT_EQ(config.auth.tokens.at("sk-1"), "acme");
  EXPECT_EQ(config.auth.shared_prefix, "System: be brief.");
  EXPECT_EQ(config.tls.cert_file, "/c.pem");
  EXPECT_EQ(config.tls.key_file, "/k.pem");
  EXPECT_FALSE(config.scheduler.prefix_cache);
  EXPECT_EQ(config.scheduler.max_queue_delay_ms, 250);
  EXPECT_EQ(config.scheduler.session_ttl_ms, 3600000);
  EXPECT_EQ(config.scheduler.preemption, "swap");
  EXPECT_EQ(config.scheduler.policy, "fcfs");
  EXPECT_EQ(config.logging.format, "json");
  EXPECT_EQ(config.cache.disk_path, "/data/kv cache");
  // An empty value clears a string.
  ASSERT_TRUE(ApplyOverride(config, "cache.disk_path=").ok());
  EXPECT_EQ(config.cache.disk_path, "");
}

TEST(ApplyOverrideTest, ErrorsNameTheOverrideAndLeaveConfigUnchanged) {
  DaemonConfig config;
  const std::string before = DumpConfig(config);
  absl::Status status = ApplyOverride(config, "cache.hostbytes=2GiB");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "--set cache.hostbytes=2GiB: unknown key 'cache.hostbytes' (did you mean "
            "'cache.host_bytes'?)");
  EXPECT_EQ(ApplyOverride(config, "cache.host_bytes=2XB").message(),
            "--set cache.host_bytes=2XB: cache.host_bytes: bad size '2XB': unknown unit 'XB' "
            "(use B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)");
  EXPECT_EQ(ApplyOverride(config, "cache.host_bytes").message(),
            "--set cache.host_bytes: expected key=value");
  EXPECT_THAT(ApplyOverride(config, "scheduler.max_running=[").message(),
              HasSubstr("--set scheduler.max_running=[: malformed value"));
  EXPECT_EQ(ApplyOverride(config, "scheduler.prefix_cache=maybe").message(),
            "--set scheduler.prefix_cache=maybe: scheduler.prefix_cache: expected true or false, "
            "got 'maybe'");
  EXPECT_EQ(ApplyOverride(config, "logging.format=xml").message(),
            "--set logging.format=xml: logging.format: 'xml' is not one of text, json");
  EXPECT_EQ(DumpConfig(config), before);
}

TEST(ApplyOverrideTest, LoadConfigWithOverridesValidatesTheResult) {
  const std::string path = WriteTemp("tiers.yaml", "cache:\n  host_bytes: 1GiB\n");
  absl::StatusOr<DaemonConfig> config =
      LoadConfigWithOverrides(path, {"cache.disk_path=/tmp/kv", "cache.disk_bytes=8GiB"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cache.disk_bytes, uint64_t{8} << 30);
  EXPECT_EQ(config->cache.host_bytes, uint64_t{1} << 30);
  EXPECT_THAT(LoadConfigWithOverrides(path, {"cache.disk_path=/tmp/kv"}).status().message(),
              HasSubstr("cache.disk_bytes is 0"));
  // Cross-field rules wait for the last override: the pair may come in two.
  EXPECT_TRUE(LoadConfigWithOverrides(path, {"tls.cert_file=/c.pem", "tls.key_file=/k.pem"}).ok());
  absl::StatusOr<DaemonConfig> half = LoadConfigWithOverrides(path, {"tls.key_file=/k.pem"});
  EXPECT_EQ(half.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(half.status().message(), HasSubstr("tls.cert_file is empty"));
}

// Overrides apply before the cross-field rules: a file that breaks one is
// fine when an override repairs it, and a violation an override causes names
// that override.
TEST(ApplyOverrideTest, OverridesApplyBeforeTheFileIsValidated) {
  const std::string path =
      WriteTemp("half_disk.yaml", "cache:\n  disk_path: /tmp/kv\n  host_bytes: 1GiB\n");
  EXPECT_THAT(LoadConfig(path).status().message(), HasSubstr("half_disk.yaml:2: "));
  absl::StatusOr<DaemonConfig> fixed = LoadConfigWithOverrides(path, {"cache.disk_bytes=8GiB"});
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(fixed->cache.disk_bytes, uint64_t{8} << 30);
  // Overriding the file's value away is as good as never having set it.
  EXPECT_TRUE(LoadConfigWithOverrides(path, {"cache.disk_path="}).ok());
  absl::StatusOr<DaemonConfig> broken = LoadConfigWithOverrides(
      WriteTemp("plain.yaml", "cache:\n  host_bytes: 1GiB\n"), {"tls.key_file=/k.pem"});
  EXPECT_THAT(broken.status().message(), HasSubstr("--set tls.key_file=/k.pem: "));
}

TEST(ValidateDaemonConfigTest, AdminTokenIsABearerTokenOfItsOwn) {
  EXPECT_TRUE(ParseConfig("auth:\n  admin_token: root-token\n", "a.yaml").ok());
  EXPECT_EQ(ParseConfig("auth:\n  admin_token: \"ro ot\"\n", "a.yaml").status().message(),
            "a.yaml:2: auth.admin_token: contains whitespace, which a bearer token cannot carry");
  EXPECT_THAT(ParseConfig("auth:\n  tokens: {same: alice}\n  admin_token: same\n", "a.yaml")
                  .status()
                  .message(),
              HasSubstr("a.yaml:3: auth.admin_token: is also a tenant's token"));
}

TEST(DumpConfigTest, EveryKeyHasAComment) {
  const std::string dump = DumpConfig(DaemonConfig{});
  std::istringstream lines(dump);
  std::string line;
  std::string previous;
  int keys = 0;
  while (std::getline(lines, line)) {
    // A key is an indented "name: value" line; a nested section's "name:"
    // opens a mapping (scheduler.blend) and is not one.
    const size_t indent = line.find_first_not_of(' ');
    if (indent >= 2 && indent != std::string::npos && line[indent] != '#' && line.back() != ':') {
      ++keys;
      EXPECT_EQ(previous.find_first_not_of(' '), indent) << line;
      EXPECT_EQ(previous.compare(indent, 2, "# "), 0) << line;
    }
    previous = line;
  }
  EXPECT_EQ(keys, 43);
}

// The first line where two texts differ, for the drift message.
std::string FirstDifference(const std::string& a, const std::string& b) {
  std::istringstream in_a(a);
  std::istringstream in_b(b);
  std::string line_a;
  std::string line_b;
  for (int line = 1;; ++line) {
    const bool more_a = static_cast<bool>(std::getline(in_a, line_a));
    const bool more_b = static_cast<bool>(std::getline(in_b, line_b));
    if (!more_a && !more_b) return "none (they differ in the final newline)";
    if (!more_a || !more_b || line_a != line_b) {
      return "line " + std::to_string(line) + ": file has '" + (more_a ? line_a : "<end>") +
             "', the key table gives '" + (more_b ? line_b : "<end>") + "'";
    }
  }
}

// configs/default.yaml is generated: on a mismatch, the expected text is
// written to a fresh directory that is kept (TempDir would remove it when
// the test exits) so that it can be copied over the file.
TEST(ConfigFilesTest, DefaultYamlEqualsDumpConfig) {
  const fs::path path = fs::path(STRATA_SOURCE_DIR) / "configs" / "default.yaml";
  const std::string expected = DumpConfig(DaemonConfig{});
  const std::string actual = ReadFile(path);
  if (actual != expected) {
    std::string dir = (fs::temp_directory_path() / "strata_default_yaml_XXXXXX").string();
    ASSERT_NE(mkdtemp(dir.data()), nullptr) << dir;
    const fs::path fresh = fs::path(dir) / "default.yaml";
    std::ofstream(fresh) << expected;
    ADD_FAILURE() << path << " is out of date with the key table (first difference: "
                  << FirstDifference(actual, expected) << "); regenerate it: cp " << fresh << " "
                  << path;
  }
}

TEST(ConfigFilesTest, EveryShippedConfigLoads) {
  int loaded = 0;
  for (const char* dir : {"configs", "configs/examples"}) {
    for (const fs::directory_entry& entry :
         fs::directory_iterator(fs::path(STRATA_SOURCE_DIR) / dir)) {
      if (entry.path().extension() != ".yaml") continue;
      absl::StatusOr<DaemonConfig> config = LoadConfig(entry.path().string());
      EXPECT_TRUE(config.ok()) << config.status();
      ++loaded;
    }
  }
  EXPECT_GE(loaded, 2);
}

}  // namespace
}  // namespace strata::server
