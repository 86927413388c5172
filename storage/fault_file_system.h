// A RocksDB FileSystem that fails writes on demand, so tests can give the
// disk tier a full disk or a failing device without one. Internal to
// storage/; DiskTierStore installs it only when its test hook is set.
#ifndef STRATA_STORAGE_FAULT_FILE_SYSTEM_H_
#define STRATA_STORAGE_FAULT_FILE_SYSTEM_H_

#include <functional>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "rocksdb/file_system.h"

namespace strata::storage {

// Asked before every write to a file (append, positioned append, sync) with
// the file's name; a non-OK status fails that write: RESOURCE_EXHAUSTED as
// "no space", anything else as an I/O error. Called from RocksDB's threads.
using WriteFaultHook = std::function<absl::Status(std::string_view file_name)>;

// Wraps `target`, consulting `hook` on every write of every file it opens.
std::shared_ptr<rocksdb::FileSystem> NewFaultFileSystem(std::shared_ptr<rocksdb::FileSystem> target,
                                                        WriteFaultHook hook);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_FAULT_FILE_SYSTEM_H_
