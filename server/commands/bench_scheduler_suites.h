// What `strata bench scheduler` runs (server/commands/bench_scheduler_command.cc):
// suites, each one workload replayed under a few policies, with the policy
// whose ratios against the others it prints. Besides the three workloads of
// bench/workloads.h under fcfs_nocache, fcfs_prefix and strata, two suites
// show policies where they must pay (issue 15):
//
//   cyclic_agents  KVFlow's setting: 10 agents with 2k-token private prompts
//                  take turns in a fixed cycle, each turn extending its own
//                  history by a message, and the device holds the histories
//                  of 3.5 of them. LRU evicts each agent just before its
//                  turn. Policies:
//                    lru          prefix cache, no lower tier: a miss recomputes;
//                    kvflow       + steps-to-execution retention (every
//                                 request names the agents after it in turn
//                                 order: next_agent_ids);
//                    lru_disk     prefix cache and a disk tier (RocksDB);
//                    kvflow_disk  + retention and prefetch of the next agents'
//                                 demoted blocks ahead of their turns.
//   sessions       64 chat sessions of 3 turns opening within about a second,
//                  whose contexts need twice the device KV: preemption and
//                  eviction under overload. Policies:
//                    fcfs_recompute    FCFS, prefix cache, preemption recomputes;
//                    strata_recompute  cache-aware order, session pinning,
//                                      a host tier, preemption recomputes;
//                    strata            the same with swap-or-recompute chosen
//                                      by measured cost (PreemptionCostModel),
//                                      and decodes yielding to requests with
//                                      no token yet (yield_to_new_after_tokens,
//                                      the daemon's default).
//
// Thread-safety: pure functions over plain values.
#ifndef STRATA_SERVER_COMMANDS_BENCH_SCHEDULER_SUITES_H_
#define STRATA_SERVER_COMMANDS_BENCH_SCHEDULER_SUITES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/workloads.h"
#include "scheduler/preemption_policy.h"
#include "scheduler/waiting_order.h"

namespace strata::server {

// The tier below the device a policy runs with.
enum class LowerTier : uint8_t { kNone, kHost, kDisk };

struct PolicySpec {
  std::string name;
  scheduler::SchedulingPolicy policy = scheduler::SchedulingPolicy::kFcfs;
  bool prefix_cache = true;
  LowerTier tier = LowerTier::kNone;
  bool hints = false;  // session, workflow and agent ids reach the scheduler
  scheduler::PreemptionMode preemption = scheduler::PreemptionMode::kAuto;
  int64_t yield_to_new_after_tokens = 0;  // SchedulerOptions' field of that name
};

struct Suite {
  bench::Workload workload;
  std::vector<PolicySpec> policies;
  // Ratios printed: headline / each baseline (policy names of this suite).
  std::string headline;
  std::vector<std::string> baselines;
  // More pairs (policy, baseline) worth a ratio line.
  std::vector<std::pair<std::string, std::string>> extra_ratios;
};

// The names --workloads accepts, in the default order.
const std::vector<std::string>& SuiteNames();

// The suite called `name` (one of SuiteNames()), its workload scaled by
// `scale` (lengths and counts, within the bounds that keep its structure)
// and drawn from `seed`.
Suite MakeSuite(const std::string& name, double scale, int64_t vocab_size, uint64_t seed);

// The cyclic agents workload: `agents` agents in a fixed cycle for `rounds`
// rounds, each request naming every later step's agent, in turn order, up to
// one full cycle (next_agent_ids), so that steps to execution are known.
bench::Workload MakeCyclicAgentsWorkload(int64_t agents, int64_t private_tokens, int64_t rounds,
                                         double device_agents, int64_t vocab_size, uint64_t seed);

}  // namespace strata::server

#endif  // STRATA_SERVER_COMMANDS_BENCH_SCHEDULER_SUITES_H_
