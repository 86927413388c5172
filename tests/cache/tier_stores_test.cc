#include "cache/tier_stores.h"

#include <fstream>

#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"

namespace strata::cache {
namespace {

constexpr size_t kBlockBytes = 4096;

KvCacheOptions Options(const std::filesystem::path& disk) {
  KvCacheOptions options;
  options.host_bytes = 16 * kBlockBytes;
  options.disk_path = disk.string();
  options.disk_bytes = uint64_t{8} << 20;
  return options;
}

TEST(TierStoresTest, OpensBothTiers) {
  strata::testing::TempDir dir;
  absl::StatusOr<TierStores> stores =
      OpenTierStores(Options(dir.path() / "kv"), kBlockBytes, ModelFingerprint{1, 2}, nullptr);
  ASSERT_TRUE(stores.ok()) << stores.status();
  EXPECT_NE(stores->host, nullptr);
  ASSERT_NE(stores->disk, nullptr);
  EXPECT_TRUE(stores->disk->Stats().enabled);
}

// The host tier's evictions reach the disk tier through its admission:
// with admit_after_sightings 2, a block only one request wanted is not
// written, one two requests wanted is.
TEST(TierStoresTest, HostEvictionsPassTheDiskAdmission) {
  strata::testing::TempDir dir;
  KvCacheOptions options = Options(dir.path() / "kv");
  options.host_bytes = kBlockBytes;  // one block: each insert evicts the previous
  options.disk_admit_after_sightings = 2;
  absl::StatusOr<TierStores> stores =
      OpenTierStores(options, kBlockBytes, ModelFingerprint{1, 2}, nullptr);
  ASSERT_TRUE(stores.ok()) << stores.status();
  ASSERT_NE(stores->disk, nullptr);
  const BlockKey once{1, 1};
  const BlockKey twice{2, 2};
  stores->disk->RecordSightings({once, twice});
  stores->disk->RecordSightings({twice});
  const std::vector<std::byte> bytes(kBlockBytes, std::byte{7});
  for (const BlockKey& key : {once, twice, BlockKey{3, 3}}) {
    ASSERT_TRUE(stores->host->Insert(key, bytes).ok());  // evicts the one before
  }
  stores->disk->Flush();
  EXPECT_EQ(stores->disk->Lookup(once), nullptr);
  EXPECT_NE(stores->disk->Lookup(twice), nullptr);
  EXPECT_EQ(stores->disk->Stats().not_admitted_blocks, 1u);
  EXPECT_EQ(stores->disk->Stats().blocks_written, 1u);
}

TEST(TierStoresTest, ADiskTierThatCannotOpenIsLeftOffAndTheRestServes) {
  strata::testing::TempDir dir;
  // A file where the directory should be: RocksDB cannot open it.
  std::ofstream(dir.path() / "not_a_directory") << "x";
  absl::StatusOr<TierStores> stores = OpenTierStores(Options(dir.path() / "not_a_directory" / "kv"),
                                                     kBlockBytes, ModelFingerprint{1, 2}, nullptr);
  ASSERT_TRUE(stores.ok()) << stores.status();
  EXPECT_EQ(stores->disk, nullptr);
  EXPECT_NE(stores->host, nullptr);
}

TEST(TierStoresTest, InvalidOptionsAreStillErrors) {
  KvCacheOptions options;
  options.disk_path = "/tmp/kv";  // without disk_bytes
  EXPECT_EQ(OpenTierStores(options, kBlockBytes, ModelFingerprint{1, 2}, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::cache
