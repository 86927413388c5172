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
};

class WorkflowTracker {
 public:
  // Borrows `holds`, which must outlive the tracker.
  WorkflowTracker(KeyHolds& holds, Clock::duration ttl) : holds_(holds), ttl_(ttl) {}

  // The agent's turn ended: remember what it computed (replacing its last).
  void RecordTurn(const AgentKey& agent, AgentTurn turn, Clock::time_point now);

  // `agent_ids` of (salt, workflow) run next: hold each known agent's blocks
  // at kWorkflowSoon until its request is admitted or ttl passes. Returns the
  // known agents, for prefetch.
  std::vector<AgentKey> MarkNext(std::string_view salt, std::string_view workflow_id,
                                 absl::Span<const std::string> agent_ids, Clock::time_point now);

  // The agent's request was admitted: its blocks are in use, the hold ends.
  void OnAdmitted(const AgentKey& agent);

  // Ends holds and forgets agents past their time.
  void Expire(Clock::time_point now);

  // nullptr when unknown. Valid until the next non-const call.
  const AgentTurn* Find(const AgentKey& agent) const;
  bool IsSoon(const AgentKey& agent) const {
    const AgentTurn* turn = Find(agent);
    return turn != nullptr && turn->soon;
  }
  int64_t num_agents() const { return static_cast<int64_t>(agents_.size()); }

 private:
  void EndHold(AgentTurn& turn);

  KeyHolds& holds_;
  const Clock::duration ttl_;
  absl::flat_hash_map<AgentKey, AgentTurn> agents_;
  // Nothing expires before this: Expire skips the scan until then.
  Clock::time_point next_expiry_ = Clock::time_point::max();
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_WORKFLOW_TRACKER_H_
