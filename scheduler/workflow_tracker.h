// Workflow affinity (a policy of the scheduler, tested alone in
// tests/scheduler/workflow_tracker_test.cc), after KVFlow: a workflow's
// agents take turns, and the request that runs now names the agents that run
// next (Request::next_agent_ids). Each agent's last token sequence (the
// prompt and output of its last turn: what its next request starts with) is
// remembered per (cache salt, workflow id, agent id). When an agent is named
// to run next, its blocks are held at kWorkflowSoon (evicted after plain
// blocks, before session context) until its next request is admitted, and
// the scheduler prefetches whatever of them was demoted to a lower tier.
//
// Steps to execution (KVFlow's eviction priority): next_agent_ids is read as
// the order in which the agents run, the first next. An agent named at
// position k is k + 1 steps from running; a held agent the latest request
// did not name is due now (0 steps). After each MarkNext the held agents'
// blocks are re-applied furthest first (KeyHolds::Touch), so that within
// kWorkflowSoon the pool evicts the agent that runs last first, and each
// agent's later blocks before its earlier ones. A cyclic workflow naming
// every other agent in turn order thus keeps the agents that run soonest,
// where LRU would evict each agent just before its turn. Only the first
// kPrefetchDepth named agents are returned for prefetch.
//
// Both the hold and the memory are bounded in time: a hold ends `ttl` after
// the agent was named, and an agent neither seen nor named for `ttl` is
// forgotten (the scheduler passes SchedulerOptions::session_ttl).
//
// Holds go through a borrowed KeyHolds. Not thread-safe: the engine thread's.
#ifndef STRATA_SCHEDULER_WORKFLOW_TRACKER_H_
#define STRATA_SCHEDULER_WORKFLOW_TRACKER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "scheduler/key_holds.h"
#include "scheduler/request.h"

namespace strata::scheduler {

// (cache salt, workflow id, agent id).
using AgentKey = std::tuple<std::string, std::string, std::string>;

// What an agent's last turn left.
struct AgentTurn {
  std::vector<TokenId> tokens;        // whose K/V were computed
  std::vector<cache::BlockKey> keys;  // chain keys of its full blocks
  int64_t public_blocks = 0;          // of the request's CacheSalt
  Clock::time_point last_seen{};
  bool soon = false;  // named to run next; keys held at kWorkflowSoon
  Clock::time_point soon_until{};
  // While soon: steps until it runs, as of its workflow's last MarkNext.
  int64_t steps_to_execution = 0;
};

// Named agents (from the first) whose demoted blocks are prefetched: about
// as many agents as a device that holds a few of them has room for; agents
// further out would only be evicted again before their turn.
inline constexpr int64_t kPrefetchDepth = 4;

class WorkflowTracker {
 public:
  // Borrows `holds`, which must outlive the tracker.
  WorkflowTracker(KeyHolds& holds, Clock::duration ttl) : holds_(holds), ttl_(ttl) {}

  // The agent's turn ended: remember what it computed (replacing its last).
  void RecordTurn(const AgentKey& agent, AgentTurn turn, Clock::time_point now);

  // `agent_ids` of (salt, workflow) run next, in that order (a repeated id
  // counts at its first place): hold each known agent's blocks at
  // kWorkflowSoon until its request is admitted or ttl passes, and order the
  // workflow's held blocks by steps to execution. Returns the known agents
  // among the first kPrefetchDepth named, soonest first, for prefetch.
  std::vector<AgentKey> MarkNext(std::string_view salt, std::string_view workflow_id,
                                 absl::Span<const std::string> agent_ids, Clock::time_point now);

  // The agent's request was admitted: its blocks are in use, the hold ends.
  void OnAdmitted(const AgentKey& agent);

  // Ends holds and forgets agents past their time.
  void Expire(Clock::time_point now);

  // The keys of (salt, workflow)'s held agents in eviction order: the agent
  // furthest from running first, each agent's blocks last first. Applying
  // priorities in this order restores it in the pool.
  std::vector<cache::BlockKey> EvictionOrder(std::string_view salt,
                                             std::string_view workflow_id) const;

  // The keys of the agents of `agent`'s workflow held soon and further from
  // running than it (their blocks may make room for its prefetch).
  std::vector<cache::BlockKey> KeysRunningAfter(const AgentKey& agent) const;

  // nullptr when unknown. Valid until the next non-const call.
  const AgentTurn* Find(const AgentKey& agent) const;
  bool IsSoon(const AgentKey& agent) const {
    const AgentTurn* turn = Find(agent);
    return turn != nullptr && turn->soon;
  }
  int64_t num_agents() const { return static_cast<int64_t>(agents_.size()); }

 private:
  void EndHold(AgentTurn& turn);
  // The held agents of (salt, workflow), furthest from running first.
  std::vector<const std::pair<const AgentKey, AgentTurn>*> HeldByDistance(
      std::string_view salt, std::string_view workflow_id) const;

  KeyHolds& holds_;
  const Clock::duration ttl_;
  absl::flat_hash_map<AgentKey, AgentTurn> agents_;
  // Nothing expires before this: Expire skips the scan until then.
  Clock::time_point next_expiry_ = Clock::time_point::max();
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_WORKFLOW_TRACKER_H_
