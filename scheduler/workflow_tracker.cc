#include "scheduler/workflow_tracker.h"

#include <algorithm>
#include <utility>

namespace strata::scheduler {

void WorkflowTracker::RecordTurn(const AgentKey& agent, AgentTurn turn, Clock::time_point now) {
  AgentTurn& slot = agents_[agent];
  // A hold on the old blocks moves to the new ones: the agent may be named
  // again before its next request.
  turn.soon = slot.soon;
  turn.soon_until = slot.soon_until;
  if (turn.soon) holds_.Hold(turn.keys, cache::Priority::kWorkflowSoon);
  EndHold(slot);
  turn.last_seen = now;
  slot = std::move(turn);
  next_expiry_ = std::min(next_expiry_, now + ttl_);
}

std::vector<AgentKey> WorkflowTracker::MarkNext(std::string_view salt, std::string_view workflow_id,
                                                absl::Span<const std::string> agent_ids,
                                                Clock::time_point now) {
  std::vector<AgentKey> known;
  for (const std::string& agent_id : agent_ids) {
    AgentKey key{std::string(salt), std::string(workflow_id), agent_id};
    auto it = agents_.find(key);
    if (it == agents_.end()) continue;
    AgentTurn& turn = it->second;
    if (!turn.soon) holds_.Hold(turn.keys, cache::Priority::kWorkflowSoon);
    turn.soon = true;
    turn.soon_until = now + ttl_;
    turn.last_seen = now;
    next_expiry_ = std::min(next_expiry_, now + ttl_);
    known.push_back(std::move(key));
  }
  return known;
}

void WorkflowTracker::OnAdmitted(const AgentKey& agent) {
  auto it = agents_.find(agent);
  if (it != agents_.end()) EndHold(it->second);
}

void WorkflowTracker::EndHold(AgentTurn& turn) {
  if (turn.soon) holds_.Drop(turn.keys, cache::Priority::kWorkflowSoon);
  turn.soon = false;
}

void WorkflowTracker::Expire(Clock::time_point now) {
  if (now < next_expiry_) return;
  next_expiry_ = Clock::time_point::max();
  for (auto it = agents_.begin(); it != agents_.end();) {
    AgentTurn& turn = it->second;
    if (turn.soon && now >= turn.soon_until) EndHold(turn);
    if (!turn.soon && now - turn.last_seen >= ttl_) {
      agents_.erase(it++);
      continue;
    }
    next_expiry_ = std::min(next_expiry_, turn.soon ? turn.soon_until : turn.last_seen + ttl_);
    ++it;
  }
}

const AgentTurn* WorkflowTracker::Find(const AgentKey& agent) const {
  auto it = agents_.find(agent);
  return it == agents_.end() ? nullptr : &it->second;
}

}  // namespace strata::scheduler
