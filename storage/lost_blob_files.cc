#include "storage/lost_blob_files.h"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "rocksdb/db.h"
#include "rocksdb/metadata.h"

namespace strata::storage {

std::vector<std::string> MissingBlobFiles(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& family) {
  rocksdb::ColumnFamilyMetaData meta;
  db.GetColumnFamilyMetaData(&family, &meta);
  std::vector<std::string> missing;
  for (const rocksdb::BlobMetaData& blob : meta.blob_files) {
    std::string path = blob.blob_file_path;
    if (!path.empty() && path.back() != '/') path.push_back('/');
    path.append(blob.blob_file_name);
    std::error_code error;
    if (!std::filesystem::exists(path, error) && !error) missing.push_back(std::move(path));
  }
  return missing;
}

std::vector<std::string> UnreadableKeys(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& family,
                                        const std::vector<std::string>& keys) {
  constexpr size_t kChunk = 64;  // bounds the memory of values read at once
  rocksdb::ReadOptions options;
  options.fill_cache = false;
  std::vector<std::string> unreadable;
  for (size_t start = 0; start < keys.size(); start += kChunk) {
    const size_t end = std::min(keys.size(), start + kChunk);
    std::vector<rocksdb::Slice> slices(keys.begin() + static_cast<ptrdiff_t>(start),
                                       keys.begin() + static_cast<ptrdiff_t>(end));
    std::vector<rocksdb::PinnableSlice> values(slices.size());
    std::vector<rocksdb::Status> statuses(slices.size());
    db.MultiGet(options, &family, slices.size(), slices.data(), values.data(), statuses.data());
    for (size_t i = 0; i < slices.size(); ++i) {
      // Corrupt values are the reader's business (a checked miss); only
      // values that cannot be read at all are lost.
      if (statuses[i].IsNotFound() || statuses[i].IsIOError()) {
        unreadable.push_back(keys[start + i]);
      }
    }
  }
  return unreadable;
}

}  // namespace strata::storage
