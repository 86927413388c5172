#include "cache/tier_stores.h"

#include <utility>

#include "server/logging/log.h"

namespace strata::cache {

uint64_t DiskFingerprint(const ModelFingerprint& model) {
  // Both halves are already uniformly mixed (XXH3-128); folding keeps both.
  return model.high ^ (model.low * 0x9e3779b97f4a7c15ull);
}

absl::StatusOr<TierStores> OpenTierStores(const KvCacheOptions& options, size_t block_bytes,
                                          const ModelFingerprint& model,
                                          storage::HostAllocator allocator) {
  if (absl::Status valid = ValidateKvCacheOptions(options); !valid.ok()) return valid;
  TierStores stores;
  if (!options.disk_path.empty()) {
    storage::DiskTierOptions disk;
    disk.path = options.disk_path;
    disk.block_bytes = block_bytes;
    disk.capacity_bytes = options.disk_bytes;
    disk.model_fingerprint = DiskFingerprint(model);
    disk.admit_after_sightings = static_cast<int>(options.disk_admit_after_sightings);
    disk.low_priority_writes = options.disk_low_priority_writes;
    absl::StatusOr<std::unique_ptr<storage::DiskTierStore>> opened =
        storage::DiskTierStore::Open(std::move(disk));
    if (!opened.ok() && !absl::IsInvalidArgument(opened.status())) {
      // The disk tier is a cache: serve without it rather than not at all
      // (a crash loop on a full or failing disk helps no one).
      logging::Event(logging::Level::kError, "disk_tier_unavailable")
          .With("path", options.disk_path)
          .With("error", opened.status().ToString());
    } else if (!opened.ok()) {
      return opened.status();  // a configuration error
    } else {
      stores.disk = *std::move(opened);
    }
  }
  if (options.host_bytes > 0) {
    storage::HostTierOptions host;
    host.block_bytes = block_bytes;
    host.capacity_bytes = options.host_bytes;
    host.allocator = std::move(allocator);
    if (storage::DiskTierStore* disk = stores.disk.get()) {
      // Runs under the host store's lock; DiskTierStore::Insert only copies
      // into its write queue, so the engine thread never waits on the disk.
      host.on_evict = [disk](const storage::BlockKey& key, absl::Span<const std::byte> bytes) {
        (void)disk->Insert(key, bytes);  // a dropped block is recomputed later
      };
    }
    stores.host = std::make_unique<storage::HostTierStore>(std::move(host));
  }
  return stores;
}

}  // namespace strata::cache
