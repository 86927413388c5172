// The disk tier on a real, small, full filesystem (a 4 MiB tmpfs): it must
// keep RocksDB from ever meeting "no space left on device" (Debian's RocksDB
// keeps assertions that abort on some of those paths), shrink to what fits,
// turn read-only when others fill the disk, and reopen there. Needs root to
// mount; skips elsewhere (CI runs as root).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/disk_format.h"
#include "storage/disk_space.h"
#include "storage/disk_tier_store.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tmpfs_mount.h"

namespace strata::storage {
namespace {

constexpr size_t kBlockBytes = 16 << 10;
constexpr uint64_t kFilesystemBytes = uint64_t{4} << 20;

BlockKey Key(uint64_t i) { return BlockKey{.high = 0xd15c, .low = i}; }

std::vector<std::byte> Block(uint64_t i) {
  std::vector<std::byte> bytes(kBlockBytes);
  for (size_t j = 0; j < bytes.size(); ++j) {
    bytes[j] = static_cast<std::byte>((i * 131 + j * 17) >> 2);
  }
  return bytes;
}

std::optional<std::vector<std::byte>> Read(TierStore& store, uint64_t i) {
  std::unique_ptr<TierStoreHandle> handle = store.Lookup(Key(i));
  if (handle == nullptr) return std::nullopt;
  const absl::Span<const std::byte> value = handle->Value();
  if (value.empty()) return std::nullopt;
  return std::vector<std::byte>(value.begin(), value.end());
}

class DiskTierFullDiskTest : public ::testing::Test {
 protected:
  DiskTierOptions Options() const {
    DiskTierOptions options;
    options.path = (fs_.path() / "kv").string();
    options.block_bytes = kBlockBytes;
    options.capacity_bytes = uint64_t{64} << 20;  // far more than the filesystem
    options.model_fingerprint = 0xf00;
    options.read_threads = 2;
    return options;
  }

  std::unique_ptr<DiskTierStore> OpenStore() const {
    absl::StatusOr<std::unique_ptr<DiskTierStore>> store = DiskTierStore::Open(Options());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Inserts [first, last] in batches of 8, flushing each; the most the
  // filesystem had in use meanwhile.
  uint64_t Churn(DiskTierStore& store, uint64_t first, uint64_t last) const {
    uint64_t most_used = 0;
    for (uint64_t i = first; i <= last; ++i) {
      EXPECT_TRUE(store.Insert(Key(i), Block(i)).ok());
      if ((i - first) % 8 == 7 || i == last) {
        store.Flush();
        const DiskSpace space = MeasureDiskSpace(Options().path);
        most_used =
            std::max(most_used, kFilesystemBytes - std::min(kFilesystemBytes, space.free_bytes));
      }
    }
    return most_used;
  }

  strata::testing::TempDir dir_;
  strata::testing::TmpfsMount fs_{dir_.path() / "mnt", kFilesystemBytes};
};

TEST_F(DiskTierFullDiskTest, ASmallFilesystemBoundsTheTierWithoutAnyWriteError) {
  if (!fs_.mounted()) GTEST_SKIP() << fs_.skip_reason();
  std::unique_ptr<DiskTierStore> store = OpenStore();
  // 16 MiB of blocks through a 4 MiB filesystem.
  const uint64_t most_used = Churn(*store, 0, 1023);
  const TierStoreStats stats = store->Stats();
  EXPECT_TRUE(stats.enabled) << stats.error;
  EXPECT_TRUE(stats.writable) << stats.error;
  // min_free_bytes (1 MiB) stayed free all along.
  EXPECT_LE(most_used, kFilesystemBytes - Options().min_free_bytes);
  EXPECT_GT(stats.blocks, 0u);
  EXPECT_EQ(Read(*store, 1023), Block(1023));
}

TEST_F(DiskTierFullDiskTest, OneMebibyteConfiguredIsWhatTheFilesystemHolds) {
  if (!fs_.mounted()) GTEST_SKIP() << fs_.skip_reason();
  DiskTierOptions options = Options();
  options.capacity_bytes = uint64_t{1} << 20;
  absl::StatusOr<std::unique_ptr<DiskTierStore>> store = DiskTierStore::Open(options);
  ASSERT_TRUE(store.ok()) << store.status();
  // 16 MiB of blocks through it. The filesystem counts whole 4 KiB pages,
  // the store the files' sizes: the margin is a page per file.
  const uint64_t most_used = Churn(**store, 0, 1023);
  const uint64_t files = static_cast<uint64_t>(std::distance(
      std::filesystem::directory_iterator(options.path), std::filesystem::directory_iterator()));
  std::printf("1 MiB configured: at most %llu bytes of the filesystem used, %llu files now\n",
              static_cast<unsigned long long>(most_used), static_cast<unsigned long long>(files));
  EXPECT_LE(most_used, options.capacity_bytes + 32 * 4096);
  EXPECT_TRUE((*store)->Stats().enabled);
  EXPECT_EQ(Read(**store, 1023), Block(1023));
}

TEST_F(DiskTierFullDiskTest, FillingTheDiskTurnsTheTierReadOnlyAndItReopens) {
  if (!fs_.mounted()) GTEST_SKIP() << fs_.skip_reason();
  uint64_t held = 0;
  {
    std::unique_ptr<DiskTierStore> store = OpenStore();
    Churn(*store, 0, 63);
    ASSERT_TRUE(store->Stats().writable);
    // Someone else takes the rest of the filesystem.
    fs_.Fill("filler");
    Churn(*store, 64, 95);
    const TierStoreStats stats = store->Stats();
    EXPECT_TRUE(stats.enabled) << stats.error;
    EXPECT_FALSE(stats.writable);
    EXPECT_NE(stats.error.find("bytes free"), std::string::npos) << stats.error;
    EXPECT_EQ(stats.capacity_bytes, stats.used_bytes);  // no room: no free blocks
    held = stats.blocks;
    ASSERT_GT(held, 0u);
    EXPECT_EQ(Read(*store, 63), Block(63));  // it still serves what it holds
    const uint64_t dropped = stats.dropped_inserts;
    ASSERT_TRUE(store->Insert(Key(1000), Block(1000)).ok());
    EXPECT_EQ(store->Stats().dropped_inserts, dropped + 1);
  }
  {
    // Reopening on the full disk: read-only again, the same blocks.
    std::unique_ptr<DiskTierStore> store = OpenStore();
    ASSERT_NE(store, nullptr);
    EXPECT_TRUE(store->Stats().enabled);
    EXPECT_FALSE(store->Stats().writable);
    EXPECT_EQ(store->Stats().blocks, held);
    EXPECT_EQ(Read(*store, 63), Block(63));
  }
  // Once there is room again, it takes new blocks.
  std::filesystem::remove(fs_.path() / "filler");
  std::unique_ptr<DiskTierStore> store = OpenStore();
  EXPECT_TRUE(store->Stats().writable);
  Churn(*store, 2000, 2007);
  EXPECT_EQ(Read(*store, 2007), Block(2007));
  EXPECT_EQ(Read(*store, 63), Block(63));
}

}  // namespace
}  // namespace strata::storage
