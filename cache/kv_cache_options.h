// What the KV cache is given to work with, tier by tier. The names match the
// YAML keys that issue 6's config loader fills (cache.block_size,
// cache.device_bytes, cache.host_bytes, cache.disk_path, cache.disk_bytes),
// so that the config is a plain mapping onto this struct.
#ifndef STRATA_CACHE_KV_CACHE_OPTIONS_H_
#define STRATA_CACHE_KV_CACHE_OPTIONS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace strata::cache {

struct KvCacheOptions {
  int64_t block_size = 16;  // cache.block_size: tokens per KV block
  // cache.device_bytes: the device arena; 0 lets the backend choose (enough
  // for one sequence of the model's context).
  int64_t device_bytes = 0;
  // cache.device_memory_fraction: when device_bytes is 0, the arena takes
  // this fraction of the device memory left free by the weights (on the CPU
  // backend, of MemAvailable). 0: unused.
  double device_memory_fraction = 0;
  // Exact arena size in blocks; overrides device_bytes when > 0 (tests and
  // benchmarks that want a given number of blocks).
  int64_t device_blocks = 0;
  // cache.host_bytes: the host tier (pinned memory on CUDA); 0: none, and
  // evicted device blocks go straight to the disk tier.
  uint64_t host_bytes = 0;
  // cache.disk_path: the RocksDB directory of the disk tier; empty: none.
  std::string disk_path;
  uint64_t disk_bytes = 0;  // cache.disk_bytes: bounds every file in disk_path
  // cache.disk_admit_after_sightings: a block evicted to the disk tier is
  // written only once this many requests have wanted it
  // (storage/block_admission.h), in [1, 255]; 1 writes every block. The
  // daemon's default is 2 (DaemonConfig).
  int64_t disk_admit_after_sightings = 1;
  // cache.load_by_cost: load a prefix from the host or disk tier only when
  // measured tier bandwidth and prefill speed say that beats recomputing it
  // (scheduler/load_cost_model.h); false: always load. The daemon's default
  // is true (DaemonConfig).
  bool load_by_cost = false;
  // cache.write_behind_blocks_per_step: copy the cached blocks of ended
  // requests down to the first lower tier ahead of their eviction, at most
  // this many per step (scheduler/write_behind.h), so that an eviction
  // inside a later request's step copies nothing; 0: copy only on eviction.
  // The daemon's default is 32 (DaemonConfig).
  int64_t write_behind_blocks_per_step = 0;
  // cache.disk_low_priority_writes: the disk tier's writer and RocksDB's
  // flush and compaction threads run at the lowest CPU priority, so that
  // disk writes take only the CPU the engine leaves (storage/
  // disk_tier_store.h). The daemon's default is true (DaemonConfig).
  bool disk_low_priority_writes = false;

  bool has_lower_tiers() const { return host_bytes > 0 || !disk_path.empty(); }
};

// INVALID_ARGUMENT for a non-positive block size, negative sizes, or a disk
// path without disk_bytes.
absl::Status ValidateKvCacheOptions(const KvCacheOptions& options);

}  // namespace strata::cache

#endif  // STRATA_CACHE_KV_CACHE_OPTIONS_H_
