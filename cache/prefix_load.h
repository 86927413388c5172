// One waiting sequence's prefix in the lower tiers: the blocks after its
// device-cached prefix, looked up with the same chained keys, host tier
// first and then the disk tier, until the first key neither holds. Host hits
// are ready at once; disk reads run on the disk tier's reader threads while
// the engine thread goes on stepping other sequences, polling IsReady.
#ifndef STRATA_CACHE_PREFIX_LOAD_H_
#define STRATA_CACHE_PREFIX_LOAD_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "cache/kv_cache_manager.h"
#include "storage/tier_store.h"

namespace strata::cache {

struct LoadedBlock {
  BlockKey key;
  Tier tier = Tier::kHost;
  absl::Span<const std::byte> bytes;  // one whole block, owned by the PrefixLoad
};

// Owns its lookup handles, so the bytes stay valid (a host hit stays pinned)
// until it is destroyed; it must not outlive the host store. Not
// thread-safe: one engine thread.
class PrefixLoad {
 public:
  // Starts the lookups for `keys` (consecutive blocks, in order). Either
  // store may be null (tier off).
  PrefixLoad(absl::Span<const BlockKey> keys, storage::TierStore* host, storage::TierStore* disk);

  // Blocks some tier claims to hold; a disk read may still come back a miss.
  int64_t num_found() const { return static_cast<int64_t>(handles_.size()); }

  // The tier of each found block, in order.
  std::vector<Tier> tiers() const;

  // Keeps only the first `n` found blocks (a cost model chose to recompute
  // the rest); the others' reads are abandoned (a disk reader skips a read
  // nobody waits for). No-op if n >= num_found().
  void Truncate(int64_t n);

  // Once IsReady: seconds from the start of the lookups to the last read's
  // completion (as the store timed it; a store that does not time its reads
  // counts as done when the lookups returned). nullopt before then.
  std::optional<double> ReadSeconds() const;

  // True once every read has finished. Never blocks.
  bool IsReady() const;

  // Once ready: the leading run of blocks whose bytes arrived, stopping at
  // the first miss (corrupt, foreign or evicted blocks are misses). Waits if
  // called before IsReady.
  std::vector<LoadedBlock> Blocks();

 private:
  struct Pending {
    BlockKey key;
    Tier tier;
    std::unique_ptr<storage::TierStoreHandle> handle;
  };
  std::vector<Pending> handles_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point looked_up_;  // the constructor returned
};

}  // namespace strata::cache

#endif  // STRATA_CACHE_PREFIX_LOAD_H_
