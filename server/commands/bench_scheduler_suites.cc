#include "server/commands/bench_scheduler_suites.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "server/config/daemon_config.h"

namespace strata::server {
namespace {

using scheduler::PreemptionMode;
using scheduler::SchedulingPolicy;

int64_t Scaled(int64_t value, double scale, int64_t at_least) {
  return std::max(at_least, static_cast<int64_t>(std::llround(static_cast<double>(value) * scale)));
}

Suite ClassicSuite(bench::Workload workload) {
  Suite suite{.workload = std::move(workload)};
  suite.policies = {
      {.name = "fcfs_nocache", .prefix_cache = false},
      {.name = "fcfs_prefix", .tier = LowerTier::kHost},
      {.name = "strata",
       .policy = SchedulingPolicy::kCacheAware,
       .tier = LowerTier::kHost,
       .hints = true},
  };
  suite.headline = "strata";
  suite.baselines = {"fcfs_nocache", "fcfs_prefix"};
  return suite;
}

Suite CyclicAgentsSuite(double scale, int64_t vocab_size, uint64_t seed) {
  constexpr int64_t kAgents = 10;
  constexpr double kDeviceAgents = 3.5;
  Suite suite{.workload =
                  MakeCyclicAgentsWorkload(kAgents, Scaled(2048, scale, 64), Scaled(3, scale, 2),
                                           kDeviceAgents, vocab_size, seed)};
  const auto kvflow = SchedulingPolicy::kCacheAware;
  suite.policies = {
      {.name = "lru"},
      {.name = "kvflow", .policy = kvflow, .hints = true},
      {.name = "lru_disk", .tier = LowerTier::kDisk},
      {.name = "kvflow_disk", .policy = kvflow, .tier = LowerTier::kDisk, .hints = true},
  };
  suite.headline = "kvflow_disk";
  suite.baselines = {"lru", "lru_disk"};
  suite.extra_ratios = {{"kvflow", "lru"}};
  return suite;
}

Suite SessionsSuite(double scale, int64_t vocab_size, uint64_t seed) {
  bench::ChatOptions chat;
  chat.sessions = Scaled(64, scale, 4);
  chat.turns = 2;
  chat.system_tokens = Scaled(256, scale, 32);
  chat.user_tokens = Scaled(128, scale, 32);
  chat.output_tokens = static_cast<int32_t>(Scaled(128, scale, 4));
  chat.sessions_per_s = 64;  // all open within about a second: overload
  chat.think_s = 0.5;
  // Every session is active at once and their contexts need twice the
  // device KV.
  chat.device_fraction = 0.25;
  bench::Workload workload = bench::MakeChatWorkload(chat, vocab_size, seed);
  workload.name = "sessions";
  Suite suite{.workload = std::move(workload)};
  suite.policies = {
      {.name = "fcfs_recompute", .preemption = PreemptionMode::kRecompute},
      {.name = "strata_recompute",
       .policy = SchedulingPolicy::kCacheAware,
       .tier = LowerTier::kHost,
       .hints = true,
       .preemption = PreemptionMode::kRecompute},
      {.name = "strata",
       .policy = SchedulingPolicy::kCacheAware,
       .tier = LowerTier::kHost,
       .hints = true,
       .preemption = PreemptionMode::kAuto,
       .yield_to_new_after_tokens = kDaemonYieldToNewAfterTokens},
  };
  suite.headline = "strata";
  suite.baselines = {"fcfs_recompute", "strata_recompute"};
  return suite;
}

}  // namespace

const std::vector<std::string>& SuiteNames() {
  static const std::vector<std::string> kNames = {"chat", "shared_prefix", "agents",
                                                  "cyclic_agents", "sessions"};
  return kNames;
}

Suite MakeSuite(const std::string& name, double scale, int64_t vocab_size, uint64_t seed) {
  const bench::WorkloadShapes shapes = bench::ScaledShapes(scale);
  if (name == "chat") return ClassicSuite(bench::MakeChatWorkload(shapes.chat, vocab_size, seed));
  if (name == "shared_prefix") {
    return ClassicSuite(bench::MakeSharedPrefixWorkload(shapes.shared_prefix, vocab_size, seed));
  }
  if (name == "agents") {
    return ClassicSuite(bench::MakeAgentsWorkload(shapes.agents, vocab_size, seed));
  }
  if (name == "cyclic_agents") return CyclicAgentsSuite(scale, vocab_size, seed);
  CHECK(name == "sessions");
  return SessionsSuite(scale, vocab_size, seed);
}

bench::Workload MakeCyclicAgentsWorkload(int64_t agents, int64_t private_tokens, int64_t rounds,
                                         double device_agents, int64_t vocab_size, uint64_t seed) {
  bench::AgentsOptions options{.agents = agents,
                               .private_tokens = private_tokens,
                               .rounds = rounds,
                               .message_tokens = 32,
                               .output_tokens = 16,
                               .device_agents = device_agents};
  bench::Workload workload = bench::MakeAgentsWorkload(options, vocab_size, seed);
  workload.name = "cyclic_agents";
  // The workflow is known in full: each step names the agents of the steps
  // after it, in order, for one cycle (KVFlow's agent step graph).
  const auto steps = static_cast<int64_t>(workload.requests.size());
  for (int64_t step = 0; step < steps; ++step) {
    std::vector<std::string>& next = workload.requests[static_cast<size_t>(step)].next_agent_ids;
    next.clear();
    for (int64_t later = step + 1; later < std::min(steps, step + agents); ++later) {
      next.push_back(absl::StrCat("agent-", later % agents));
    }
  }
  return workload;
}

}  // namespace strata::server
