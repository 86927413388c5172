// `strata bench`: dispatches to one benchmark per subcommand, each in its
// own file (bench_engine_command.cc, bench_cache_command.cc,
// bench_scheduler_command.cc, bench_serve_command.cc, bench_tiers_command.cc).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/commands/args.h"
#include "server/commands/bench_blend.h"
#include "server/commands/bench_cache.h"
#include "server/commands/bench_engine.h"
#include "server/commands/bench_scheduler.h"
#include "server/commands/bench_serve.h"
#include "server/commands/bench_tiers.h"
#include "server/commands/command_registry.h"

namespace strata::server {
namespace {

constexpr char kName[] = "bench";

int RunBench(const std::vector<std::string>& args) {
  const std::vector<std::string> rest(args.empty() ? args.end() : args.begin() + 1, args.end());
  if (!args.empty() && args[0] == "engine") return RunBenchEngine(rest);
  if (!args.empty() && args[0] == "cache") return RunBenchCache(rest);
  if (!args.empty() && args[0] == "blend") return RunBenchBlend(rest);
  if (!args.empty() && args[0] == "scheduler") return RunBenchScheduler(rest);
  if (!args.empty() && args[0] == "serve") return RunBenchServe(rest);
  if (!args.empty() && args[0] == "tiers") return RunBenchTiers(rest);
  return UsageError(kName, "which benchmark? (engine, cache, blend, scheduler, serve, tiers)");
}

const CommandRegistrar kRegistrar({
    .name = kName,
    .usage = absl::StrCat("engine [--backend cpu|cuda|auto] "
                          "[--model DIR | --random-weights --config FILE.json] "
                          "[--contexts 16,128,512] [--batches 1,4,16] "
                          "[--precision split|bf16|f32] [--out FILE.json] | ",
                          kBenchCacheUsage, " | ", kBenchBlendUsage, " | ", kBenchSchedulerUsage, " | ", kBenchServeUsage, " | ",
                          kBenchTiersUsage),
    .run = RunBench,
});

}  // namespace
}  // namespace strata::server
