#include "storage/fault_file_system.h"

#include <string>
#include <thread>
#include <utility>

namespace strata::storage {
namespace {

rocksdb::IOStatus ToIOStatus(const absl::Status& status) {
  if (absl::IsResourceExhausted(status)) {
    return rocksdb::IOStatus::NoSpace(std::string(status.message()));
  }
  return rocksdb::IOStatus::IOError(std::string(status.message()));
}

class FaultWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, std::string name,
                    const WriteFaultHook* hook)
      : FSWritableFileOwnerWrapper(std::move(target)), name_(std::move(name)), hook_(hook) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (absl::Status fault = (*hook_)(name_); !fault.ok()) return ToIOStatus(fault);
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (absl::Status fault = (*hook_)(name_); !fault.ok()) return ToIOStatus(fault);
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (absl::Status fault = (*hook_)(name_); !fault.ok()) return ToIOStatus(fault);
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (absl::Status fault = (*hook_)(name_); !fault.ok()) return ToIOStatus(fault);
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, info, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    if (absl::Status fault = (*hook_)(name_); !fault.ok()) return ToIOStatus(fault);
    return FSWritableFileOwnerWrapper::Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (absl::Status fault = (*hook_)(name_); !fault.ok()) return ToIOStatus(fault);
    return FSWritableFileOwnerWrapper::Fsync(options, dbg);
  }

 private:
  std::string name_;
  const WriteFaultHook* hook_;  // owned by the file system, which outlives its files
};

class SlowRandomAccessFile final : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  SlowRandomAccessFile(std::unique_ptr<rocksdb::FSRandomAccessFile> target, std::string name,
                       const ReadDelayHook* delay)
      : FSRandomAccessFileOwnerWrapper(std::move(target)), name_(std::move(name)), delay_(delay) {}

  rocksdb::IOStatus Read(uint64_t offset, size_t n, const rocksdb::IOOptions& options,
                         rocksdb::Slice* result, char* scratch,
                         rocksdb::IODebugContext* dbg) const override {
    Sleep();
    return FSRandomAccessFileOwnerWrapper::Read(offset, n, options, result, scratch, dbg);
  }
  rocksdb::IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs,
                              const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    Sleep();
    return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, num_reqs, options, dbg);
  }

 private:
  void Sleep() const {
    const std::chrono::microseconds delay = (*delay_)(name_);
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
  }

  std::string name_;
  const ReadDelayHook* delay_;  // owned by the file system, which outlives its files
};

class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultFileSystem(std::shared_ptr<rocksdb::FileSystem> target, WriteFaultHook hook,
                  ReadDelayHook read_delay)
      : FileSystemWrapper(std::move(target)),
        hook_(std::move(hook)),
        read_delay_(std::move(read_delay)) {}

  const char* Name() const override { return "StrataFaultFileSystem"; }

  rocksdb::IOStatus NewRandomAccessFile(const std::string& name,
                                        const rocksdb::FileOptions& options,
                                        std::unique_ptr<rocksdb::FSRandomAccessFile>* result,
                                        rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus opened = FileSystemWrapper::NewRandomAccessFile(name, options, result, dbg);
    if (opened.ok() && read_delay_) {
      *result = std::make_unique<SlowRandomAccessFile>(std::move(*result), name, &read_delay_);
    }
    return opened;
  }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override {
    return Wrap(name, FileSystemWrapper::NewWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override {
    return Wrap(name, FileSystemWrapper::ReopenWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override {
    return Wrap(name, FileSystemWrapper::ReuseWritableFile(name, old_name, options, result, dbg),
                result);
  }

 private:
  rocksdb::IOStatus Wrap(const std::string& name, rocksdb::IOStatus opened,
                         std::unique_ptr<rocksdb::FSWritableFile>* result) {
    if (opened.ok() && hook_) {
      *result = std::make_unique<FaultWritableFile>(std::move(*result), name, &hook_);
    }
    return opened;
  }

  WriteFaultHook hook_;
  ReadDelayHook read_delay_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewFaultFileSystem(std::shared_ptr<rocksdb::FileSystem> target,
                                                        WriteFaultHook write_hook,
                                                        ReadDelayHook read_delay) {
  return std::make_shared<FaultFileSystem>(std::move(target), std::move(write_hook),
                                           std::move(read_delay));
}

}  // namespace strata::storage
