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
