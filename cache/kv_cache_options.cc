#include "cache/kv_cache_options.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace strata::cache {

absl::Status ValidateKvCacheOptions(const KvCacheOptions& options) {
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache.block_size must be positive, got ", options.block_size));
  }
  if (options.device_bytes < 0 || options.device_blocks < 0) {
    return absl::InvalidArgumentError("cache.device_bytes must not be negative");
  }
  if (!(options.device_memory_fraction >= 0 && options.device_memory_fraction < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cache.device_memory_fraction must be in [0, 1), got ", options.device_memory_fraction));
  }
  if (options.disk_admit_after_sightings < 1 || options.disk_admit_after_sightings > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache.disk_admit_after_sightings must be in [1, 255], got ",
                     options.disk_admit_after_sightings));
  }
  if (options.write_behind_blocks_per_step < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache.write_behind_blocks_per_step must not be negative, got ",
                     options.write_behind_blocks_per_step));
  }
  if (!options.disk_path.empty() && options.disk_bytes == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache.disk_path is ", options.disk_path, " but cache.disk_bytes is 0"));
  }
  return absl::OkStatus();
}

}  // namespace strata::cache
