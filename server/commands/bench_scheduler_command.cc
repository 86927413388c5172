// `strata bench scheduler`: replays workloads through the real scheduler and
// CPU backend on a random-weight model, each under a few policies (the
// suites of server/commands/bench_scheduler_suites.h), and prints
// throughput, TTFT p50/p99, cache-hit tokens, the ratios of each suite's
// headline policy against its baselines, and the counters that explain them.
// The three workloads of bench/workloads.h (multi-turn chat, shared-prefix
// batch, an agent workflow) run under
//   fcfs_nocache  first come first served, no prefix cache, no lower tiers;
//   fcfs_prefix   first come first served, prefix cache, a host tier;
//   strata        the cache-aware policy, prefix cache, the same host tier,
//                 and the workloads' session and workflow hints;
// cyclic_agents (KVFlow) and sessions (overload) under their own policies.
// Every policy gets the same device KV per workload (the workload's hint: in
// the agents workloads only some agents' prompts fit) and a fresh engine, so
// that no run inherits another's cache (a disk tier lives in a fresh
// temporary directory, removed after the run).
//
// The step loop runs in this thread on the wall clock: requests start at
// their open-loop arrival (or when the turn they extend has finished), and
// the loop sleeps only while nothing is queued or running.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/replay.h"
#include "bench/report.h"
#include "bench/workloads.h"
#include "cache/block_hash.h"
#include "engine/cpu/random_weights.h"
#include "engine/model_config.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "scheduler/engine_loop.h"
#include "server/commands/args.h"
#include "server/commands/bench_scheduler.h"
#include "server/commands/bench_scheduler_suites.h"
#include "server/commands/bench_util.h"
#include "server/commands/command_registry.h"
#include "server/config/daemon_config.h"
#include "server/daemon/random_model.h"
#include "server/engine_setup.h"

namespace strata::server {

const char kBenchSchedulerUsage[] =
    "scheduler [--config FILE.json] [--scale 1.0] [--seed 1] [--threads N] [--reps 1] "
    "[--workloads chat,shared_prefix,agents,cyclic_agents,sessions]\n"
    "      [--write-behind-blocks N] [--json]";

namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kBlockSize = 16;
constexpr uint64_t kWeightSeed = 1234;
constexpr int64_t kDefaultReps = 1;
// A replay still running after this long is stuck (a request that is never
// admitted), not slow: the default run takes about a minute in all.
constexpr double kMaxReplaySeconds = 600;

// What every run shares: the model and its K/V identity.
struct BenchModel {
  engine::ModelConfig config;
  engine::LoadedModel model;
  cache::ModelFingerprint fingerprint;
};

absl::StatusOr<BenchModel> MakeBenchModel(const engine::ModelConfig& config) {
  absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(config, kWeightSeed);
  if (!model.ok()) return model.status();
  cache::ModelFingerprintBuilder builder;
  builder.AddConfig(engine::ModelConfigToJson(config).dump());
  builder.AddConfig(absl::StrCat("random weights, seed ", kWeightSeed));
  cache::ModelFingerprint fingerprint = std::move(builder).Finish(engine::DType::kBF16, kBlockSize);
  return BenchModel{config, *std::move(model), fingerprint};
}

// A fresh directory for one run's disk tier, removed with it.
class TempDir {
 public:
  TempDir() {
    static int next = 0;
    path_ = std::filesystem::temp_directory_path() /
            absl::StrCat("strata_bench_scheduler_", getpid(), "_", next++);
    std::filesystem::remove_all(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A fresh engine: device KV as the workload asks; a host tier four times
// that, or a disk tier in `disk_dir` (room for everything), for the policies
// that have one.
absl::StatusOr<ServingEngine> MakeEngine(const BenchModel& bench, const bench::Workload& workload,
                                         const PolicySpec& policy, int threads,
                                         int64_t write_behind,
                                         const std::filesystem::path& disk_dir) {
  const engine::ModelConfig& config = bench.config;
  const int64_t block_bytes =
      2 * config.num_layers * config.num_kv_heads * config.head_dim * kBlockSize * 2;
  ServingOptions options;
  options.backend_options.threads = threads;
  options.backend_options.precision = kDefaultServingPrecision;  // what the daemon runs
  options.cache.block_size = kBlockSize;
  options.cache.device_blocks = (workload.device_kv_tokens + kBlockSize - 1) / kBlockSize;
  options.cache.write_behind_blocks_per_step = write_behind;
  options.cache.disk_low_priority_writes = kDaemonDiskLowPriorityWrites;
  if (policy.tier == LowerTier::kHost) {
    options.cache.host_bytes = static_cast<uint64_t>(4 * options.cache.device_blocks * block_bytes);
  }
  if (policy.tier == LowerTier::kDisk) {
    options.cache.disk_path = disk_dir.string();
    options.cache.disk_bytes = uint64_t{4} << 30;
  }
  absl::StatusOr<ServingEngine> engine =
      MakeServingEngine(bench.model, std::make_unique<NumberTokenizer>(config.vocab_size),
                        bench.fingerprint, options);
  if (!engine.ok()) return engine.status();
  engine->scheduler_options.policy = policy.policy;
  engine->scheduler_options.enable_prefix_cache = policy.prefix_cache;
  engine->scheduler_options.preemption = policy.preemption;
  engine->scheduler_options.yield_to_new_after_tokens = policy.yield_to_new_after_tokens;
  return engine;
}

// One short request on a throwaway scheduler with no cache, so that the
// measured run does not pay for first-touch page faults and thread start-up.
absl::Status WarmUp(ServingEngine& engine) {
  scheduler::SchedulerOptions options = engine.scheduler_options;
  options.host_tier = nullptr;
  options.disk_tier = nullptr;
  options.enable_prefix_cache = false;
  scheduler::Scheduler scheduler(options);
  scheduler::Request request{.id = 1};
  for (int i = 0; i < 64; ++i) request.prompt_ids.push_back(3 + i);
  request.sampling.temperature = 0;
  request.sampling.max_tokens = 4;
  request.sampling.ignore_eos = true;
  if (absl::Status added = scheduler.AddRequest(request); !added.ok()) return added;
  while (scheduler.HasWork()) {
    for (const scheduler::TokenEvent& event : scheduler::RunStep(scheduler, *engine.backend)) {
      if (!event.error.ok()) return event.error;
    }
  }
  return absl::OkStatus();
}

scheduler::Request MakeRequest(const bench::Replay& replay, int64_t index, bool hints) {
  const bench::WorkloadRequest& spec = replay.workload().requests[static_cast<size_t>(index)];
  scheduler::Request request{.id = index + 1};
  const std::vector<int32_t>& prompt = replay.Prompt(index);
  request.prompt_ids.assign(prompt.begin(), prompt.end());
  request.sampling.temperature = 0;
  request.sampling.max_tokens = spec.max_tokens;
  request.sampling.ignore_eos = true;  // every policy generates the same number of tokens
  if (hints) {
    request.session_id = spec.session_id;
    request.workflow_id = spec.workflow_id;
    request.agent_id = spec.agent_id;
    request.next_agent_ids = spec.next_agent_ids;
  }
  return request;
}

// Feeds one step's events to the replay; an error event ends the run.
absl::Status ApplyEvents(const std::vector<scheduler::TokenEvent>& events, double now_s,
                         bench::Replay& replay) {
  for (const scheduler::TokenEvent& event : events) {
    const int64_t index = event.request_id - 1;
    if (!event.error.ok()) {
      return absl::InternalError(
          absl::StrCat("request ", index, " failed: ", event.error.ToString()));
    }
    if (event.token_id) replay.OnToken(index, *event.token_id, now_s);
    if (event.finished) {
      if (event.finish_reason != scheduler::FinishReason::kLength) {
        return absl::InternalError(absl::StrCat("request ", index, " finished early: ",
                                                scheduler::FinishReasonName(event.finish_reason)));
      }
      replay.OnFinished(index, now_s);
    }
  }
  return absl::OkStatus();
}

struct RunResult {
  bench::PolicyFigures figures;
  scheduler::SchedulerCounters counters;
  int64_t preemptions = 0;
  cache::CacheStats cache;
  int64_t steps = 0;  // engine steps that ran
  double busy_s = 0;  // wall time inside them; the rest of the makespan was idle
  // CPU time of the whole process (all threads) during the replay: the work
  // done, which other processes on a shared machine inflate less than the
  // wall time.
  double cpu_s = 0;
};

double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + 1e-6 * t.tv_usec; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Replays `workload` on `engine` in real time.
absl::StatusOr<RunResult> Replay(ServingEngine& engine, const bench::Workload& workload,
                                 const PolicySpec& policy) {
  scheduler::Scheduler scheduler(engine.scheduler_options);
  bench::Replay replay(workload);
  int64_t steps = 0;
  double busy_s = 0;
  const double cpu_start = ProcessCpuSeconds();
  const Clock::time_point start = Clock::now();
  auto elapsed = [&start] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  while (!replay.done()) {
    const double now = elapsed();
    if (now > kMaxReplaySeconds) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the replay did not finish in ", kMaxReplaySeconds, " s: ", replay.num_finished(), " of ",
          workload.requests.size(), " requests done, ", scheduler.num_waiting(), " waiting, ",
          scheduler.num_running(), " running"));
    }
    for (int64_t index : replay.TakeReady(now)) {
      if (absl::Status added = scheduler.AddRequest(MakeRequest(replay, index, policy.hints));
          !added.ok()) {
        return absl::InternalError(absl::StrCat("request ", index, ": ", added.ToString()));
      }
    }
    if (!scheduler.HasWork()) {
      std::optional<double> next = replay.NextStart();
      if (!next) return absl::InternalError("the replay stalled: nothing runs, nothing can start");
      std::this_thread::sleep_for(std::chrono::duration<double>(std::max(0.0, *next - now)));
      continue;
    }
    const double step_start = elapsed();
    std::vector<scheduler::TokenEvent> events = scheduler::RunStep(scheduler, *engine.backend);
    const double step_end = elapsed();
    ++steps;
    busy_s += step_end - step_start;
    if (absl::Status applied = ApplyEvents(events, step_end, replay); !applied.ok()) {
      return applied;
    }
  }
  RunResult result;
  result.figures.workload = workload.name;
  result.figures.policy = policy.name;
  result.figures.summary = replay.Summarize();
  result.cache = scheduler.cache_stats();
  for (int64_t tokens : result.cache.hit_tokens) result.figures.hit_tokens += tokens;
  result.counters = scheduler.counters();
  result.preemptions = scheduler.num_preemptions();
  result.steps = steps;
  result.busy_s = busy_s;
  result.cpu_s = ProcessCpuSeconds() - cpu_start;
  return result;
}

std::string Details(const RunResult& run) {
  const cache::CacheStats& c = run.cache;
  return absl::StrFormat(
      "  %-14s %-16s steps %4d busy %5.1f%% cpu %5.1fs  hits device/host/disk %d/%d/%d  "
      "missed %d  evicted %d  demoted %d  promoted %d  preemptions %d (swap %d, recompute "
      "%d; yields to new %d)  grouped waits %d  prefetched %d\n",
      run.figures.workload, run.figures.policy, run.steps,
      100 * run.busy_s / std::max(run.figures.summary.makespan_s, 1e-9), run.cpu_s, c.hit_tokens[0],
      c.hit_tokens[1], c.hit_tokens[2], c.miss_tokens, c.evicted_blocks, c.demoted_blocks,
      c.promoted_blocks, run.preemptions, run.counters.preemptions_swap,
      run.counters.preemptions_recompute, run.counters.yields_to_new, run.counters.grouped_waits,
      run.counters.prefetched_blocks);
}

struct Settings {
  std::string config_path;
  double scale = 1;
  uint64_t seed = 1;
  int threads = 0;
  int64_t write_behind = kDaemonWriteBehindBlocksPerStep;  // the daemon's, for every policy
  int64_t reps = 1;
  std::vector<std::string> workloads;
  bool json = false;
};

absl::StatusOr<Settings> ParseSettings(const std::vector<std::string>& raw_args) {
  ArgSpec spec{.value_options = {"config", "scale", "seed", "threads", "reps", "workloads",
                                 "write-behind-blocks"},
               .flag_options = {"json"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return args.status();
  absl::StatusOr<double> scale = args->GetDouble("scale", 1.0);
  absl::StatusOr<int64_t> seed = args->GetInt("seed", 1);
  absl::StatusOr<int64_t> threads = args->GetInt("threads", 0);
  absl::StatusOr<int64_t> reps = args->GetInt("reps", kDefaultReps);
  absl::StatusOr<int64_t> write_behind =
      args->GetInt("write-behind-blocks", kDaemonWriteBehindBlocksPerStep);
  for (const absl::Status& s :
       {scale.status(), seed.status(), threads.status(), reps.status(), write_behind.status()}) {
    if (!s.ok()) return s;
  }
  if (!(*scale > 0 && *scale <= 8)) return absl::InvalidArgumentError("--scale must be in (0, 8]");
  if (*seed < 0) return absl::InvalidArgumentError("--seed must be >= 0");
  if (*threads < 0) return absl::InvalidArgumentError("--threads must be >= 0");
  if (*reps < 1) return absl::InvalidArgumentError("--reps must be >= 1");
  if (*write_behind < 0) return absl::InvalidArgumentError("--write-behind-blocks must be >= 0");
  Settings settings;
  settings.config_path =
      args->Get("config").value_or(BenchConfigPath("llama-20m-4k.json").string());
  settings.scale = *scale;
  settings.seed = static_cast<uint64_t>(*seed);
  settings.threads = static_cast<int>(*threads);
  settings.write_behind = *write_behind;
  settings.reps = *reps;
  settings.json = args->Has("json");
  const std::vector<std::string>& known = SuiteNames();
  const std::vector<std::string> names =
      absl::StrSplit(args->Get("workloads").value_or(absl::StrJoin(known, ",")), ',');
  for (const std::string& name : names) {
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      return absl::InvalidArgumentError(absl::StrCat("--workloads: unknown workload '", name, "' (",
                                                     absl::StrJoin(known, ", "), ")"));
    }
    settings.workloads.push_back(name);
  }
  return settings;
}

// One fresh engine, warmed up, replaying `workload` under `policy`.
absl::StatusOr<RunResult> RunOne(const BenchModel& bench, const bench::Workload& workload,
                                 const PolicySpec& policy, int threads, int64_t write_behind) {
  const Clock::time_point start = Clock::now();
  TempDir disk_dir;
  absl::StatusOr<ServingEngine> engine =
      MakeEngine(bench, workload, policy, threads, write_behind, disk_dir.path());
  if (!engine.ok()) return engine.status();
  if (absl::Status warm = WarmUp(*engine); !warm.ok()) return warm;
  absl::StatusOr<RunResult> run = Replay(*engine, workload, policy);
  if (!run.ok()) {
    return absl::Status(run.status().code(), absl::StrCat(workload.name, " / ", policy.name, ": ",
                                                          run.status().message()));
  }
  run->figures.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  std::cerr << absl::StrFormat("%s / %s: makespan %.2f s, wall %.1f s\n", workload.name,
                               policy.name, run->figures.summary.makespan_s, run->figures.wall_s);
  return run;
}

struct SuiteResult {
  Suite suite;
  std::vector<RunResult> runs;  // in the order of suite.policies
};

// Every selected suite under each of its policies, `reps` times. Each
// repetition rotates the order of the policies, so that none always runs
// first (or right after the slowest); of a policy's repetitions the one with
// the shortest makespan is kept, since on a shared machine other processes
// only ever slow a run down.
absl::StatusOr<std::vector<SuiteResult>> RunAll(const Settings& settings, const BenchModel& bench) {
  std::vector<SuiteResult> results;
  for (const std::string& name : settings.workloads) {
    Suite suite = MakeSuite(name, settings.scale, bench.config.vocab_size, settings.seed);
    const bench::Workload& workload = suite.workload;
    if (workload.max_sequence_tokens > bench.config.max_position_embeddings) {
      return absl::InvalidArgumentError(
          absl::StrCat(workload.name, " needs sequences of ", workload.max_sequence_tokens,
                       " tokens; the model's max_position_embeddings is ",
                       bench.config.max_position_embeddings));
    }
    const size_t num_policies = suite.policies.size();
    std::vector<std::optional<RunResult>> best(num_policies);
    std::vector<double> wall(num_policies, 0);
    for (int64_t rep = 0; rep < settings.reps; ++rep) {
      for (size_t k = 0; k < num_policies; ++k) {
        const size_t p = (k + static_cast<size_t>(rep)) % num_policies;
        absl::StatusOr<RunResult> run =
            RunOne(bench, workload, suite.policies[p], settings.threads, settings.write_behind);
        if (!run.ok()) return run.status();
        wall[p] += run->figures.wall_s;
        if (!best[p] || run->figures.summary.makespan_s < best[p]->figures.summary.makespan_s) {
          best[p] = *std::move(run);
        }
      }
    }
    SuiteResult result{.suite = std::move(suite)};
    for (size_t p = 0; p < num_policies; ++p) {
      best[p]->figures.wall_s = wall[p];
      result.runs.push_back(*std::move(best[p]));
    }
    results.push_back(std::move(result));
  }
  return results;
}

// The suite's table, its headline ratios and its extra pairs.
std::string SuiteReport(const SuiteResult& result) {
  std::vector<bench::PolicyFigures> figures;
  for (const RunResult& run : result.runs) figures.push_back(run.figures);
  std::string out = bench::FiguresTable(figures, result.suite.headline, result.suite.baselines);
  for (const auto& [policy, baseline] : result.suite.extra_ratios) {
    const std::string table = bench::FiguresTable(figures, policy, {baseline});
    // Only the ratio lines: the rows are printed above.
    out.append(table.substr(table.rfind("\n  ", table.size() - 2) + 1));
  }
  return out;
}

}  // namespace

int RunBenchScheduler(const std::vector<std::string>& raw_args) {
  const std::string name = "bench";
  absl::StatusOr<Settings> settings = ParseSettings(raw_args);
  if (!settings.ok()) return UsageError(name, std::string(settings.status().message()));
  absl::StatusOr<engine::ModelConfig> config = ReadModelConfigFile(settings->config_path);
  absl::StatusOr<BenchModel> bench =
      config.ok() ? MakeBenchModel(*config) : absl::StatusOr<BenchModel>(config.status());
  absl::StatusOr<std::vector<SuiteResult>> results =
      bench.ok() ? RunAll(*settings, *bench)
                 : absl::StatusOr<std::vector<SuiteResult>>(bench.status());
  if (!results.ok()) {
    std::cerr << "strata bench scheduler: " << results.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << absl::StrFormat("strata bench scheduler: %s, scale %g, seed %d, best of %d\n",
                               settings->config_path, settings->scale, settings->seed,
                               settings->reps);
  std::vector<bench::PolicyFigures> figures;
  for (const SuiteResult& result : *results) {
    std::cout << "\n" << SuiteReport(result);
    std::cout << "counters:\n";
    for (const RunResult& run : result.runs) {
      figures.push_back(run.figures);
      std::cout << Details(run);
    }
  }
  if (settings->json) std::cout << bench::FiguresJson(figures) << "\n";
  std::cout << std::flush;
  return kExitOk;
}

}  // namespace strata::server
