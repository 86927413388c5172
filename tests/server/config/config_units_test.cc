// Byte sizes and durations as written in the config.
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/daemon_config.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;

TEST(ParseByteSizeTest, AcceptsIntegersAndUnits) {
  EXPECT_EQ(*ParseByteSize("0"), 0u);
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("4GiB"), 4ull << 30);
  EXPECT_EQ(*ParseByteSize("512MiB"), 512ull << 20);
  EXPECT_EQ(*ParseByteSize("1GB"), 1000000000u);
  EXPECT_EQ(*ParseByteSize("2 kb"), 2000u);
  EXPECT_EQ(*ParseByteSize("16B"), 16u);
  EXPECT_EQ(*ParseByteSize("1.5KiB"), 1536u);
  EXPECT_EQ(*ParseByteSize("1TiB"), 1ull << 40);
  EXPECT_EQ(*ParseByteSize(" 3mib "), 3ull << 20);
}

TEST(ParseByteSizeTest, RejectsMalformedSizes) {
  for (const char* bad : {"", "GiB", "4XB", "-1", "1.5", "0.1B", "4 GiB x", "99999999999TiB"}) {
    absl::StatusOr<uint64_t> size = ParseByteSize(bad);
    ASSERT_FALSE(size.ok()) << bad;
    EXPECT_EQ(size.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(size.status().message(), HasSubstr("bad size")) << bad;
  }
  EXPECT_THAT(ParseByteSize("4XB").status().message(), HasSubstr("unknown unit 'XB'"));
}

TEST(FormatByteSizeTest, UsesTheLargestExactBinaryUnit) {
  EXPECT_EQ(FormatByteSize(0), "0");
  EXPECT_EQ(FormatByteSize(4ull << 30), "4GiB");
  EXPECT_EQ(FormatByteSize(1536), "1536");
  EXPECT_EQ(FormatByteSize(3072), "3KiB");
  EXPECT_EQ(FormatByteSize(1000000000), "1000000000");
  for (uint64_t bytes : {0ull, 1ull, 1000ull, 5ull << 20, 7ull << 40}) {
    EXPECT_EQ(*ParseByteSize(FormatByteSize(bytes)), bytes);
  }
}

TEST(ParseDurationMsTest, AcceptsUnitsAndPlainSeconds) {
  EXPECT_EQ(*ParseDurationMs("30s"), 30000);
  EXPECT_EQ(*ParseDurationMs("500ms"), 500);
  EXPECT_EQ(*ParseDurationMs("2m"), 120000);
  EXPECT_EQ(*ParseDurationMs("1h"), 3600000);
  EXPECT_EQ(*ParseDurationMs("1.5s"), 1500);
  EXPECT_EQ(*ParseDurationMs("10"), 10000);
  EXPECT_EQ(*ParseDurationMs("0"), 0);
}

TEST(ParseDurationMsTest, RejectsMalformedDurations) {
  for (const char* bad : {"", "s", "-1s", "30 sec", "1.0005s", "3d"}) {
    absl::StatusOr<int64_t> ms = ParseDurationMs(bad);
    ASSERT_FALSE(ms.ok()) << bad;
    EXPECT_THAT(ms.status().message(), HasSubstr("bad duration")) << bad;
  }
}

TEST(FormatDurationMsTest, RoundTrips) {
  EXPECT_EQ(FormatDurationMs(30000), "30s");
  EXPECT_EQ(FormatDurationMs(1500), "1500ms");
  EXPECT_EQ(FormatDurationMs(0), "0s");
  EXPECT_EQ(FormatDurationMs(90000), "90s");
  EXPECT_EQ(FormatDurationMs(300000), "5m");
  EXPECT_EQ(FormatDurationMs(7200000), "2h");
  for (int64_t ms : {0, 1, 999, 60000, 90000, 86400000, 86400001}) {
    EXPECT_EQ(*ParseDurationMs(FormatDurationMs(ms)), ms);
  }
}

}  // namespace
}  // namespace strata::server
