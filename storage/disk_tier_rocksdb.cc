#include "storage/disk_tier_rocksdb.h"

#include <algorithm>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "storage/rocksdb_info_log.h"

namespace strata::storage {

absl::Status FromRocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(std::string(what), ": ", status.ToString());
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

rocksdb::DBOptions DiskTierDatabaseOptions(const std::string& path) {
  rocksdb::DBOptions options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  // Both families flush together, and the writer flushes after every batch.
  options.atomic_flush = true;
  options.max_background_jobs = 2;
  // Small metadata, counted against the capacity (kDiskMetadataBytes). The
  // info log is ours: RocksDB's own aborts after a write to a full disk.
  options.info_log = std::make_shared<RocksDbInfoLog>(path, uint64_t{64} << 10);
  options.max_manifest_file_size = uint64_t{64} << 10;
  // RocksDB fallocates 4 MiB for each MANIFEST by default: real space on
  // ext4 and tmpfs, which MeasureDiskSpace counts. It never grows past the
  // 64 KiB above, so reserve no more than that.
  options.manifest_preallocation_size = uint64_t{64} << 10;
  // The writer flushes every batch, so memtables are empty at shutdown;
  // after an error nothing more may be written (see the header).
  options.avoid_flush_during_shutdown = true;
  options.max_bgerror_resume_count = 0;
  return options;
}

rocksdb::ColumnFamilyOptions DiskTierBlocksOptions(uint64_t capacity_bytes) {
  rocksdb::ColumnFamilyOptions options;
  // KV blocks are large and do not compress; blob files keep them out of the
  // LSM tree, so compactions move only keys and blob references.
  options.enable_blob_files = true;
  options.min_blob_size = 4096;
  // A blob file's space comes back only once all its blocks are evicted:
  // small files (a 32nd of the capacity) make that happen block by block.
  options.blob_file_size =
      std::clamp<uint64_t>(capacity_bytes / 32, uint64_t{64} << 10, uint64_t{256} << 20);
  // No blob garbage collection, which would copy live blobs out of old
  // files at compaction and briefly need their space twice: blob files
  // empty out in eviction order on their own, since a hit rewrites the
  // block into a new file (RecordRead) rather than leaving it in an old one.
  options.enable_blob_garbage_collection = false;
  options.compression = rocksdb::kNoCompression;
  options.blob_compression_type = rocksdb::kNoCompression;
  // Holds one whole batch: the writer flushes it right after.
  options.write_buffer_size = size_t{64} << 20;
  // Only the writer compacts (CompactIfDue), after checking for room: a
  // background compaction could meet a full disk.
  options.disable_auto_compactions = true;
  return options;
}

rocksdb::ColumnFamilyOptions DiskTierIndexOptions() {
  rocksdb::ColumnFamilyOptions options;
  options.write_buffer_size = size_t{4} << 20;
  options.disable_auto_compactions = true;  // as for blocks
  return options;
}

uint64_t MaxLevel0Files(rocksdb::DB& db,
                        std::initializer_list<rocksdb::ColumnFamilyHandle*> families) {
  uint64_t most = 0;
  for (rocksdb::ColumnFamilyHandle* family : families) {
    // A string property: GetIntProperty does not know it and reports 0.
    std::string files;
    uint64_t count = 0;
    if (db.GetProperty(family, rocksdb::DB::Properties::kNumFilesAtLevelPrefix + "0", &files) &&
        absl::SimpleAtoi(files, &count)) {
      most = std::max(most, count);
    }
  }
  return most;
}

}  // namespace strata::storage
