// `strata bench cache`: time to first token (TTFT) of long prompts on a
// random-weight model, through the real scheduler and backend, in four
// cases side by side: cold (nothing cached), its prefix on the device, in
// the host tier, and on the disk tier. The lower tiers are reached the way
// serving reaches them: a second prompt evicts the first from a device arena
// that holds only one, so its blocks are demoted (to the host tier; to the
// disk tier when the host tier is off), and the first prompt then comes back
// from there, its admission evicting (demoting) the second in turn. The bytes
// each hit moves are counted, and a memcpy of the promoted bytes is timed in
// the same run: a host hit should cost about a device hit plus that copy.
// The cache runs as the daemon's does, write-behind included: a prompt's
// blocks are copied down in the steps after its request ends, so that the
// admission that evicts them copies nothing (--write-behind-blocks 0 turns
// that off, to see what it saves).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "cache/block_hash.h"
#include "engine/cpu/random_weights.h"
#include "engine/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "scheduler/engine_loop.h"
#include "server/commands/args.h"
#include "server/commands/bench_cache.h"
#include "server/commands/bench_util.h"
#include "server/commands/command_registry.h"
#include "server/config/daemon_config.h"
#include "server/daemon/random_model.h"
#include "server/engine_setup.h"

namespace strata::server {

const char kBenchCacheUsage[] =
    "cache [--config FILE.json] [--prompt-tokens 512,2048] [--reps 5] [--threads N]\n"
    "      [--write-behind-blocks N] [--json]";

namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kBlockSize = 16;

std::filesystem::path DefaultConfig() { return BenchConfigPath("llama-20m-4k.json"); }

// The CPU the figures were measured on, from /proc/cpuinfo ("" if unknown).
std::string CpuModelName() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "";
}

std::vector<engine::TokenId> RandomPrompt(int64_t length, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<engine::TokenId> ids(static_cast<size_t>(length));
  for (engine::TokenId& id : ids) id = static_cast<engine::TokenId>(3 + rng() % (vocab - 3));
  return ids;
}

struct Engines {
  ServingEngine host;  // device arena for one prompt, host tier for four
  ServingEngine disk;  // the same arena, no host tier, a disk tier
};

absl::StatusOr<Engines> MakeEngines(const engine::ModelConfig& config, int64_t prompt_tokens,
                                    int threads, int64_t write_behind,
                                    const std::string& disk_path) {
  absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(config, 1234);
  if (!model.ok()) return model.status();
  cache::ModelFingerprintBuilder builder;
  builder.AddConfig(engine::ModelConfigToJson(config).dump());
  builder.AddConfig("random weights, seed 1234");
  const cache::ModelFingerprint fingerprint =
      std::move(builder).Finish(engine::DType::kBF16, kBlockSize);
  const int64_t block_bytes =
      2 * config.num_layers * config.num_kv_heads * config.head_dim * kBlockSize * 2;
  ServingOptions options;
  options.backend_options.threads = threads;
  options.backend_options.precision = kDefaultServingPrecision;  // what the daemon runs
  options.cache.block_size = kBlockSize;
  options.cache.device_blocks = prompt_tokens / kBlockSize + 2;  // one prompt and its output
  options.cache.write_behind_blocks_per_step = write_behind;
  options.cache.disk_low_priority_writes = kDaemonDiskLowPriorityWrites;
  options.cache.host_bytes = static_cast<uint64_t>(4 * options.cache.device_blocks * block_bytes);
  Engines engines;
  auto host = MakeServingEngine(*model, std::make_unique<NumberTokenizer>(config.vocab_size),
                                fingerprint, options);
  if (!host.ok()) return host.status();
  engines.host = *std::move(host);
  options.cache.host_bytes = 0;
  options.cache.disk_path = disk_path;
  options.cache.disk_bytes = uint64_t{1} << 30;
  auto disk = MakeServingEngine(*model, std::make_unique<NumberTokenizer>(config.vocab_size),
                                fingerprint, options);
  if (!disk.ok()) return disk.status();
  engines.disk = *std::move(disk);
  return engines;
}

// Bytes a timed request moved between the device and a lower tier.
struct Moved {
  int64_t promoted = 0;        // lower tier -> device
  int64_t demoted = 0;         // device -> lower tier, on eviction
  int64_t written_behind = 0;  // device -> lower tier, after the request ended
};

struct Samples {
  std::vector<double> cold, device, host, disk, copy;
  Moved host_moved, disk_moved;  // of the last repetition (the same every time)
};

// TTFT of a greedy one-token request for `prompt`, and the bytes it moved
// between the device and `tier`.
absl::StatusOr<double> Timed(scheduler::Scheduler& scheduler, engine::Backend& backend,
                             scheduler::RequestId id, const std::vector<engine::TokenId>& prompt,
                             cache::Tier tier, Moved* moved) {
  const cache::CacheStats& stats = scheduler.cache_stats();
  const int d = static_cast<int>(cache::Tier::kDevice), t = static_cast<int>(tier);
  const int64_t block_bytes = scheduler.kv_cache().bytes_per_block();
  const auto now = [&] {
    const int64_t behind = stats.written_behind_blocks * block_bytes;
    return Moved{.promoted = stats.bytes_moved[t][d],
                 .demoted = stats.bytes_moved[d][t] - behind,
                 .written_behind = behind};
  };
  const Moved before = now();
  // Runs until the scheduler is idle: the write-behind after the first
  // token is not in the TTFT, but its bytes are counted.
  absl::StatusOr<double> ttft = server::TimeToFirstToken(
      scheduler, backend, scheduler::Request{.id = id, .prompt_ids = prompt});
  if (moved != nullptr) {
    const Moved after = now();
    *moved = Moved{.promoted = after.promoted - before.promoted,
                   .demoted = after.demoted - before.demoted,
                   .written_behind = after.written_behind - before.written_behind};
  }
  return ttft;
}

// Seconds for one memcpy of `bytes` between buffers already touched: the
// copy a host hit cannot avoid, measured in the same run.
double TimeCopy(int64_t bytes) {
  if (bytes <= 0) return 0;
  std::vector<std::byte> from(static_cast<size_t>(bytes), std::byte{1});
  std::vector<std::byte> to(static_cast<size_t>(bytes), std::byte{0});
  const Clock::time_point start = Clock::now();
  std::memcpy(to.data(), from.data(), to.size());
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (to.back() != from.back()) return -1;  // keeps the copy from being elided
  return seconds;
}

// One repetition on fresh prompts: cold and device hit, evict, host hit; and
// on the disk engine: fill, evict, disk hit.
absl::Status RunOnce(Engines& engines, const engine::ModelConfig& config, int64_t prompt_tokens,
                     uint32_t rep, Samples& samples) {
  const auto prompt = RandomPrompt(prompt_tokens, config.vocab_size, 2 * rep + 1);
  const auto other = RandomPrompt(prompt_tokens, config.vocab_size, 2 * rep + 2);
  scheduler::SchedulerOptions options = engines.host.scheduler_options;
  options.max_batch_tokens = prompt_tokens;  // one prefill step, as a lone request would get
  {
    scheduler::Scheduler scheduler(options);
    engine::Backend& backend = *engines.host.backend;
    const cache::Tier host_tier = cache::Tier::kHost;
    absl::StatusOr<double> cold = Timed(scheduler, backend, 1, prompt, host_tier, nullptr);
    absl::StatusOr<double> device = Timed(scheduler, backend, 2, prompt, host_tier, nullptr);
    absl::StatusOr<double> evict = Timed(scheduler, backend, 3, other, host_tier, nullptr);
    absl::StatusOr<double> host =
        Timed(scheduler, backend, 4, prompt, host_tier, &samples.host_moved);
    for (const auto* s : {&cold, &device, &evict, &host}) {
      if (!s->ok()) return s->status();
    }
    if (scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kHost)] == 0) {
      return absl::InternalError("the host case got no host hit");
    }
    samples.cold.push_back(*cold);
    samples.device.push_back(*device);
    samples.host.push_back(*host);
  }
  samples.copy.push_back(TimeCopy(samples.host_moved.promoted));
  options = engines.disk.scheduler_options;
  options.max_batch_tokens = prompt_tokens;
  scheduler::Scheduler scheduler(options);
  engine::Backend& backend = *engines.disk.backend;
  for (scheduler::RequestId id : {1, 2}) {
    absl::StatusOr<double> fill =
        Timed(scheduler, backend, id, id == 1 ? prompt : other, cache::Tier::kDisk, nullptr);
    if (!fill.ok()) return fill.status();
  }
  if (engines.disk.tiers.disk == nullptr) {
    return absl::FailedPreconditionError("the disk tier could not be opened");
  }
  engines.disk.tiers.disk->Flush();  // a disk hit, not one served from the write queue
  absl::StatusOr<double> disk =
      Timed(scheduler, backend, 3, prompt, cache::Tier::kDisk, &samples.disk_moved);
  if (!disk.ok()) return disk.status();
  // The disk tier's upkeep after the hit (rewriting the blocks it read)
  // runs now, not during the next repetition's timings.
  engines.disk.tiers.disk->Flush();
  if (scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)] == 0) {
    return absl::InternalError("the disk case got no disk hit");
  }
  samples.disk.push_back(*disk);
  return absl::OkStatus();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// One prompt length: every case's median and spread, the ratios the targets
// name, and the bytes moved.
struct LengthResult {
  int64_t tokens = 0;
  Samples samples;
};

absl::StatusOr<LengthResult> RunLength(const engine::ModelConfig& config, int64_t tokens,
                                       int64_t reps, int threads, int64_t write_behind) {
  const std::filesystem::path disk_dir = std::filesystem::temp_directory_path() /
                                         absl::StrCat("strata_bench_cache_", getpid(), "_", tokens);
  LengthResult result{.tokens = tokens};
  absl::Status status;
  {
    absl::StatusOr<Engines> engines =
        MakeEngines(config, tokens, threads, write_behind, disk_dir.string());
    status = engines.status();
    for (int64_t rep = 0; status.ok() && rep < reps; ++rep) {
      status = RunOnce(*engines, config, tokens, static_cast<uint32_t>(rep), result.samples);
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(disk_dir, ignored);
  if (!status.ok()) return status;
  return result;
}

std::string Spread(const std::vector<double>& values) {
  const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
  return absl::StrFormat("%.1f (%.1f-%.1f)", Median(values) * 1e3, *lo * 1e3, *hi * 1e3);
}

nlohmann::json Report(const LengthResult& r) {
  const Samples& s = r.samples;
  const double cold = Median(s.cold), device = Median(s.device), host = Median(s.host),
               disk = Median(s.disk), copy = Median(s.copy);
  std::cout << absl::StrFormat("%6d %22s %22s %22s %22s %8.2f\n", r.tokens, Spread(s.cold),
                               Spread(s.device), Spread(s.host), Spread(s.disk), copy * 1e3);
  return {{"prompt_tokens", r.tokens},
          {"cold_s", cold},
          {"device_hit_s", device},
          {"host_hit_s", host},
          {"disk_hit_s", disk},
          {"memcpy_promoted_s", copy},
          {"host_over_device", host / device},
          {"host_over_device_plus_copy", host / (device + copy)},
          {"host_over_disk", host / disk},
          {"cold_over_disk", cold / disk},
          {"cold_over_host", cold / host},
          {"cold_over_device", cold / device},
          {"host_promoted_bytes", s.host_moved.promoted},
          {"host_demoted_bytes", s.host_moved.demoted},
          {"host_written_behind_bytes", s.host_moved.written_behind},
          {"disk_promoted_bytes", s.disk_moved.promoted},
          {"disk_demoted_bytes", s.disk_moved.demoted},
          {"disk_written_behind_bytes", s.disk_moved.written_behind}};
}

void PrintRatios(const std::vector<nlohmann::json>& rows) {
  std::cout << "\nratios (targets: host/device <= 1.5, host/disk < 1, cold/disk >= 10 at 2k):\n";
  std::cout << absl::StrFormat("%6s %12s %16s %10s %10s %10s %10s\n", "tokens", "host/device",
                               "host/(dev+copy)", "host/disk", "cold/disk", "cold/host",
                               "cold/dev");
  for (const nlohmann::json& row : rows) {
    std::cout << absl::StrFormat(
        "%6d %12.2f %16.2f %10.2f %10.1f %10.1f %10.1f\n", row["prompt_tokens"].get<int64_t>(),
        row["host_over_device"].get<double>(), row["host_over_device_plus_copy"].get<double>(),
        row["host_over_disk"].get<double>(), row["cold_over_disk"].get<double>(),
        row["cold_over_host"].get<double>(), row["cold_over_device"].get<double>());
  }
  std::cout << "\nbytes moved by the timed request (MB; promoted = tier -> device before its "
               "first token; demoted = the prompt its admission evicted, device -> tier, in "
               "its TTFT; behind = its own blocks written behind after it ended):\n";
  std::cout << absl::StrFormat("%6s %14s %14s %14s %14s %14s %14s\n", "tokens", "host promoted",
                               "host demoted", "host behind", "disk promoted", "disk demoted",
                               "disk behind");
  for (const nlohmann::json& row : rows) {
    const auto mb = [&](const char* key) { return row[key].get<int64_t>() / 1e6; };
    std::cout << absl::StrFormat(
        "%6d %14.2f %14.2f %14.2f %14.2f %14.2f %14.2f\n", row["prompt_tokens"].get<int64_t>(),
        mb("host_promoted_bytes"), mb("host_demoted_bytes"), mb("host_written_behind_bytes"),
        mb("disk_promoted_bytes"), mb("disk_demoted_bytes"), mb("disk_written_behind_bytes"));
  }
}

std::vector<int64_t> ParseList(const std::string& text) {
  std::vector<int64_t> values;
  for (absl::string_view piece : absl::StrSplit(text, ',')) {
    int64_t value = 0;
    if (!absl::SimpleAtoi(piece, &value)) return {};
    values.push_back(value);
  }
  return values;
}

constexpr char kHelp[] =
    "Time to first token of a prompt of each length, cold and with its prefix cached on the\n"
    "device, in the host tier and on the disk tier (RocksDB), on a random-weight model\n"
    "(default bench/configs/llama-20m-4k.json), through the real scheduler and CPU backend.\n"
    "Prints the median (min-max) of --reps repetitions, the ratios the targets name, the\n"
    "bytes each hit moved and a memcpy of the promoted bytes timed in the same run.\n";

}  // namespace

int RunBenchCache(const std::vector<std::string>& raw_args) {
  const std::string name = "bench";
  if (std::find(raw_args.begin(), raw_args.end(), "--help") != raw_args.end()) {
    std::cout << "usage: strata bench " << kBenchCacheUsage << "\n\n" << kHelp;
    return kExitOk;
  }
  ArgSpec spec{
      .value_options = {"config", "prompt-tokens", "reps", "threads", "write-behind-blocks"},
      .flag_options = {"json"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return UsageError(name, std::string(args.status().message()));
  const std::vector<int64_t> lengths = ParseList(args->Get("prompt-tokens").value_or("512,2048"));
  absl::StatusOr<int64_t> reps = args->GetInt("reps", 5);
  absl::StatusOr<int64_t> threads = args->GetInt("threads", 0);
  absl::StatusOr<int64_t> write_behind =
      args->GetInt("write-behind-blocks", kDaemonWriteBehindBlocksPerStep);
  for (const absl::Status& s : {reps.status(), threads.status(), write_behind.status()}) {
    if (!s.ok()) return UsageError(name, std::string(s.message()));
  }
  if (lengths.empty() || *std::min_element(lengths.begin(), lengths.end()) < 32 || *reps < 1 ||
      *write_behind < 0) {
    return UsageError(
        name,
        "--prompt-tokens takes a list of lengths >= 32; --reps >= 1; --write-behind-blocks >= 0");
  }
  absl::StatusOr<engine::ModelConfig> config =
      ReadModelConfigFile(args->Get("config").value_or(DefaultConfig().string()));
  if (!config.ok()) {
    std::cerr << "strata bench cache: " << config.status().message() << "\n";
    return kExitFailure;
  }
  if (*std::max_element(lengths.begin(), lengths.end()) + 1 >= config->max_position_embeddings) {
    return UsageError(name, "--prompt-tokens must leave room in max_position_embeddings");
  }
  std::cout << absl::StrFormat(
      "TTFT in ms, median (min-max) of %d, by where the prompt's KV comes from; write-behind %d "
      "blocks/step; CPU: %s\n",
      *reps, *write_behind, CpuModelName());
  std::cout << absl::StrFormat("%6s %22s %22s %22s %22s %8s\n", "tokens", "cold", "device hit",
                               "host hit", "disk hit", "memcpy");
  std::vector<nlohmann::json> rows;
  for (int64_t tokens : lengths) {
    absl::StatusOr<LengthResult> result =
        RunLength(*config, tokens, *reps, static_cast<int>(*threads), *write_behind);
    if (!result.ok()) {
      std::cerr << "strata bench cache: " << result.status().message() << "\n";
      return kExitFailure;
    }
    rows.push_back(Report(*result));
  }
  PrintRatios(rows);
  if (args->Has("json")) {
    nlohmann::json report = {{"reps", *reps}, {"cpu", CpuModelName()}, {"lengths", rows}};
    std::cout << report.dump() << "\n";
  }
  return kExitOk;
}

}  // namespace strata::server
