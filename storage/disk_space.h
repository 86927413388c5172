// Measuring the disk tier's footprint and the room left on its filesystem,
// so that DiskTierStore can keep both its directory within the configured
// size and RocksDB away from a full disk. RocksDB built with assertions (as
// Debian's is) aborts the process on some paths after a write fails for lack
// of space, so the store must stop writing before the filesystem fills, not
// after.
//
// Thread-safe: plain functions of the filesystem's state.
#ifndef STRATA_STORAGE_DISK_SPACE_H_
#define STRATA_STORAGE_DISK_SPACE_H_

#include <cstdint>
#include <string>

namespace strata::storage {

struct DiskSpace {
  // Bytes the regular files directly in the directory take on the
  // filesystem: each file's allocated blocks, or its size if larger (RocksDB
  // keeps all its files there: SSTs, blob files, WAL, MANIFEST, OPTIONS,
  // LOG). Counted as the free space is, so that the two add up.
  uint64_t directory_bytes = 0;
  uint64_t blob_bytes = 0;  // sizes of the blob files (*.blob): the values
  uint64_t wal_bytes = 0;   // sizes of the WAL files (*.log)
  // Bytes an unprivileged writer may still allocate on the filesystem
  // (statvfs f_bavail); UINT64_MAX when statvfs fails.
  uint64_t free_bytes = 0;
};

DiskSpace MeasureDiskSpace(const std::string& directory);

// How the disk tier divides a directory of `capacity_bytes`:
//  - RocksDB's own files besides the values: LOG (two of at most 64 KiB),
//    MANIFEST (rolled over past 64 KiB, so two for a moment), two OPTIONS
//    files of about 16 KiB, the empty WAL, and the SSTs of keys and blob
//    references, which grow with the number of blocks: kDiskMetadataBytes
//    plus capacity / 64 (enough for blocks down to a few KiB);
//  - evicted blocks whose blob files compaction has not dropped yet:
//    DiskGarbageAllowance;
//  - the values: DiskValueCapacity, the rest.
inline constexpr uint64_t kDiskMetadataBytes = uint64_t{512} << 10;
// One flush writes, besides its blob file, an SST per family and a MANIFEST
// record: the room a batch needs beyond its values.
inline constexpr uint64_t kDiskFlushBytes = uint64_t{64} << 10;

// capacity / 8, at most 64 MiB.
uint64_t DiskGarbageAllowance(uint64_t capacity_bytes);
// Never falls as the capacity grows.
uint64_t DiskValueCapacity(uint64_t capacity_bytes);
// The smallest capacity whose DiskValueCapacity is at least `value_bytes`.
uint64_t DiskCapacityForValues(uint64_t value_bytes);

// What the store may keep in the directory now: the configured capacity,
// or less when the filesystem lacks the room (its free space less
// `min_free_bytes`, which stays untouched for RocksDB's own files and
// everyone else on the disk). Pure.
uint64_t DiskBudget(const DiskSpace& space, uint64_t capacity_bytes, uint64_t min_free_bytes);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_DISK_SPACE_H_
