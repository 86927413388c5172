// The disk KV tier across a restart of the real daemon: blocks evicted from a
// small device arena are written to RocksDB (cache.disk_path), the daemon
// writes what is queued when it stops on SIGTERM, and a new daemon on the
// same directory serves the old prompt's prefix from disk. /metrics shows the
// disk tier's blocks meanwhile. With write-behind (the daemon's default) the
// blocks reach the disk even when nothing is evicted.
#include <signal.h>

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"

namespace strata {
namespace {

using testing::DaemonProcess;
using testing::Generation;
using testing::TextRequest;

constexpr char kPrompt[] =
    "The old cartographer drew every island twice, once as the sailors saw it and once as the "
    "birds did, and kept both maps in a locked drawer.";

// A device arena of `device_bytes` (160 KiB: 10 blocks, 160 tokens), no
// host tier: evicted blocks go to the disk tier.
std::string DiskConfig(const std::filesystem::path& disk,
                       const std::string& device_bytes = "160KiB") {
  return testing::BaseConfigYaml(
      device_bytes, "",
      absl::StrCat("  disk_path: \"", disk.string(), "\"\n  disk_bytes: 64MiB\n",
                   // Every evicted block is written (the default waits for a second use).
                   "  disk_admit_after_sightings: 1\n"));
}

double DiskCachedBlocks(const std::string& metrics_address) {
  return testing::ScrapeMetric(metrics_address, R"(strata_kv_blocks{state="cached",tier="disk"})");
}

// A new daemon on the same directory serves kPrompt's prefix from disk.
void ExpectPromptServedFromDiskAfterRestart(const std::filesystem::path& dir,
                                            const std::string& config) {
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(dir, config, {}, "second");
  ASSERT_NE(daemon, nullptr);
  ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
  auto stub = testing::NewStub(daemon->grpc_address());
  const Generation again = testing::StreamGenerate(*stub, TextRequest(kPrompt, 4));
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_GE(again.final_info.usage().cached_disk_tokens(), 16);
  EXPECT_EQ(again.final_info.usage().cached_device_tokens(), 0);
  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

TEST(DiskTierRestartTest, EvictedBlocksSurviveARestartAndAreServedFromDisk) {
  testing::TempDir dir;
  const std::filesystem::path disk = dir.path() / "kv";
  {
    std::unique_ptr<DaemonProcess> daemon =
        DaemonProcess::Serve(dir.path(), DiskConfig(disk), {}, "first");
    ASSERT_NE(daemon, nullptr);
    ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
    auto stub = testing::NewStub(daemon->grpc_address());
    const Generation first = testing::StreamGenerate(*stub, TextRequest(kPrompt, 4));
    ASSERT_TRUE(first.status.ok()) << first.status.error_message();
    // Other long prompts push the first one's blocks out of the device arena.
    for (int i = 0; i < 4; ++i) {
      const std::string other = absl::StrCat("Variation ", i, " of a long and winding tale about ",
                                             "rivers, mountains, harbours and the people who "
                                             "lived between them for many quiet years.");
      const Generation result = testing::StreamGenerate(*stub, TextRequest(other, 4));
      ASSERT_TRUE(result.status.ok()) << result.status.error_message();
    }
    double blocks = 0;
    for (int i = 0; i < 600 && blocks <= 0; ++i) {
      blocks = DiskCachedBlocks(daemon->metrics_address());
      if (blocks <= 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_GT(blocks, 0);
    daemon->Signal(SIGTERM);
    ASSERT_EQ(daemon->Reap(), 0) << daemon->Stderr();
    EXPECT_NE(daemon->Stderr().find("event=disk_tier_closed"), std::string::npos);
  }
  ExpectPromptServedFromDiskAfterRestart(dir.path(), DiskConfig(disk));
}

// Write-behind (the daemon's default): a request's blocks reach the disk
// tier after it ends, with no eviction at all, so a restart finds them.
TEST(DiskTierRestartTest, BlocksAreWrittenBehindWithoutAnEvictionAndSurviveARestart) {
  testing::TempDir dir;
  const std::filesystem::path disk = dir.path() / "kv";
  const std::string config = DiskConfig(disk, "4MiB");  // nothing is evicted
  {
    std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(dir.path(), config, {}, "first");
    ASSERT_NE(daemon, nullptr);
    ASSERT_TRUE(daemon->WaitForListening()) << daemon->Stderr();
    auto stub = testing::NewStub(daemon->grpc_address());
    const Generation first = testing::StreamGenerate(*stub, TextRequest(kPrompt, 4));
    ASSERT_TRUE(first.status.ok()) << first.status.error_message();
    const std::string& metrics = daemon->metrics_address();
    double behind = 0;
    for (int i = 0; i < 600 && (behind <= 0 || DiskCachedBlocks(metrics) <= 0); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      behind = testing::ScrapeMetric(metrics, "strata_kv_written_behind_blocks_total");
    }
    EXPECT_GT(behind, 0);
    EXPECT_GT(DiskCachedBlocks(metrics), 0);
    EXPECT_EQ(testing::ScrapeMetric(metrics, R"(strata_kv_evicted_blocks_total{tier="device"})"),
              0);  // nothing was evicted
    daemon->Signal(SIGTERM);
    ASSERT_EQ(daemon->Reap(), 0) << daemon->Stderr();
  }
  ExpectPromptServedFromDiskAfterRestart(dir.path(), config);
}

}  // namespace
}  // namespace strata
