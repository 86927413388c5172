#include "storage/disk_space.h"

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
  EXPECT_EQ(space.directory_bytes, 1877u);
  EXPECT_EQ(space.blob_bytes, 1500u);
  EXPECT_EQ(space.wal_bytes, 300u);
  EXPECT_GT(space.free_bytes, 0u);
  EXPECT_LT(space.free_bytes, std::numeric_limits<uint64_t>::max());
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

}  // namespace
}  // namespace strata::storage
