// Who wants which cached block kept, by content key: the eviction priority
// that sessions, pins and workflows ask for (cache::Priority), counted per
// key so that one holder letting go does not demote a block another still
// holds. Keys, not block ids: a block id is reused once its content is
// evicted, a key names the content wherever it lives (and comes back under
// the same key after a promotion).
//
// The scheduler applies Effective() to the device block of each changed key
// (cache::KvCacheManager::SetPriority). Not thread-safe: the engine thread's.
#ifndef STRATA_SCHEDULER_KEY_HOLDS_H_
#define STRATA_SCHEDULER_KEY_HOLDS_H_

#include <array>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "cache/block_pool.h"

namespace strata::scheduler {

class KeyHolds {
 public:
  // One hold on each key at `priority` (above kNormal; CHECK-fails otherwise).
  void Hold(absl::Span<const cache::BlockKey> keys, cache::Priority priority);
  // Drops one hold taken by Hold with the same priority; CHECK-fails if none.
  void Drop(absl::Span<const cache::BlockKey> keys, cache::Priority priority);

  // The highest priority any holder asks for; kNormal when none.
  cache::Priority Effective(const cache::BlockKey& key) const;

  // Asks for `keys` to be re-applied, in this order, even though their
  // priority did not change: applying a priority puts a cached block at the
  // most recent end of its class (cache::BlockPool::SetPriority), so the
  // order of the last application is the eviction order within a class
  // (the first applied goes first). The workflow tracker orders agents'
  // blocks by steps to execution this way.
  void Touch(absl::Span<const cache::BlockKey> keys);

  // The keys whose effective priority changed, or that were touched, since
  // the last call, in the order they changed (a key may repeat: the last
  // application decides its place).
  std::vector<cache::BlockKey> TakeChanged();

  int64_t num_keys() const { return static_cast<int64_t>(counts_.size()); }

 private:
  using Counts = std::array<int32_t, cache::kNumPriorities>;
  static cache::Priority Highest(const Counts& counts);

  absl::flat_hash_map<cache::BlockKey, Counts> counts_;
  std::vector<cache::BlockKey> changed_;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_KEY_HOLDS_H_
