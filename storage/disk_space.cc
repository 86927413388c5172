#include "storage/disk_space.h"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <system_error>

namespace strata::storage {

DiskSpace MeasureDiskSpace(const std::string& directory) {
  DiskSpace space;
  std::error_code error;
  for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error)) {
    // A file RocksDB deletes between listing and stat is simply not counted.
    struct stat status {};
    if (stat(it->path().c_str(), &status) != 0 || !S_ISREG(status.st_mode)) continue;
    const auto size = static_cast<uint64_t>(status.st_size);
    // What the file takes from the filesystem, as statvfs counts it: whole
    // pages, and space RocksDB fallocated ahead of its writes (st_blocks is
    // in 512-byte units). Sizes alone fall short by up to a page per file,
    // which on a small filesystem with dozens of blob files and SSTs is more
    // than the margin a flush plans for.
    space.directory_bytes += std::max(size, static_cast<uint64_t>(status.st_blocks) * 512);
    const std::filesystem::path extension = it->path().extension();
    if (extension == ".blob") space.blob_bytes += size;
    if (extension == ".log") space.wal_bytes += size;
  }
  struct statvfs fs {};
  if (statvfs(directory.c_str(), &fs) == 0) {
    space.free_bytes = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  } else {
    space.free_bytes = std::numeric_limits<uint64_t>::max();
  }
  return space;
}

uint64_t DiskBudget(const DiskSpace& space, uint64_t capacity_bytes, uint64_t min_free_bytes) {
  const uint64_t usable_free =
      space.free_bytes > min_free_bytes ? space.free_bytes - min_free_bytes : 0;
  // The directory's own files count as room: evicting their blocks frees it.
  const uint64_t room = space.directory_bytes > std::numeric_limits<uint64_t>::max() - usable_free
                            ? std::numeric_limits<uint64_t>::max()
                            : space.directory_bytes + usable_free;
  return std::min(capacity_bytes, room);
}

namespace {
constexpr uint64_t kGarbageCap = uint64_t{64} << 20;
}  // namespace

uint64_t DiskGarbageAllowance(uint64_t capacity_bytes) {
  return std::min<uint64_t>(capacity_bytes / 8, kGarbageCap);
}

uint64_t DiskValueCapacity(uint64_t capacity_bytes) {
  // capacity / 64 for metadata and / 8 for garbage summed before rounding
  // (c * 9 / 64, without overflow), so that the result never falls.
  const uint64_t c = capacity_bytes;
  const uint64_t variable =
      c / 8 <= kGarbageCap ? (c / 64) * 9 + (c % 64) * 9 / 64 : c / 64 + kGarbageCap;
  const uint64_t reserved = variable + kDiskMetadataBytes;
  return c > reserved ? c - reserved : 0;
}

uint64_t DiskCapacityForValues(uint64_t value_bytes) {
  // DiskValueCapacity(c) >= c * 55 / 64 - kDiskMetadataBytes: `high` suffices.
  uint64_t low = 0;
  uint64_t high = 2 * value_bytes + 2 * kDiskMetadataBytes;
  while (low < high) {
    const uint64_t mid = low + (high - low) / 2;
    if (DiskValueCapacity(mid) >= value_bytes) {
      high = mid;
    } else {
      low = mid + 1;
    }
  }
  return low;
}

}  // namespace strata::storage
