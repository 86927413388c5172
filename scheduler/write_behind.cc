#include "scheduler/write_behind.h"

#include <optional>

namespace strata::scheduler {

WriteBehind::WriteBehind(int64_t blocks_per_step, int64_t max_queued)
    : blocks_per_step_(blocks_per_step), max_queued_(max_queued) {}

void WriteBehind::Enqueue(absl::Span<const cache::BlockKey> keys) {
  if (!enabled()) return;
  for (const cache::BlockKey& key : keys) {
    if (!queued_.insert(key).second) continue;
    queue_.push_back(key);
  }
  while (num_queued() > max_queued_) {
    queued_.erase(queue_.front());
    queue_.pop_front();
  }
}

int64_t WriteBehind::AddTo(PlanBuilder& builder, const cache::KvCacheManager& cache,
                           cache::Demotions& demotions, bool idle) {
  const int64_t budget = idle ? blocks_per_step_ * kIdleFactor : blocks_per_step_;
  int64_t copies = 0;
  while (!queue_.empty() && copies < budget) {
    const cache::BlockKey key = queue_.front();
    queue_.pop_front();
    queued_.erase(key);
    // Evicted meanwhile: its eviction already offered it to the tier.
    const std::optional<cache::BlockId> block = cache.IndexedBlock(key);
    if (!block.has_value()) continue;
    // nullopt: held already, declined, or no memory for it now (then its
    // eviction tries again).
    const std::optional<absl::Span<std::byte>> dst = demotions.Add(key);
    if (!dst.has_value()) continue;
    builder.Demote(*block, *dst);
    ++copies;
  }
  return copies;
}

}  // namespace strata::scheduler
