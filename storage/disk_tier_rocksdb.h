// How the disk tier configures RocksDB, in one place: no WAL (the writer
// flushes every batch), no background compactions (only the writer
// compacts, after checking for room), small metadata files, blob files for
// the values. See storage/disk_tier_store.h for why.
#ifndef STRATA_STORAGE_DISK_TIER_ROCKSDB_H_
#define STRATA_STORAGE_DISK_TIER_ROCKSDB_H_

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/status.h"

namespace strata::storage {

// The writer compacts once a family has this many L0 files (one per flush),
// well before RocksDB would stall writes (20).
inline constexpr uint64_t kDiskTierMaxLevel0Files = 8;

// RESOURCE_EXHAUSTED for "no space", UNAVAILABLE for other errors; the
// message starts with `what`.
absl::Status FromRocks(const rocksdb::Status& status, std::string_view what);

// For the database in `path`.
rocksdb::DBOptions DiskTierDatabaseOptions(const std::string& path);
// The "blocks" family of a directory of `capacity_bytes`.
rocksdb::ColumnFamilyOptions DiskTierBlocksOptions(uint64_t capacity_bytes);
rocksdb::ColumnFamilyOptions DiskTierIndexOptions();

// The most level-0 files (one per flush until merged) in any of `families`.
uint64_t MaxLevel0Files(rocksdb::DB& db,
                        std::initializer_list<rocksdb::ColumnFamilyHandle*> families);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_DISK_TIER_ROCKSDB_H_
