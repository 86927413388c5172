#include "scheduler/workflow_prefetcher.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/check.h"

namespace strata::scheduler {

void WorkflowPrefetcher::Start(const AgentKey& agent, const AgentTurn& turn) {
  if (host_ == nullptr && disk_ == nullptr) return;
  for (const Pending& pending : pending_) {
    if (pending.agent == agent) return;  // already on its way
  }
  const size_t cached = cache_.FindCachedPrefixByKeys(turn.keys).blocks.size();
  if (cached >= turn.keys.size()) return;  // all on the device (and held there)
  auto load = std::make_unique<cache::PrefixLoad>(absl::MakeConstSpan(turn.keys).subspan(cached),
                                                  host_, disk_);
  if (load->num_found() == 0) return;
  pending_.push_back(Pending{agent, std::move(load), static_cast<int64_t>(cached)});
}

bool WorkflowPrefetcher::HasReadsInFlight() const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [](const Pending& pending) { return !pending.load->IsReady(); });
}

int64_t WorkflowPrefetcher::Room(const cache::CachedPrefix& prefix, const AgentKey& agent,
                                 const WorkflowTracker& workflows) const {
  // O(blocks), but only when a prefetch is ready to land.
  int64_t room = cache_.CountAvailableBelow(cache::Priority::kWorkflowSoon);
  // The prefix blocks it takes references to are not room.
  const cache::BlockPool& pool = cache_.pool();
  for (cache::BlockId block : prefix.blocks) {
    if (pool.state(block) == cache::BlockState::kCached &&
        pool.priority(block) < cache::Priority::kWorkflowSoon) {
      --room;
    }
  }
  // Agents that run after this one give way to it.
  for (const cache::BlockKey& key : workflows.KeysRunningAfter(agent)) {
    std::optional<cache::BlockId> block = cache_.IndexedBlock(key);
    if (block && pool.state(*block) == cache::BlockState::kCached &&
        pool.priority(*block) == cache::Priority::kWorkflowSoon) {
      ++room;
    }
  }
  return room;
}

void WorkflowPrefetcher::Run(const WorkflowTracker& workflows, PlanBuilder& builder) {
  const int64_t block_size = cache_.block_size();
  for (auto it = pending_.begin(); it != pending_.end();) {
    const AgentTurn* turn = workflows.Find(it->agent);
    if (turn == nullptr || !turn->soon) {  // its request came, or its hold expired
      it = pending_.erase(it);
      continue;
    }
    if (!it->load->IsReady()) {
      ++it;
      continue;
    }
    const cache::CachedPrefix prefix = cache_.FindCachedPrefixByKeys(turn->keys);
    const int64_t device_blocks = static_cast<int64_t>(prefix.blocks.size());
    std::vector<cache::LoadedBlock> loaded;
    if (device_blocks >= it->first_block) {  // else a gap: the device prefix shrank
      loaded = it->load->Blocks();
      const size_t skip = static_cast<size_t>(device_blocks - it->first_block);
      loaded.erase(loaded.begin(),
                   loaded.begin() + static_cast<std::ptrdiff_t>(std::min(skip, loaded.size())));
    }
    const int64_t n =
        loaded.empty() ? 0 : std::min<int64_t>(loaded.size(), Room(prefix, it->agent, workflows));
    if (n <= 0) {  // nothing left to bring, or no room: a guess is dropped
      it = pending_.erase(it);
      continue;
    }
    PrefetchFlight flight{.seq = next_seq_++, .agent = it->agent};
    const int64_t num_tokens = (device_blocks + n) * block_size;
    flight.tokens.assign(turn->tokens.begin(), turn->tokens.begin() + num_tokens);
    const std::string& salt = std::get<0>(it->agent);
    std::optional<cache::BlockTable> table =
        cache_.AddSequence(flight.seq, cache::CacheSalt(salt, turn->public_blocks), prefix,
                           num_tokens, /*num_query_tokens=*/0);
    CHECK(table.has_value());  // the room was there
    for (int64_t i = 0; i < n; ++i) {
      const cache::LoadedBlock& block = loaded[static_cast<size_t>(i)];
      builder.Promote((*table)[static_cast<size_t>(device_blocks + i)], block.bytes);
      flight.tiers.push_back(block.tier);
    }
    flight.load = std::move(it->load);
    builder.RecordPrefetch(std::move(flight));
    it = pending_.erase(it);
  }
}

int64_t WorkflowPrefetcher::Finish(bool performed, std::vector<PrefetchFlight> flights,
                                   const WorkflowTracker& workflows, const KeyHolds& holds) {
  int64_t promoted = 0;
  std::vector<AgentKey> reorder;
  for (PrefetchFlight& flight : flights) {
    if (performed) {
      cache_.CommitFullBlocks(flight.seq, flight.tokens,
                              static_cast<int64_t>(flight.tokens.size()));
      for (cache::Tier tier : flight.tiers) cache_.RecordTransfer(tier, cache::Tier::kDevice, 1);
      promoted += static_cast<int64_t>(flight.tiers.size());
    }
    cache_.Free(flight.seq);  // registered blocks stay cached; the rest are freed
    if (performed && workflows.Find(flight.agent) != nullptr) reorder.push_back(flight.agent);
  }
  flights.clear();  // and the loads: the host blocks they pinned are let go
  // New blocks start at kNormal: give them what their holders ask for, then
  // restore each workflow's eviction order over them.
  const auto apply = [&](const std::vector<cache::BlockKey>& keys) {
    for (const cache::BlockKey& key : keys) {
      if (std::optional<cache::BlockId> block = cache_.IndexedBlock(key)) {
        cache_.SetPriority(absl::Span<const cache::BlockId>(&*block, 1), holds.Effective(key));
      }
    }
  };
  for (const AgentKey& agent : reorder) apply(workflows.Find(agent)->keys);
  for (size_t i = 0; i < reorder.size(); ++i) {
    const auto same_workflow = [&](const AgentKey& other) {
      return std::get<0>(other) == std::get<0>(reorder[i]) &&
             std::get<1>(other) == std::get<1>(reorder[i]);
    };
    if (std::any_of(reorder.begin(), reorder.begin() + static_cast<std::ptrdiff_t>(i),
                    same_workflow)) {
      continue;  // its workflow is done
    }
    apply(workflows.EvictionOrder(std::get<0>(reorder[i]), std::get<1>(reorder[i])));
  }
  return promoted;
}

}  // namespace strata::scheduler
