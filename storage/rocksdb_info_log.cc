#include "storage/rocksdb_info_log.h"

#include <sys/time.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <system_error>
#include <utility>

#include "server/logging/log.h"

namespace strata::storage {

RocksDbInfoLog::RocksDbInfoLog(std::string directory, uint64_t max_bytes)
    : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL),
      path_(std::move(directory) + "/LOG"),
      max_bytes_(max_bytes) {
  absl::MutexLock lock(&mu_);
  file_ = std::fopen(path_.c_str(), "a");
  if (file_ != nullptr) {
    std::error_code error;
    const uintmax_t size = std::filesystem::file_size(path_, error);
    bytes_ = error ? 0 : size;
  }
}

RocksDbInfoLog::~RocksDbInfoLog() {
  absl::MutexLock lock(&mu_);
  if (file_ != nullptr) std::fclose(file_);  // a failed close loses log lines only
}

void RocksDbInfoLog::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void RocksDbInfoLog::Logv(rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  if (level < GetInfoLogLevel()) return;
  char message[1024];
  va_list copy;
  va_copy(copy, ap);
  std::vsnprintf(message, sizeof(message), format, copy);
  va_end(copy);
  if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL && level != rocksdb::InfoLogLevel::HEADER_LEVEL) {
    logging::Event(logging::Level::kWarning, "rocksdb")
        .With("path", path_)
        .With("message", message);
  }
  timeval now{};
  gettimeofday(&now, nullptr);
  std::tm utc{};
  gmtime_r(&now.tv_sec, &utc);
  char stamp[128];
  std::snprintf(stamp, sizeof(stamp), "%04d/%02d/%02d-%02d:%02d:%02d.%06ld ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<long>(now.tv_usec));
  std::string line(stamp);
  line.append(message).push_back('\n');
  absl::MutexLock lock(&mu_);
  Write(line);
}

void RocksDbInfoLog::Write(const std::string& line) {
  if (bytes_ + line.size() > max_bytes_) Roll();
  if (file_ == nullptr) {
    ++dropped_;
    return;
  }
  // Unbuffered enough: flushed per line, so a crash keeps the log, and a
  // failed write is forgotten rather than retried.
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    ++dropped_;
    std::clearerr(file_);
  }
  bytes_ += line.size();
}

void RocksDbInfoLog::Roll() {
  if (file_ != nullptr) std::fclose(file_);
  std::error_code error;
  std::filesystem::rename(path_, path_ + ".old", error);
  file_ = std::fopen(path_.c_str(), "w");
  bytes_ = 0;
}

size_t RocksDbInfoLog::GetLogFileSize() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

void RocksDbInfoLog::Flush() {
  absl::MutexLock lock(&mu_);
  if (file_ != nullptr && std::fflush(file_) != 0) std::clearerr(file_);
}

uint64_t RocksDbInfoLog::dropped_lines() const {
  absl::MutexLock lock(&mu_);
  return dropped_;
}

}  // namespace strata::storage
