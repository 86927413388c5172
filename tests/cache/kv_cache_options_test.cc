#include "cache/kv_cache_options.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::cache {
namespace {

using ::testing::HasSubstr;

TEST(KvCacheOptionsTest, DefaultsAreValid) { EXPECT_TRUE(ValidateKvCacheOptions({}).ok()); }

TEST(KvCacheOptionsTest, EachBadValueIsRefusedNamingItsKey) {
  struct Case {
    KvCacheOptions options;
    const char* key;
  };
  std::vector<Case> cases;
  cases.push_back({KvCacheOptions{.block_size = 0}, "cache.block_size"});
  cases.push_back({KvCacheOptions{.device_bytes = -1}, "cache.device_bytes"});
  cases.push_back({KvCacheOptions{.device_memory_fraction = 1.5}, "cache.device_memory_fraction"});
  cases.push_back({KvCacheOptions{.device_memory_fraction = -0.5}, "cache.device_memory_fraction"});
  cases.push_back({KvCacheOptions{.disk_path = "/tmp/kv"}, "cache.disk_bytes"});
  cases.push_back(
      {KvCacheOptions{.disk_admit_after_sightings = 0}, "cache.disk_admit_after_sightings"});
  cases.push_back(
      {KvCacheOptions{.disk_admit_after_sightings = 256}, "cache.disk_admit_after_sightings"});
  cases.push_back(
      {KvCacheOptions{.write_behind_blocks_per_step = -1}, "cache.write_behind_blocks_per_step"});
  for (const Case& c : cases) {
    absl::Status status = ValidateKvCacheOptions(c.options);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.key;
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.key));
  }
}

}  // namespace
}  // namespace strata::cache
