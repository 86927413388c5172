// The real daemon with its disk KV tier on a 4 MiB tmpfs under 8 concurrent
// clients (issue 12): the tier must stay within the filesystem, never take
// the daemon down, turn read-only with one structured (JSON) error when
// someone else fills the disk (or off, if that races with a write), keep
// serving, restart cleanly on the full disk, and its metrics must agree
// with what the process wrote. Mounting needs root; the test skips
// elsewhere (CI runs as root).
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/common/tmpfs_mount.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"

namespace strata {
namespace {

using testing::DaemonProcess;
using testing::Generation;
using testing::TextRequest;

constexpr uint64_t kFilesystemBytes = uint64_t{4} << 20;
constexpr uint64_t kMinFreeBytes = uint64_t{1} << 20;  // DiskTierOptions' default
constexpr int kClients = 8;

// Device arena of 10 blocks of 16 KiB, no host tier: every evicted block is
// offered to the disk tier, which is told it has 64 MiB (the filesystem has
// 4). JSON logs.
std::string Config(const std::filesystem::path& disk) {
  const std::string yaml = testing::BaseConfigYaml(
      "160KiB", "",
      absl::StrCat("  disk_path: \"", disk.string(), "\"\n  disk_bytes: 64MiB\n",
                   // Every evicted block is written (the default waits for a second use).
                   "  disk_admit_after_sightings: 1\n"));
  return absl::StrReplaceAll(yaml, {{"format: text", "format: json"}});
}

struct Addresses {
  std::string grpc;
  std::string metrics;
};

// WaitForListening for JSON logs.
bool WaitForJsonListening(DaemonProcess& daemon, Addresses& out) {
  static const std::regex kGrpc(R"re("grpc":"([^"]+)")re");
  static const std::regex kMetrics(R"re("metrics":"([^"]+)")re");
  for (int i = 0; i < 3600; ++i) {
    const std::string line =
        testing::CompleteLineContaining(daemon.Stderr(), "\"event\":\"listening\"");
    std::smatch grpc;
    std::smatch metrics;
    if (std::regex_search(line, grpc, kGrpc) && std::regex_search(line, metrics, kMetrics)) {
      out = {grpc[1], metrics[1]};
      return true;
    }
    if (!daemon.running()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// One series' value from a /metrics body; -1 if absent.
// /proc/PID/io's wchar: bytes the process passed to write calls.
uint64_t WrittenChars(pid_t pid) {
  std::ifstream io("/proc/" + std::to_string(pid) + "/io");
  std::string key;
  uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "wchar:") return value;
  }
  return 0;
}

// The daemon may delete a file (a compaction's input) while this lists
// them: such a file is not counted.
uint64_t FileBytes(const std::filesystem::path& dir, const std::string& extension) {
  uint64_t bytes = 0;
  std::error_code error;
  for (std::filesystem::directory_iterator it(dir, error), end; !error && it != end;
       it.increment(error)) {
    std::error_code entry_error;
    if (!it->is_regular_file(entry_error)) continue;
    if (!extension.empty() && it->path().extension() != extension) continue;
    const uintmax_t size = it->file_size(entry_error);
    if (!entry_error) bytes += size;
  }
  return bytes;
}

// kClients threads, `each` requests apiece, every prompt distinct; all must
// succeed.
void Load(const std::string& grpc, const std::string& tag, int each) {
  std::atomic<int> failures{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto stub = testing::NewStub(grpc);
      for (int i = 0; i < each; ++i) {
        const std::string prompt =
            absl::StrCat(tag, " client ", c, " request ", i,
                         " tells a long story about rivers, mountains, harbours and the people "
                         "who lived between them for many quiet years.");
        const Generation result = testing::StreamGenerate(*stub, TextRequest(prompt, 4));
        if (!result.status.ok()) ++failures;
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(failures.load(), 0);
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

// prometheus-cpp writes labels in alphabetical order.
constexpr char kDeviceToDisk[] = R"(strata_kv_transfer_bytes_total{from="device",to="disk"})";
constexpr char kDiskCached[] = R"(strata_kv_blocks{state="cached",tier="disk"})";
constexpr char kDiskFree[] = R"(strata_kv_blocks{state="free",tier="disk"})";
constexpr char kWriteSeconds[] = R"(strata_kv_transfer_seconds_count{from="device",to="disk"})";

TEST(DiskTierFullDiskTest, FullDiskTurnsTheTierReadOnlyAndTheDaemonServesAndRestarts) {
  testing::TempDir dir;
  testing::TmpfsMount fs(dir.path() / "mnt", kFilesystemBytes);
  if (!fs.mounted()) GTEST_SKIP() << fs.skip_reason();
  const std::filesystem::path disk = fs.path() / "kv";
  {
    std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(dir.path(), Config(disk), {}, "a");
    ASSERT_NE(daemon, nullptr);
    Addresses at;
    ASSERT_TRUE(WaitForJsonListening(*daemon, at)) << daemon->Stderr();

    // About 9 MiB of evicted blocks through a 4 MiB filesystem.
    Load(at.grpc, "first", 12);
    ASSERT_TRUE(daemon->running()) << daemon->Stderr();
    // The tier writes behind, on a thread at low priority, and indexes a
    // batch before writing it (reads are served from memory meanwhile): just
    // after the load, under CPU load, nothing may be written yet, or a batch
    // may be counted as cached on its way to the blob files. Wait until the
    // writer has written and caught up.
    std::string scrape;
    uint64_t blobs = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    do {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      scrape = testing::HttpGet(at.metrics, "/metrics").body;
      blobs = FileBytes(disk, ".blob");
    } while ((testing::MetricSample(scrape, kDeviceToDisk) <= 0 ||
              testing::MetricSample(scrape, kDiskCached) * 16384 > static_cast<double>(blobs)) &&
             std::chrono::steady_clock::now() < deadline);
    const double to_disk = testing::MetricSample(scrape, kDeviceToDisk);
    const uint64_t wchar = WrittenChars(daemon->pid());
    std::printf(
        "disk tier: %.0f bytes device->disk in metrics, wchar %llu, directory %llu "
        "(blobs %llu), %.0f blocks cached\n",
        to_disk, static_cast<unsigned long long>(wchar),
        static_cast<unsigned long long>(FileBytes(disk, "")),
        static_cast<unsigned long long>(blobs), testing::MetricSample(scrape, kDiskCached));
    EXPECT_GT(to_disk, 0);
    // What the metrics say went to disk, the process did write, and the
    // blocks they say are there are in the blob files.
    EXPECT_LE(to_disk, static_cast<double>(wchar));
    EXPECT_LE(testing::MetricSample(scrape, kDiskCached) * 16384, static_cast<double>(blobs));
    EXPECT_GT(testing::MetricSample(scrape, kWriteSeconds), 0);
    EXPECT_LE(FileBytes(disk, ""), kFilesystemBytes - kMinFreeBytes);
    const std::string early = daemon->Stderr();
    EXPECT_EQ(early.find("disk_tier_"), std::string::npos)
        << "no tier event yet: " << testing::CompleteLineContaining(early, "disk_tier_");

    // Someone else fills the filesystem: the tier turns read-only, once.
    fs.Fill("filler");
    Load(at.grpc, "second", 4);
    ASSERT_TRUE(daemon->running()) << daemon->Stderr();
    // The writer finds the disk full when it next writes: wait for its word.
    const auto full_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (Count(daemon->Stderr(), "\"disk_tier_read_only\"") +
                   Count(daemon->Stderr(), "\"disk_tier_off\"") ==
               0 &&
           std::chrono::steady_clock::now() < full_deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    const std::string before = testing::HttpGet(at.metrics, "/metrics").body;
    Load(at.grpc, "third", 2);
    const std::string after = testing::HttpGet(at.metrics, "/metrics").body;
    EXPECT_EQ(testing::MetricSample(before, kDeviceToDisk),
              testing::MetricSample(after, kDeviceToDisk))
        << "nothing written";
    EXPECT_EQ(testing::MetricSample(after, kDiskFree), 0);
    // Read-only when the writer saw the disk full before writing; off when
    // the filler won the race against a batch already being written (a
    // flush failed). Either way one structured error, in JSON.
    const std::string log = daemon->Stderr();
    const size_t read_only = Count(log, "\"disk_tier_read_only\"");
    const size_t off = Count(log, "\"disk_tier_off\"");
    EXPECT_EQ(read_only + off, 1u) << log;
    const std::string event = read_only == 1 ? "disk_tier_read_only" : "disk_tier_off";
    const std::string line = testing::CompleteLineContaining(log, "\"" + event + "\"");
    EXPECT_NE(line.find(R"({"ts":")"), std::string::npos) << line;
    EXPECT_NE(line.find(R"("level":"error","event":")" + event + "\""), std::string::npos) << line;

    daemon->Signal(SIGTERM);
    EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
  }
  // A restart on the full disk serves, the tier opened read-only, and stops
  // cleanly.
  std::unique_ptr<DaemonProcess> daemon = DaemonProcess::Serve(dir.path(), Config(disk), {}, "b");
  ASSERT_NE(daemon, nullptr);
  Addresses at;
  ASSERT_TRUE(WaitForJsonListening(*daemon, at)) << daemon->Stderr();
  Load(at.grpc, "fourth", 2);
  EXPECT_EQ(Count(daemon->Stderr(), "\"disk_tier_read_only\""), 1u) << daemon->Stderr();
  daemon->Signal(SIGTERM);
  EXPECT_EQ(daemon->Reap(), 0) << daemon->Stderr();
}

}  // namespace
}  // namespace strata
