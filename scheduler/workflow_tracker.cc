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
  turn.steps_to_execution = slot.steps_to_execution;
  if (turn.soon) holds_.Hold(turn.keys, cache::Priority::kWorkflowSoon);
  EndHold(slot);
  turn.last_seen = now;
  slot = std::move(turn);
  next_expiry_ = std::min(next_expiry_, now + ttl_);
}

std::vector<AgentKey> WorkflowTracker::MarkNext(std::string_view salt, std::string_view workflow_id,
                                                absl::Span<const std::string> agent_ids,
                                                Clock::time_point now) {
  // Held agents this request does not name are due now. O(agents known): a
  // scan per workflow request, like Expire's.
  for (auto& [key, turn] : agents_) {
    if (turn.soon && std::get<0>(key) == salt && std::get<1>(key) == workflow_id) {
      turn.steps_to_execution = 0;
    }
  }
  std::vector<AgentKey> to_prefetch;
  std::vector<std::string_view> seen;
  for (size_t k = 0; k < agent_ids.size(); ++k) {
    const std::string& agent_id = agent_ids[k];
    if (std::find(seen.begin(), seen.end(), agent_id) != seen.end()) continue;
    seen.push_back(agent_id);
    AgentKey key{std::string(salt), std::string(workflow_id), agent_id};
    auto it = agents_.find(key);
    if (it == agents_.end()) continue;
    AgentTurn& turn = it->second;
    if (!turn.soon) holds_.Hold(turn.keys, cache::Priority::kWorkflowSoon);
    turn.soon = true;
    turn.soon_until = now + ttl_;
    turn.last_seen = now;
    turn.steps_to_execution = static_cast<int64_t>(k) + 1;
    next_expiry_ = std::min(next_expiry_, now + ttl_);
    if (static_cast<int64_t>(k) < kPrefetchDepth) to_prefetch.push_back(std::move(key));
  }
  holds_.Touch(EvictionOrder(salt, workflow_id));
  return to_prefetch;
}

std::vector<const std::pair<const AgentKey, AgentTurn>*> WorkflowTracker::HeldByDistance(
    std::string_view salt, std::string_view workflow_id) const {
  std::vector<const std::pair<const AgentKey, AgentTurn>*> held;
  for (const auto& entry : agents_) {
    const AgentKey& key = entry.first;
    if (entry.second.soon && std::get<0>(key) == salt && std::get<1>(key) == workflow_id) {
      held.push_back(&entry);
    }
  }
  std::sort(held.begin(), held.end(), [](const auto* a, const auto* b) {
    if (a->second.steps_to_execution != b->second.steps_to_execution) {
      return a->second.steps_to_execution > b->second.steps_to_execution;
    }
    return a->first < b->first;  // deterministic among equals
  });
  return held;
}

std::vector<cache::BlockKey> WorkflowTracker::EvictionOrder(std::string_view salt,
                                                            std::string_view workflow_id) const {
  std::vector<cache::BlockKey> order;
  for (const auto* entry : HeldByDistance(salt, workflow_id)) {
    const std::vector<cache::BlockKey>& keys = entry->second.keys;
    order.insert(order.end(), keys.rbegin(), keys.rend());
  }
  return order;
}

std::vector<cache::BlockKey> WorkflowTracker::KeysRunningAfter(const AgentKey& agent) const {
  std::vector<cache::BlockKey> keys;
  const AgentTurn* turn = Find(agent);
  if (turn == nullptr || !turn->soon) return keys;
  for (const auto* entry : HeldByDistance(std::get<0>(agent), std::get<1>(agent))) {
    if (entry->second.steps_to_execution <= turn->steps_to_execution) break;
    keys.insert(keys.end(), entry->second.keys.begin(), entry->second.keys.end());
  }
  return keys;
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
