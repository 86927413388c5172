// `strata bench cache`: time to first token (TTFT) of a long prompt on a
// random-weight model, through the real scheduler and backend, in four
// cases: cold (nothing cached), its prefix on the device, in the host tier,
// and on the disk tier. The lower tiers are reached the way serving reaches
// them: a second prompt evicts the first from a device arena that holds only
// one, so its blocks are demoted (to the host tier; to the disk tier when the
// host tier is off), and the first prompt then comes back from there.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
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
#include "server/daemon/random_model.h"
#include "server/engine_setup.h"

namespace strata::server {

const char kBenchCacheUsage[] =
    "cache [--config FILE.json] [--prompt-tokens 2048] [--reps 3] [--threads N] [--json]";

namespace {

using Clock = std::chrono::steady_clock;

std::filesystem::path DefaultConfig() {
  return BenchConfigPath("llama-20m-4k.json");
}


std::vector<engine::TokenId> RandomPrompt(int64_t length, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<engine::TokenId> ids(static_cast<size_t>(length));
  for (engine::TokenId& id : ids) id = static_cast<engine::TokenId>(3 + rng() % (vocab - 3));
  return ids;
}

// TTFT of a greedy one-token request for `prompt`.
absl::StatusOr<double> TimeToFirstToken(scheduler::Scheduler& scheduler, engine::Backend& backend,
                                        scheduler::RequestId id,
                                        const std::vector<engine::TokenId>& prompt) {
  return server::TimeToFirstToken(scheduler, backend,
                                  scheduler::Request{.id = id, .prompt_ids = prompt});
}

struct Engines {
  ServingEngine host;  // device arena for one prompt, host tier for two
  ServingEngine disk;  // the same arena, no host tier, a disk tier
};

absl::StatusOr<Engines> MakeEngines(const engine::ModelConfig& config, int64_t prompt_tokens,
                                    int threads, const std::string& disk_path) {
  absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(config, 1234);
  if (!model.ok()) return model.status();
  cache::ModelFingerprintBuilder builder;
  builder.AddConfig(engine::ModelConfigToJson(config).dump());
  builder.AddConfig("random weights, seed 1234");
  const int64_t block_size = 16;
  const cache::ModelFingerprint fingerprint =
      std::move(builder).Finish(engine::DType::kBF16, block_size);
  const int64_t block_bytes =
      2 * config.num_layers * config.num_kv_heads * config.head_dim * block_size * 2;
  ServingOptions options;
  options.backend_options.threads = threads;
  options.cache.block_size = block_size;
  options.cache.device_blocks = prompt_tokens / block_size + 2;  // one prompt and its output
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

struct Samples {
  std::vector<double> cold, device, host, disk;
};

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
    absl::StatusOr<double> cold = TimeToFirstToken(scheduler, backend, 1, prompt);
    absl::StatusOr<double> device = TimeToFirstToken(scheduler, backend, 2, prompt);
    absl::StatusOr<double> evict = TimeToFirstToken(scheduler, backend, 3, other);
    absl::StatusOr<double> host = TimeToFirstToken(scheduler, backend, 4, prompt);
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
  options = engines.disk.scheduler_options;
  options.max_batch_tokens = prompt_tokens;
  scheduler::Scheduler scheduler(options);
  engine::Backend& backend = *engines.disk.backend;
  for (scheduler::RequestId id : {1, 2}) {
    absl::StatusOr<double> fill =
        TimeToFirstToken(scheduler, backend, id, id == 1 ? prompt : other);
    if (!fill.ok()) return fill.status();
  }
  if (engines.disk.tiers.disk == nullptr) {
    return absl::FailedPreconditionError("the disk tier could not be opened");
  }
  engines.disk.tiers.disk->Flush();  // a disk hit, not one served from the write queue
  absl::StatusOr<double> disk = TimeToFirstToken(scheduler, backend, 3, prompt);
  if (!disk.ok()) return disk.status();
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

}  // namespace

int RunBenchCache(const std::vector<std::string>& raw_args) {
  const std::string name = "bench";
  ArgSpec spec{.value_options = {"config", "prompt-tokens", "reps", "threads"},
               .flag_options = {"json"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return UsageError(name, std::string(args.status().message()));
  absl::StatusOr<int64_t> prompt_tokens = args->GetInt("prompt-tokens", 2048);
  absl::StatusOr<int64_t> reps = args->GetInt("reps", 3);
  absl::StatusOr<int64_t> threads = args->GetInt("threads", 0);
  for (const absl::Status& s : {prompt_tokens.status(), reps.status(), threads.status()}) {
    if (!s.ok()) return UsageError(name, std::string(s.message()));
  }
  if (*prompt_tokens < 32 || *reps < 1)
    return UsageError(name, "--prompt-tokens >= 32, --reps >= 1");
  absl::StatusOr<engine::ModelConfig> config =
      ReadModelConfigFile(args->Get("config").value_or(DefaultConfig().string()));
  if (!config.ok()) {
    std::cerr << "strata bench cache: " << config.status().message() << "\n";
    return kExitFailure;
  }
  if (*prompt_tokens + 1 >= config->max_position_embeddings) {
    return UsageError(name, "--prompt-tokens must leave room in max_position_embeddings");
  }
  const std::filesystem::path disk_dir =
      std::filesystem::temp_directory_path() / absl::StrCat("strata_bench_cache_", getpid());
  Samples samples;
  absl::Status status;
  {
    absl::StatusOr<Engines> engines =
        MakeEngines(*config, *prompt_tokens, static_cast<int>(*threads), disk_dir.string());
    status = engines.status();
    for (int64_t rep = 0; status.ok() && rep < *reps; ++rep) {
      status = RunOnce(*engines, *config, *prompt_tokens, static_cast<uint32_t>(rep), samples);
    }
  }
  std::error_code ignored;
  std::filesystem::remove_all(disk_dir, ignored);
  if (!status.ok()) {
    std::cerr << "strata bench cache: " << status.message() << "\n";
    return kExitFailure;
  }
  const double cold = Median(samples.cold);
  const double device = Median(samples.device);
  const double host = Median(samples.host);
  const double disk = Median(samples.disk);
  std::cout << absl::StrFormat("TTFT of a %d-token prompt, median of %d (cold / hit):\n",
                               *prompt_tokens, *reps);
  std::cout << absl::StrFormat("  cold         %8.2f ms\n", cold * 1e3);
  for (const auto& [label, value] : {std::pair{"device hit", device}, std::pair{"host hit", host},
                                     std::pair{"disk hit", disk}}) {
    std::cout << absl::StrFormat("  %-12s %8.2f ms   %6.1fx\n", label, value * 1e3, cold / value);
  }
  if (args->Has("json")) {
    nlohmann::json report = {
        {"prompt_tokens", *prompt_tokens}, {"reps", *reps},      {"cold_s", cold},
        {"device_hit_s", device},          {"host_hit_s", host}, {"disk_hit_s", disk}};
    std::cout << report.dump() << "\n";
  }
  return kExitOk;
}

}  // namespace strata::server
