// The demotions of the plan in flight: where the bytes of each device block
// evicted while the plan is built go during the step, and their hand-over to
// the lower tier after it. A block goes straight into the tier's own memory
// when the tier can take it in place (the host tier: one copy, device ->
// tier, where a staging slot costs a second, staging -> tier, on the engine
// thread inside the next request's time to first token); otherwise into a
// staging slot that Finish inserts (the disk tier, or a host tier whose
// every slot is pinned, as when one step demotes more than it holds). A
// block the tier already holds is not copied at all: its key names its bytes;
// nor is one the tier says it would not write (disk admission, a read-only
// disk).
#ifndef STRATA_CACHE_DEMOTIONS_H_
#define STRATA_CACHE_DEMOTIONS_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "cache/block_hash.h"
#include "cache/kv_cache_manager.h"
#include "cache/staging_pool.h"
#include "storage/tier_store.h"

namespace strata::cache {

// Borrows the staging pool and the tier, which must outlive it (the
// in-place writers pin the tier's memory). Not thread-safe: the engine
// thread's.
class Demotions {
 public:
  Demotions(StagingPool& staging, storage::TierStore& target, Tier tier);
  ~Demotions();  // discards what was not finished
  Demotions(const Demotions&) = delete;
  Demotions& operator=(const Demotions&) = delete;

  // The tier the blocks go to.
  Tier tier() const { return tier_; }

  // The host memory the block's device-to-host move must fill this step, or
  // nullopt when nothing is to be copied: the tier holds the key already,
  // or there is no memory for it, not even a staging slot (the block is
  // dropped, recomputed if ever needed again).
  std::optional<absl::Span<std::byte>> Add(const BlockKey& key);

  // After the step: the tier takes every block added since the last call if
  // the moves were performed, else none. Returns the blocks it took (those
  // copied this step; not those it held already).
  int64_t Finish(bool performed);

  // Blocks added and not yet finished.
  int64_t num_pending() const { return static_cast<int64_t>(pending_.size()); }

 private:
  struct Pending {
    BlockKey key;
    std::unique_ptr<storage::TierStoreWriter> writer;  // in place, or
    int32_t slot = -1;                                 // a staging slot
  };

  StagingPool& staging_;
  storage::TierStore& target_;
  const Tier tier_;
  std::vector<Pending> pending_;
};

}  // namespace strata::cache

#endif  // STRATA_CACHE_DEMOTIONS_H_
