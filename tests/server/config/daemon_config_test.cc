// LoadConfig, ApplyOverride and DumpConfig, and the files in configs/.
#include "server/config/daemon_config.h"

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
#include "tests/common/files.h"
#include "tests/common/temp_dir.h"
#include "scheduler/scheduler.h"

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
  EXPECT_EQ(config.server.grpc_listen, "127.0.0.1:50051");
  EXPECT_EQ(config.server.metrics_listen, "127.0.0.1:9400");
  EXPECT_EQ(config.server.drain_timeout_ms, 30000);
  EXPECT_TRUE(config.server.api_keys.empty());
  EXPECT_EQ(config.model.path, "");
  EXPECT_EQ(config.engine.backend, "cpu");
  EXPECT_EQ(config.engine.threads, engine::BackendOptions{}.threads);
  EXPECT_EQ(config.engine.precision, "split");
  EXPECT_EQ(engine::BackendOptions{}.precision, engine::Precision::kBf16Split);
  EXPECT_EQ(config.engine.kv_dtype, "bf16");
  EXPECT_EQ(engine::BackendOptions{}.kv_dtype, engine::DType::kBF16);
  EXPECT_EQ(config.cache.block_size, cache::KvCacheOptions{}.block_size);
  EXPECT_EQ(config.cache.host_bytes, 0u);
  const scheduler::SchedulerOptions scheduler_defaults;
  EXPECT_EQ(config.scheduler.max_batch_tokens, scheduler_defaults.max_batch_tokens);
  EXPECT_EQ(config.scheduler.max_running, scheduler_defaults.max_running);
  EXPECT_EQ(config.scheduler.default_max_tokens, engine::SamplingParams{}.max_tokens);
  EXPECT_EQ(config.logging.level, "info");
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
  grpc_listen: 0.0.0.0:8000
  metrics_listen: ""
  max_concurrent_streams: 10
  drain_timeout: 2m
  api_keys:
    sk-one: acme
    sk-two: globex
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
  eviction: lru
scheduler:
  max_batch_tokens: 2048
  max_running: 128
  max_waiting: 1000
  default_max_tokens: 256
  max_prompt_tokens: 4096
logging:
  level: debug
)"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.grpc_listen, "0.0.0.0:8000");
  EXPECT_EQ(config->server.metrics_listen, "");
  EXPECT_EQ(config->server.max_concurrent_streams, 10);
  EXPECT_EQ(config->server.drain_timeout_ms, 120000);
  EXPECT_EQ(config->server.api_keys.at("sk-one"), "acme");
  EXPECT_EQ(config->server.api_keys.at("sk-two"), "globex");
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
  EXPECT_EQ(config->cache.eviction, cache::EvictionPolicy::kLru);
  EXPECT_EQ(config->scheduler.max_batch_tokens, 2048);
  EXPECT_EQ(config->scheduler.max_running, 128);
  EXPECT_EQ(config->scheduler.max_waiting, 1000);
  EXPECT_EQ(config->scheduler.default_max_tokens, 256);
  EXPECT_EQ(config->scheduler.max_prompt_tokens, 4096);
  EXPECT_EQ(config->logging.level, "debug");

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
  EXPECT_EQ(LoadError("\nservr:\n  grpc_listen: a:1\n"),
            ":2: unknown key 'servr' (did you mean 'server'?)");
  EXPECT_EQ(LoadError("cache:\n  zzzzzzzzzz: 1\n"), ":2: unknown key 'cache.zzzzzzzzzz'");
}

TEST(DaemonConfigTest, WrongTypeNamesLineAndKey) {
  EXPECT_EQ(LoadError("scheduler:\n  max_running: [1, 2]\n"),
            ":2: scheduler.max_running: wrong type: expected an integer, got a sequence");
  EXPECT_EQ(LoadError("scheduler:\n\n  max_running: lots\n"),
            ":3: scheduler.max_running: expected an integer, got 'lots'");
  EXPECT_EQ(LoadError("cache: 5\n"),
            ":1: wrong type for 'cache': expected a mapping, got a scalar");
  EXPECT_EQ(LoadError("server:\n  api_keys: sk-1\n"),
            ":2: server.api_keys: wrong type: expected a mapping, got a scalar");
  EXPECT_THAT(LoadError("- a\n- b\n"), HasSubstr("expected a mapping of sections"));
  EXPECT_EQ(LoadError("engine:\n  threads:\n"),
            ":2: engine.threads: wrong type: expected an integer, got nothing");
}

TEST(DaemonConfigTest, OutOfRangeAndBadChoices) {
  EXPECT_EQ(LoadError("cache:\n  block_size: 0\n"),
            ":2: cache.block_size: value 0 is out of range [1, 4096]");
  EXPECT_EQ(LoadError("cache:\n  device_memory_fraction: 1.5\n"),
            ":2: cache.device_memory_fraction: value 1.5 is out of range [0, 1)");
  EXPECT_EQ(LoadError("engine:\n  precision: fp8\n"),
            ":2: engine.precision: 'fp8' is not one of split, bf16, f32");
  EXPECT_THAT(LoadError("server:\n  grpc_listen: localhost:99999\n"),
              HasSubstr(":2: server.grpc_listen: bad port in 'localhost:99999'"));
  EXPECT_THAT(LoadError("cache:\n  eviction: fifo\n"), HasSubstr(":2: cache.eviction: "));
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
  const std::string message = LoadError("server:\n  grpc_listen: a:1\n - b\n");
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
  EXPECT_THAT(LoadError("server:\n  grpc_listen: a:1\n  metrics_listen: a:1\n"),
              HasSubstr(":3: server.metrics_listen and server.grpc_listen are both a:1"));
  EXPECT_THAT(LoadError("server:\n  api_keys: {\"\": acme}\n"),
              HasSubstr(":2: server.api_keys: keys and tenant names must be non-empty"));
}

TEST(ApplyOverrideTest, SetsDottedKeys) {
  DaemonConfig config;
  ASSERT_TRUE(ApplyOverride(config, "cache.host_bytes=2GiB").ok());
  ASSERT_TRUE(ApplyOverride(config, "server.grpc_listen=0.0.0.0:8000").ok());
  ASSERT_TRUE(ApplyOverride(config, " engine.backend = cuda ").ok());
  ASSERT_TRUE(ApplyOverride(config, "server.drain_timeout=5s").ok());
  ASSERT_TRUE(ApplyOverride(config, "server.api_keys={sk-1: acme}").ok());
  ASSERT_TRUE(ApplyOverride(config, "cache.disk_path=\"/data/kv cache\"").ok());
  EXPECT_EQ(config.cache.host_bytes, uint64_t{2} << 30);
  EXPECT_EQ(config.server.grpc_listen, "0.0.0.0:8000");
  EXPECT_EQ(config.engine.backend, "cuda");
  EXPECT_EQ(config.server.drain_timeout_ms, 5000);
  EXPECT_EQ(config.server.api_keys.at("sk-1"), "acme");
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
}

TEST(DumpConfigTest, EveryKeyHasAComment) {
  const std::string dump = DumpConfig(DaemonConfig{});
  std::istringstream lines(dump);
  std::string line;
  std::string previous;
  int keys = 0;
  while (std::getline(lines, line)) {
    if (line.rfind("  ", 0) == 0 && line.rfind("  #", 0) != 0) {
      ++keys;
      EXPECT_EQ(previous.rfind("  # ", 0), 0u) << line;
    }
    previous = line;
  }
  EXPECT_EQ(keys, 23);
}

// configs/default.yaml is generated: on a mismatch, the expected text is
// written beside the test's temp files to be copied over it.
TEST(ConfigFilesTest, DefaultYamlEqualsDumpConfig) {
  const fs::path path = fs::path(STRATA_SOURCE_DIR) / "configs" / "default.yaml";
  const std::string expected = DumpConfig(DaemonConfig{});
  if (ReadFile(path) != expected) {
    const std::string fresh = WriteTemp("default.yaml", expected);
    ADD_FAILURE() << path << " is out of date with the key table; regenerate it: cp " << fresh
                  << " " << path;
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
