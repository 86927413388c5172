#include "storage/disk_space.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace strata::storage {
namespace {

void WriteBytes(const std::filesystem::path& path, size_t bytes) {
  std::ofstream out(path, std::ios::binary);
  out << std::string(bytes, 'x');
}

TEST(DiskSpaceTest, CountsTheDirectorysFilesBlobsAndWalsApart) {
  strata::testing::TempDir dir;
  WriteBytes(dir.path() / "000012.blob", 1000);
  WriteBytes(dir.path() / "000013.blob", 500);
  WriteBytes(dir.path() / "000004.log", 300);
  WriteBytes(dir.path() / "000014.sst", 70);
  WriteBytes(dir.path() / "LOG", 7);
  std::filesystem::create_directory(dir.path() / "sub");  // not a file: not counted
  WriteBytes(dir.path() / "sub" / "ignored.blob", 4096);

  const DiskSpace space = MeasureDiskSpace(dir.path().string());
  // At least the sizes; the filesystem may count whole pages per file.
  EXPECT_GE(space.directory_bytes, 1877u);
  EXPECT_LE(space.directory_bytes, 1877u + 5 * (uint64_t{64} << 10));
  EXPECT_EQ(space.blob_bytes, 1500u);
  EXPECT_EQ(space.wal_bytes, 300u);
  EXPECT_GT(space.free_bytes, 0u);
  EXPECT_LT(space.free_bytes, std::numeric_limits<uint64_t>::max());
}

// RocksDB fallocates ahead of its writes: that space is gone from the
// filesystem's free bytes, so the directory must count it too, or the
// tier's budget (directory plus free) overstates the room.
TEST(DiskSpaceTest, SpaceAllocatedBeyondAFilesSizeCounts) {
  strata::testing::TempDir dir;
  const std::filesystem::path file = dir.path() / "000020.sst";
  WriteBytes(file, 10);
  const int fd = open(file.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  const int allocated = fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20);
  close(fd);
  if (allocated != 0) GTEST_SKIP() << "this filesystem cannot fallocate";
  ASSERT_EQ(std::filesystem::file_size(file), 10u);
  EXPECT_GE(MeasureDiskSpace(dir.path().string()).directory_bytes, uint64_t{1} << 20);
}

TEST(DiskSpaceTest, MissingDirectoryHasNoBytes) {
  strata::testing::TempDir dir;
  const DiskSpace space = MeasureDiskSpace((dir.path() / "absent").string());
  EXPECT_EQ(space.directory_bytes, 0u);
  EXPECT_EQ(space.free_bytes, std::numeric_limits<uint64_t>::max());  // statvfs failed
}

TEST(DiskBudgetTest, TheCapacityWhenTheFilesystemHasRoom) {
  EXPECT_EQ(DiskBudget({.directory_bytes = 10, .free_bytes = 1000}, 500, 100), 500u);
}

TEST(DiskBudgetTest, WhatFitsAboveTheFreeReserveOnASmallFilesystem) {
  // 300 bytes are ours already; 400 more are free, of which 100 stay free.
  EXPECT_EQ(DiskBudget({.directory_bytes = 300, .free_bytes = 400}, 10000, 100), 600u);
  // Below the reserve: only what the directory holds already.
  EXPECT_EQ(DiskBudget({.directory_bytes = 300, .free_bytes = 50}, 10000, 100), 300u);
}

TEST(DiskBudgetTest, UnknownFreeSpaceIsNoLimit) {
  EXPECT_EQ(DiskBudget({.directory_bytes = 300, .free_bytes = std::numeric_limits<uint64_t>::max()},
                       10000, 100),
            10000u);
}

TEST(DiskValueCapacityTest, LeavesMetadataAndGarbageRoomAndNeverFalls) {
  EXPECT_EQ(DiskValueCapacity(0), 0u);
  EXPECT_EQ(DiskValueCapacity(kDiskMetadataBytes), 0u);
  // 1 MiB: 512 KiB of metadata, 9/64 of it for key files and evictions.
  EXPECT_EQ(DiskValueCapacity(uint64_t{1} << 20), (uint64_t{1} << 20) - (512u << 10) - (9u << 14));
  // The garbage allowance stops growing at 64 MiB.
  const uint64_t big = uint64_t{1} << 40;
  EXPECT_EQ(DiskValueCapacity(big), big - kDiskMetadataBytes - big / 64 - (uint64_t{64} << 20));
  uint64_t previous = 0;
  for (uint64_t c = 0; c < (uint64_t{2} << 20); c += 61) {
    const uint64_t now = DiskValueCapacity(c);
    ASSERT_GE(now, previous) << c;
    previous = now;
  }
}

TEST(DiskValueCapacityTest, CapacityForValuesIsTheSmallestThatHoldsThem) {
  for (uint64_t values : {uint64_t{1}, uint64_t{4144}, uint64_t{265216}, uint64_t{6} << 30}) {
    const uint64_t capacity = DiskCapacityForValues(values);
    EXPECT_GE(DiskValueCapacity(capacity), values);
    EXPECT_LT(DiskValueCapacity(capacity - 1), values);
  }
}

}  // namespace
}  // namespace strata::storage
