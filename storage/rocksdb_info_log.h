// RocksDB's info log ("LOG" in the database directory) written with plain
// stdio, never through RocksDB's own file writer. RocksDB 7.8's default
// logger (EnvLogger) writes through WritableFileWriter, and once one write
// of it failed (a full disk), its next line trips an assertion that Debian's
// build keeps: the daemon aborts at the next log line, typically while
// closing the database (issue 12). This logger drops what it cannot write.
//
// Thread-safe (RocksDB logs from its own threads). Errors and fatal
// messages also go to the structured log, as event "rocksdb".
#ifndef STRATA_STORAGE_ROCKSDB_INFO_LOG_H_
#define STRATA_STORAGE_ROCKSDB_INFO_LOG_H_

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/env.h"

namespace strata::storage {

class RocksDbInfoLog final : public rocksdb::Logger {
 public:
  // Appends to `directory`/LOG; past `max_bytes` it becomes LOG.old (the
  // previous LOG.old is replaced) and a new LOG starts.
  RocksDbInfoLog(std::string directory, uint64_t max_bytes);
  ~RocksDbInfoLog() override;

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  void Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
  size_t GetLogFileSize() const override;
  void Flush() override;

  // Lines that could not be written (full disk, unopenable file).
  uint64_t dropped_lines() const;

 private:
  void Write(const std::string& line) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Roll() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const uint64_t max_bytes_;
  mutable absl::Mutex mu_;
  std::FILE* file_ ABSL_GUARDED_BY(mu_) = nullptr;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_ROCKSDB_INFO_LOG_H_
