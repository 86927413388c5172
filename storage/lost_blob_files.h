// Finding what a deleted blob file took with it. RocksDB's MANIFEST keeps
// listing a blob file that was removed behind its back (by hand, by a
// clean-up script), and every read of a block stored in it fails with an I/O
// error; the disk tier uses these to drop exactly those blocks instead of
// treating the whole device as failed.
//
// Thread-safe as far as rocksdb::DB is; reads only.
#ifndef STRATA_STORAGE_LOST_BLOB_FILES_H_
#define STRATA_STORAGE_LOST_BLOB_FILES_H_

#include <string>
#include <vector>

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace strata::storage {

// The paths of the blob files `family` refers to that no longer exist.
std::vector<std::string> MissingBlobFiles(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& family);

// Of `keys` (encoded), those whose value in `family` cannot be read: not
// found, or an I/O error (its blob file is gone). Reads every value, in
// chunks; meant for the rare repair on open.
std::vector<std::string> UnreadableKeys(rocksdb::DB& db, rocksdb::ColumnFamilyHandle& family,
                                        const std::vector<std::string>& keys);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_LOST_BLOB_FILES_H_
