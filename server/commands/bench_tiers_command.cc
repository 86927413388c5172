// `strata bench tiers` (bench_tiers.h). Both parts run a random-weight model
// through the real scheduler, CPU backend and RocksDB disk tier, with no
// host tier: a device arena too small for the workload demotes evicted
// blocks straight to disk.
//
// Load versus recompute: for each disk speed (as is, and with every blob
// file read delayed by --slow-read-ms) and each policy (always load, never
// load, the cost model), a fresh scheduler first warms up (one prompt
// computed, evicted to disk and asked for again: the cost model measures
// prefill and the disk), then, --reps times, a fresh prompt is computed,
// evicted to disk by another, written through, and asked for again: its
// time to first token is the sample.
//
// Disk admission: one-off prompts and a few prompts asked several times,
// shuffled, each run to its first token, writing every evicted block
// (admit after 1 sighting) or only blocks two requests wanted (2), with a
// disk large enough for everything and with one that holds a quarter of it.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cache/block_hash.h"
#include "engine/cpu/random_weights.h"
#include "nlohmann/json.hpp"
#include "server/commands/args.h"
#include "server/commands/bench_tiers.h"
#include "server/commands/bench_util.h"
#include "server/commands/command_registry.h"
#include "server/daemon/random_model.h"
#include "server/engine_setup.h"
#include "storage/disk_format.h"
#include "storage/disk_tier_store.h"

namespace strata::server {

const char kBenchTiersUsage[] =
    "tiers [--config FILE.json] [--prompt-tokens 1024] [--reps 3] [--slow-read-ms 50] "
    "[--one-off-prompts 48] [--threads N] [--json]";

namespace {

using scheduler::LoadCostStats;
using scheduler::LoadPolicy;

constexpr int64_t kBlockSize = 16;
// The admission workload: prompts of this many tokens, a few of them asked
// this many times each.
constexpr int64_t kAdmissionPromptTokens = 256;
constexpr int kRepeatedPrompts = 4;
constexpr int kRepeats = 4;

struct BenchArgs {
  std::string config;
  int64_t prompt_tokens = 1024;
  int64_t reps = 3;
  int64_t slow_read_ms = 50;
  int64_t one_off_prompts = 48;
  int64_t threads = 0;
  bool json = false;
};

std::vector<engine::TokenId> RandomPrompt(int64_t length, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<engine::TokenId> ids(static_cast<size_t>(length));
  for (engine::TokenId& id : ids) id = static_cast<engine::TokenId>(3 + rng() % (vocab - 3));
  return ids;
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

absl::StatusOr<ServingEngine> MakeEngine(const engine::ModelConfig& config, int threads,
                                         int64_t device_blocks) {
  absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(config, 1234);
  if (!model.ok()) return model.status();
  cache::ModelFingerprintBuilder builder;
  builder.AddConfig(engine::ModelConfigToJson(config).dump());
  builder.AddConfig("random weights, seed 1234");
  ServingOptions options;
  options.backend_options.threads = threads;
  options.backend_options.precision = kDefaultServingPrecision;  // what the daemon runs
  options.cache.block_size = kBlockSize;
  options.cache.device_blocks = device_blocks;
  return MakeServingEngine(*model, std::make_unique<NumberTokenizer>(config.vocab_size),
                           std::move(builder).Finish(engine::DType::kBF16, kBlockSize), options);
}

// A disk tier in `path` holding `capacity_blocks` blocks, whose blob file
// reads first sleep `*delay_us` microseconds (a slow device) when not null.
absl::StatusOr<std::unique_ptr<storage::DiskTierStore>> OpenDisk(
    const std::filesystem::path& path, size_t block_bytes, uint64_t capacity_blocks,
    int admit_after, const std::atomic<int64_t>* delay_us) {
  storage::DiskTierOptions options;
  options.path = path.string();
  options.block_bytes = block_bytes;
  options.capacity_bytes = storage::DiskTierStore::CapacityForValues(
      capacity_blocks * (storage::disk_format::kHeaderBytes + block_bytes));
  options.model_fingerprint = 1234;
  options.admit_after_sightings = admit_after;
  if (delay_us != nullptr) {
    options.read_delay_for_testing = [delay_us](std::string_view file) {
      const bool blob = file.size() > 5 && file.substr(file.size() - 5) == ".blob";
      return std::chrono::microseconds(blob ? delay_us->load() : 0);
    };
  }
  return storage::DiskTierStore::Open(std::move(options));
}

// One policy at one disk speed.
struct TtftCase {
  std::vector<double> samples;  // seconds
  LoadCostStats warm;           // after the warm-up
  LoadCostStats end;            // after the samples
};

absl::StatusOr<TtftCase> RunTtftCase(ServingEngine& serving, storage::DiskTierStore& disk,
                                     LoadPolicy policy, const BenchArgs& args, uint32_t seed) {
  scheduler::SchedulerOptions options = serving.scheduler_options;
  options.disk_tier = &disk;
  options.max_batch_tokens = args.prompt_tokens;  // one prefill step, as a lone request gets
  options.load_cost.policy = policy;
  scheduler::Scheduler scheduler(options);
  const int64_t vocab = serving.backend->model_config().vocab_size;
  scheduler::RequestId next_id = 1;
  const auto ttft = [&](const std::vector<engine::TokenId>& prompt) {
    return TimeToFirstToken(scheduler, *serving.backend,
                            scheduler::Request{.id = next_id++, .prompt_ids = prompt});
  };
  // The TTFT of a prompt computed, evicted to the disk tier, and asked again.
  const auto back_from_disk = [&](uint32_t prompt_seed) -> absl::StatusOr<double> {
    const auto prompt = RandomPrompt(args.prompt_tokens, vocab, prompt_seed);
    for (const auto& p : {prompt, RandomPrompt(args.prompt_tokens, vocab, prompt_seed + 1)}) {
      if (absl::StatusOr<double> fill = ttft(p); !fill.ok()) return fill.status();
    }
    disk.Flush();  // a disk read, not one served from the write queue
    return ttft(prompt);
  };
  TtftCase result;
  if (absl::StatusOr<double> warm = back_from_disk(seed); !warm.ok()) return warm.status();
  result.warm = scheduler.load_costs().stats();
  for (int64_t rep = 0; rep < args.reps; ++rep) {
    absl::StatusOr<double> sample = back_from_disk(seed + 2 + 2 * static_cast<uint32_t>(rep));
    if (!sample.ok()) return sample.status();
    result.samples.push_back(*sample);
  }
  result.end = scheduler.load_costs().stats();
  return result;
}

struct SpeedResult {
  std::string label;
  TtftCase load, recompute, cost;
};

absl::StatusOr<std::vector<SpeedResult>> RunLoadVersusRecompute(ServingEngine& serving,
                                                                const std::filesystem::path& dir,
                                                                const BenchArgs& args) {
  std::atomic<int64_t> delay_us{0};
  const auto block_bytes = static_cast<size_t>(serving.backend->kv_arena_info().bytes_per_block);
  // Every prompt of every case stays on disk: (warm-up + reps) * 2 each,
  // with room to spare for the copies a hit rewrites (DiskTierStore).
  const uint64_t blocks = 4 * 6 * static_cast<uint64_t>(2 * args.reps + 2) *
                          static_cast<uint64_t>(args.prompt_tokens / kBlockSize + 1);
  absl::StatusOr<std::unique_ptr<storage::DiskTierStore>> disk =
      OpenDisk(dir / "ttft", block_bytes, blocks, 1, &delay_us);
  if (!disk.ok()) return disk.status();
  std::vector<SpeedResult> results;
  uint32_t seed = 1;
  for (int64_t delay_ms : {int64_t{0}, args.slow_read_ms}) {
    delay_us.store(delay_ms * 1000);
    SpeedResult speed{.label = delay_ms == 0 ? std::string("as is")
                                             : absl::StrCat(delay_ms, " ms per read")};
    for (auto [policy, out] : {std::pair{LoadPolicy::kAlwaysLoad, &speed.load},
                               std::pair{LoadPolicy::kNeverLoad, &speed.recompute},
                               std::pair{LoadPolicy::kCost, &speed.cost}}) {
      absl::StatusOr<TtftCase> one = RunTtftCase(serving, **disk, policy, args, seed);
      if (!one.ok()) return one.status();
      *out = *std::move(one);
      seed += 1000;
    }
    results.push_back(std::move(speed));
  }
  return results;
}

// One admission run: what the disk tier wrote and how often prompts hit.
struct AdmissionResult {
  int admit_after = 1;
  std::string capacity;
  uint64_t capacity_blocks = 0;
  storage::TierStoreStats disk;
  int64_t prompt_tokens = 0;
  int64_t device_hit_tokens = 0;
  int64_t disk_hit_tokens = 0;
  double seconds = 0;
};

// Mostly one-off prompts, and kRepeatedPrompts asked kRepeats times each,
// in a fixed shuffled order.
std::vector<std::vector<engine::TokenId>> AdmissionWorkload(int64_t one_offs, int64_t vocab) {
  std::vector<std::vector<engine::TokenId>> prompts;
  for (int64_t i = 0; i < one_offs; ++i) {
    prompts.push_back(RandomPrompt(kAdmissionPromptTokens, vocab, 100000 + i));
  }
  for (int i = 0; i < kRepeatedPrompts; ++i) {
    for (int k = 0; k < kRepeats; ++k) {
      prompts.push_back(RandomPrompt(kAdmissionPromptTokens, vocab, 200000 + i));
    }
  }
  std::shuffle(prompts.begin(), prompts.end(), std::mt19937(42));
  return prompts;
}

absl::StatusOr<AdmissionResult> RunAdmission(ServingEngine& serving,
                                             const std::filesystem::path& path,
                                             const std::vector<std::vector<engine::TokenId>>& work,
                                             int admit_after, uint64_t capacity_blocks) {
  const auto block_bytes = static_cast<size_t>(serving.backend->kv_arena_info().bytes_per_block);
  absl::StatusOr<std::unique_ptr<storage::DiskTierStore>> disk =
      OpenDisk(path, block_bytes, capacity_blocks, admit_after, nullptr);
  if (!disk.ok()) return disk.status();
  AdmissionResult result{.admit_after = admit_after, .capacity_blocks = capacity_blocks};
  {
    scheduler::SchedulerOptions options = serving.scheduler_options;
    options.disk_tier = disk->get();
    options.max_batch_tokens = kAdmissionPromptTokens;
    options.load_cost.policy = LoadPolicy::kAlwaysLoad;  // hits measure admission alone
    scheduler::Scheduler scheduler(options);
    const auto start = std::chrono::steady_clock::now();
    scheduler::RequestId id = 1;
    for (const std::vector<engine::TokenId>& prompt : work) {
      absl::StatusOr<double> ttft = TimeToFirstToken(
          scheduler, *serving.backend, scheduler::Request{.id = id++, .prompt_ids = prompt});
      if (!ttft.ok()) return ttft.status();
      result.prompt_tokens += static_cast<int64_t>(prompt.size());
      // Written through before the next prompt, as a disk with time to
      // spare between requests would be: hits come from disk reads.
      (*disk)->Flush();
    }
    result.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    result.device_hit_tokens =
        scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDevice)];
    result.disk_hit_tokens =
        scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)];
  }
  (*disk)->Flush();
  result.disk = (*disk)->Stats();
  return result;
}

absl::StatusOr<std::vector<AdmissionResult>> RunAdmissions(ServingEngine& serving,
                                                           const std::filesystem::path& dir,
                                                           const BenchArgs& args) {
  const auto work =
      AdmissionWorkload(args.one_off_prompts, serving.backend->model_config().vocab_size);
  // Distinct full blocks the workload could write (its prompts' and outputs').
  const uint64_t distinct = static_cast<uint64_t>(args.one_off_prompts + kRepeatedPrompts) *
                            static_cast<uint64_t>(kAdmissionPromptTokens / kBlockSize + 1);
  std::vector<AdmissionResult> results;
  for (auto [label, blocks] :
       {std::pair{"ample", 2 * distinct}, std::pair{"tight", distinct / 4}}) {
    for (int admit_after : {1, 2}) {
      absl::StatusOr<AdmissionResult> one = RunAdmission(
          serving, dir / absl::StrCat("admit_", label, admit_after), work, admit_after, blocks);
      if (!one.ok()) return one.status();
      one->capacity = label;
      results.push_back(*std::move(one));
    }
  }
  return results;
}

double Ms(double seconds) { return seconds * 1e3; }
double MiB(uint64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }

void PrintLoadVersusRecompute(const std::vector<SpeedResult>& results, const BenchArgs& args) {
  std::cout << absl::StrFormat(
      "Load versus recompute: TTFT of a %d-token prompt whose KV is on the disk tier, median "
      "of %d\n",
      args.prompt_tokens, args.reps);
  std::cout << absl::StrFormat("  %-16s %10s %10s %10s %10s %10s  %s\n", "disk", "load",
                               "recompute", "cost", "load/rec", "cost/best",
                               "cost model chose (load/recompute/partial)");
  for (const SpeedResult& r : results) {
    const double load = Median(r.load.samples);
    const double recompute = Median(r.recompute.samples);
    const double cost = Median(r.cost.samples);
    std::cout << absl::StrFormat("  %-16s %8.1fms %8.1fms %8.1fms %9.2fx %9.2fx  %d/%d/%d\n",
                                 r.label, Ms(load), Ms(recompute), Ms(cost), load / recompute,
                                 cost / std::min(load, recompute),
                                 r.cost.end.load_decisions - r.cost.warm.load_decisions,
                                 r.cost.end.recompute_decisions - r.cost.warm.recompute_decisions,
                                 r.cost.end.partial_decisions - r.cost.warm.partial_decisions);
  }
  for (const SpeedResult& r : results) {
    const LoadCostStats& s = r.cost.end;
    std::cout << absl::StrFormat(
        "  measured with the disk %s: disk reads %.1f MB/s, prefill %.0f tokens/s\n", r.label,
        s.read_bytes_per_second[static_cast<int>(cache::Tier::kDisk)] / 1e6,
        s.prefill_tokens_per_second);
  }
}

void PrintAdmissions(const std::vector<AdmissionResult>& results, const BenchArgs& args) {
  std::cout << absl::StrFormat(
      "\nDisk admission: %d one-off prompts and %d prompts asked %d times (%d tokens each), "
      "no host tier\n",
      args.one_off_prompts, kRepeatedPrompts, kRepeats, kAdmissionPromptTokens);
  std::cout << absl::StrFormat("  %-14s %6s %10s %12s %14s %10s %10s %8s\n", "disk capacity",
                               "admit", "written", "written MiB", "not written MiB", "disk hits",
                               "dev hits", "time");
  for (const AdmissionResult& r : results) {
    const double tokens = static_cast<double>(std::max<int64_t>(r.prompt_tokens, 1));
    std::cout << absl::StrFormat(
        "  %-14s %6d %10d %12.1f %14.1f %9.1f%% %9.1f%% %7.2fs\n",
        absl::StrCat(r.capacity, " (", r.capacity_blocks, ")"), r.admit_after,
        r.disk.blocks_written, MiB(r.disk.bytes_written), MiB(r.disk.not_admitted_bytes),
        100.0 * static_cast<double>(r.disk_hit_tokens) / tokens,
        100.0 * static_cast<double>(r.device_hit_tokens) / tokens, r.seconds);
  }
  for (size_t i = 0; i + 1 < results.size(); i += 2) {
    const AdmissionResult& all = results[i];
    const AdmissionResult& admitted = results[i + 1];
    std::cout << absl::StrFormat(
        "  %s disk: admission writes %.2fx the bytes (%.1f MiB saved), disk hit tokens %.2fx\n",
        all.capacity,
        static_cast<double>(admitted.disk.bytes_written) /
            static_cast<double>(std::max<uint64_t>(all.disk.bytes_written, 1)),
        MiB(all.disk.bytes_written - std::min(all.disk.bytes_written, admitted.disk.bytes_written)),
        static_cast<double>(admitted.disk_hit_tokens) /
            static_cast<double>(std::max<int64_t>(all.disk_hit_tokens, 1)));
  }
}

nlohmann::json Json(const std::vector<SpeedResult>& speeds,
                    const std::vector<AdmissionResult>& admissions) {
  nlohmann::json report = {{"load_vs_recompute", nlohmann::json::array()},
                           {"admission", nlohmann::json::array()}};
  for (const SpeedResult& r : speeds) {
    report["load_vs_recompute"].push_back(
        {{"disk", r.label},
         {"load_s", Median(r.load.samples)},
         {"recompute_s", Median(r.recompute.samples)},
         {"cost_s", Median(r.cost.samples)},
         {"cost_load_decisions", r.cost.end.load_decisions - r.cost.warm.load_decisions},
         {"cost_recompute_decisions",
          r.cost.end.recompute_decisions - r.cost.warm.recompute_decisions},
         {"disk_read_bytes_per_second",
          r.cost.end.read_bytes_per_second[static_cast<int>(cache::Tier::kDisk)]},
         {"prefill_tokens_per_second", r.cost.end.prefill_tokens_per_second}});
  }
  for (const AdmissionResult& r : admissions) {
    report["admission"].push_back({{"capacity", r.capacity},
                                   {"capacity_blocks", r.capacity_blocks},
                                   {"admit_after", r.admit_after},
                                   {"blocks_written", r.disk.blocks_written},
                                   {"bytes_written", r.disk.bytes_written},
                                   {"not_admitted_bytes", r.disk.not_admitted_bytes},
                                   {"prompt_tokens", r.prompt_tokens},
                                   {"disk_hit_tokens", r.disk_hit_tokens},
                                   {"device_hit_tokens", r.device_hit_tokens}});
  }
  return report;
}

absl::StatusOr<BenchArgs> ParseBenchArgs(const std::vector<std::string>& raw_args) {
  ArgSpec spec{.value_options = {"config", "prompt-tokens", "reps", "slow-read-ms",
                                 "one-off-prompts", "threads"},
               .flag_options = {"json"}};
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(raw_args, spec);
  if (!parsed.ok()) return parsed.status();
  BenchArgs args;
  args.config = parsed->Get("config").value_or(BenchConfigPath("llama-20m-4k.json").string());
  args.json = parsed->Has("json");
  for (auto [name, out] :
       {std::pair{"prompt-tokens", &args.prompt_tokens}, std::pair{"reps", &args.reps},
        std::pair{"slow-read-ms", &args.slow_read_ms},
        std::pair{"one-off-prompts", &args.one_off_prompts}, std::pair{"threads", &args.threads}}) {
    absl::StatusOr<int64_t> value = parsed->GetInt(name, *out);
    if (!value.ok()) return value.status();
    *out = *value;
  }
  if (args.prompt_tokens < 2 * kBlockSize || args.reps < 1 || args.slow_read_ms < 1 ||
      args.one_off_prompts < 1 || args.threads < 0) {
    return absl::InvalidArgumentError(
        "--prompt-tokens >= 32, --reps >= 1, --slow-read-ms >= 1, --one-off-prompts >= 1");
  }
  return args;
}

}  // namespace

int RunBenchTiers(const std::vector<std::string>& raw_args) {
  const std::string name = "bench";
  absl::StatusOr<BenchArgs> args = ParseBenchArgs(raw_args);
  if (!args.ok()) return UsageError(name, std::string(args.status().message()));
  absl::StatusOr<engine::ModelConfig> config = ReadModelConfigFile(args->config);
  if (!config.ok()) {
    std::cerr << "strata bench tiers: " << config.status().message() << "\n";
    return kExitFailure;
  }
  if (std::max(args->prompt_tokens, kAdmissionPromptTokens) + 1 >=
      config->max_position_embeddings) {
    return UsageError(name, "--prompt-tokens must leave room in max_position_embeddings");
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / absl::StrCat("strata_bench_tiers_", getpid());
  absl::Status status;
  std::vector<SpeedResult> speeds;
  std::vector<AdmissionResult> admissions;
  {
    // A device arena for one prompt and its output: the next evicts it.
    absl::StatusOr<ServingEngine> serving =
        MakeEngine(*config, static_cast<int>(args->threads), args->prompt_tokens / kBlockSize + 2);
    status = serving.status();
    if (status.ok()) {
      absl::StatusOr<std::vector<SpeedResult>> s = RunLoadVersusRecompute(*serving, dir, *args);
      status = s.status();
      if (s.ok()) speeds = *std::move(s);
    }
    if (status.ok()) {
      absl::StatusOr<std::vector<AdmissionResult>> a = RunAdmissions(*serving, dir, *args);
      status = a.status();
      if (a.ok()) admissions = *std::move(a);
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
  if (!status.ok()) {
    std::cerr << "strata bench tiers: " << status.message() << "\n";
    return kExitFailure;
  }
  PrintLoadVersusRecompute(speeds, *args);
  PrintAdmissions(admissions, *args);
  if (args->json) std::cout << Json(speeds, admissions).dump() << "\n";
  return kExitOk;
}

}  // namespace strata::server
