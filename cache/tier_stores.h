// The lower KV tiers of one model, opened from KvCacheOptions: a host tier
// whose evictions feed a disk tier. Both are keyed by the same chained block
// keys as the device prefix index (cache/block_hash.h), so a prefix walk
// continues from one tier to the next with the same keys.
#ifndef STRATA_CACHE_TIER_STORES_H_
#define STRATA_CACHE_TIER_STORES_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "cache/block_hash.h"
#include "cache/kv_cache_options.h"
#include "storage/disk_tier_store.h"
#include "storage/host_tier_store.h"

namespace strata::cache {

// Owns both stores. `disk` is declared first so that `host`, whose on_evict
// writes into it, is destroyed first. Either may be null (tier off). The
// scheduler borrows them and must be destroyed before this.
struct TierStores {
  std::unique_ptr<storage::DiskTierStore> disk;
  std::unique_ptr<storage::HostTierStore> host;
};

// The 64-bit tag the disk tier stores next to each block (DiskTierOptions::
// model_fingerprint): a second guard, besides the key chain's root, against
// serving one model's K/V to another.
uint64_t DiskFingerprint(const ModelFingerprint& model);

// Opens the tiers `options` asks for, for blocks of `block_bytes`. The host
// tier takes its memory from `allocator` (the backend's host buffers: pinned
// on CUDA); its evictions are inserted into the disk tier, which writes them
// on its own thread. Errors: ValidateKvCacheOptions's, and the disk tier's
// INVALID_ARGUMENT. A disk tier that cannot be opened for any other reason
// (a failing device, a directory it may not write) is left off, with one
// error logged (event disk_tier_unavailable): the daemon serves without it.
absl::StatusOr<TierStores> OpenTierStores(const KvCacheOptions& options, size_t block_bytes,
                                          const ModelFingerprint& model,
                                          storage::HostAllocator allocator);

}  // namespace strata::cache

#endif  // STRATA_CACHE_TIER_STORES_H_
