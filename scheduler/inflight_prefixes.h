// Grouping of requests that share an uncached prefix (the kCacheAware
// policy): the blocks that admitted sequences are computing (or loading) now
// and have not yet committed to the prefix index, by chained key. A waiting
// request whose next uncached block is among them waits for that sequence to
// commit it, then is admitted with a hit, instead of computing the same
// blocks a second time in parallel. A key commits to its whole prefix, so an
// equal key means the same tokens after the same prefix.
//
// Rebuilt by the scheduler at every step, so a preempted or finished
// sequence simply drops out. Not thread-safe: the engine thread's.
#ifndef STRATA_SCHEDULER_INFLIGHT_PREFIXES_H_
#define STRATA_SCHEDULER_INFLIGHT_PREFIXES_H_

#include <cstdint>
#include <optional>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "cache/block_pool.h"
#include "scheduler/request.h"

namespace strata::scheduler {

class InflightPrefixes {
 public:
  void Clear() { computing_.clear(); }

  // `id` computes the blocks named by `keys` (its blocks not yet committed,
  // in chain order). The first sequence to claim a key keeps it.
  void Add(RequestId id, absl::Span<const cache::BlockKey> keys);

  // Whether a request whose chain keys are `keys`, of which the first
  // `cached_blocks` are in the device cache, should wait: the next block it
  // would compute is being computed by another sequence. Returns that
  // sequence's id.
  std::optional<RequestId> ShouldWait(RequestId id, absl::Span<const cache::BlockKey> keys,
                                      int64_t cached_blocks) const;

  int64_t size() const { return static_cast<int64_t>(computing_.size()); }

 private:
  absl::flat_hash_map<cache::BlockKey, RequestId> computing_;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_INFLIGHT_PREFIXES_H_
