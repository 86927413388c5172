// A RocksDB FileSystem that fails writes and slows reads on demand, so tests
// and benchmarks can give the disk tier a full disk, a failing device or a
// slow one without one. Internal to storage/; DiskTierStore installs it only
// when one of its test hooks is set.
#ifndef STRATA_STORAGE_FAULT_FILE_SYSTEM_H_
#define STRATA_STORAGE_FAULT_FILE_SYSTEM_H_

#include <chrono>
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

// Asked before every read of a file opened for random access (the SST and
// blob files that serve lookups) with the file's name: the read sleeps this
// long first, as on a slow device. Called from RocksDB's threads.
using ReadDelayHook = std::function<std::chrono::microseconds(std::string_view file_name)>;

// Wraps `target`, consulting `write_hook` on every write of every file it
// opens and `read_delay` on every random-access read; either may be empty
// (no faults, no delay).
std::shared_ptr<rocksdb::FileSystem> NewFaultFileSystem(std::shared_ptr<rocksdb::FileSystem> target,
                                                        WriteFaultHook write_hook,
                                                        ReadDelayHook read_delay = nullptr);

}  // namespace strata::storage

#endif  // STRATA_STORAGE_FAULT_FILE_SYSTEM_H_
