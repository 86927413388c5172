#include "storage/fault_file_system.h"

#include <string>
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

class FaultFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FaultFileSystem(std::shared_ptr<rocksdb::FileSystem> target, WriteFaultHook hook)
      : FileSystemWrapper(std::move(target)), hook_(std::move(hook)) {}

  const char* Name() const override { return "StrataFaultFileSystem"; }

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
    if (opened.ok()) {
      *result = std::make_unique<FaultWritableFile>(std::move(*result), name, &hook_);
    }
    return opened;
  }

  WriteFaultHook hook_;
};

}  // namespace

std::shared_ptr<rocksdb::FileSystem> NewFaultFileSystem(std::shared_ptr<rocksdb::FileSystem> target,
                                                        WriteFaultHook hook) {
  return std::make_shared<FaultFileSystem>(std::move(target), std::move(hook));
}

}  // namespace strata::storage
