// Durability of the disk tier across a kill -9. Alone in its binary on
// purpose: the child is forked, and a process that has already run other
// tests may hold RocksDB's background threads, which a forked child lacks.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "storage/disk_format.h"
#include "storage/disk_tier_store.h"
#include "tests/common/temp_dir.h"

namespace strata::storage {
namespace {

constexpr size_t kBlockBytes = 64 << 10;
constexpr uint64_t kFingerprint = 0x5eed;
constexpr uint64_t kCapacityBlocks = 96;
constexpr uint64_t kInserted = 144;  // fills the tier, then evicts the oldest 48

BlockKey Key(uint64_t i) { return BlockKey{.high = i * 0x9e3779b97f4a7c15ull, .low = i}; }

std::vector<std::byte> Block(uint64_t i) {
  std::vector<std::byte> bytes(kBlockBytes);
  uint64_t state = i + 1;
  for (std::byte& b : bytes) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    b = static_cast<std::byte>(state >> 56);
  }
  return bytes;
}

DiskTierOptions Options(const std::string& path) {
  DiskTierOptions options;
  options.path = path;
  options.block_bytes = kBlockBytes;
  options.capacity_bytes = kCapacityBlocks * (disk_format::kHeaderBytes + kBlockBytes);
  options.model_fingerprint = kFingerprint;
  options.max_queued_bytes = options.capacity_bytes * 2;  // no drops: every block is written
  return options;
}

// Runs in the forked child: fill the store, wait until every block is
// written, tell the parent, and die without any clean-up.
[[noreturn]] void FillAndDie(const std::string& path, int ready_fd) {
  absl::StatusOr<std::unique_ptr<DiskTierStore>> store = DiskTierStore::Open(Options(path));
  if (!store.ok()) _exit(2);
  for (uint64_t i = 0; i < kInserted; ++i) {
    if (!(*store)->Insert(Key(i), Block(i)).ok()) _exit(3);
  }
  (*store)->Flush();
  const TierStoreStats stats = (*store)->Stats();
  if (stats.dropped_inserts != 0 || stats.blocks != kCapacityBlocks) _exit(4);
  const char ready = 'R';
  if (write(ready_fd, &ready, 1) != 1) _exit(5);
  raise(SIGKILL);
  _exit(6);  // not reached
}

TEST(DiskTierDurabilityTest, BlocksSurviveSigkill) {
  strata::testing::TempDir dir;
  const std::string path = (dir.path() / "disk").string();
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    FillAndDie(path, fds[1]);
  }
  close(fds[1]);
  char ready = 0;
  const ssize_t got = read(fds[0], &ready, 1);
  close(fds[0]);
  int wait_status = 0;
  ASSERT_EQ(waitpid(child, &wait_status, 0), child);
  ASSERT_EQ(got, 1) << "the child failed before it was ready; exit status "
                    << (WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1);
  ASSERT_TRUE(WIFSIGNALED(wait_status));
  ASSERT_EQ(WTERMSIG(wait_status), SIGKILL);

  absl::StatusOr<std::unique_ptr<DiskTierStore>> store = DiskTierStore::Open(Options(path));
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->Stats().blocks, kCapacityBlocks);
  std::vector<std::unique_ptr<TierStoreHandle>> handles;
  for (uint64_t i = 0; i < kInserted; ++i) handles.push_back((*store)->Lookup(Key(i)));
  (*store)->WaitAll(handles);
  const uint64_t evicted = kInserted - kCapacityBlocks;
  for (uint64_t i = 0; i < kInserted; ++i) {
    if (i < evicted) {
      EXPECT_EQ(handles[i], nullptr) << i;  // the oldest went first, before the kill
      continue;
    }
    ASSERT_NE(handles[i], nullptr) << i;
    const absl::Span<const std::byte> value = handles[i]->Value();
    EXPECT_TRUE(std::vector<std::byte>(value.begin(), value.end()) == Block(i)) << i;
  }
  const TierStoreStats stats = (*store)->Stats();
  EXPECT_EQ(stats.hits, kCapacityBlocks);
  EXPECT_EQ(stats.corrupt_misses, 0u);
}

}  // namespace
}  // namespace strata::storage
