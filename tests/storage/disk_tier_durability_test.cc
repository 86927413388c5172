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
#include "tests/common/sigkill_child.h"
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
  options.capacity_bytes =
      DiskTierStore::CapacityForValues(kCapacityBlocks * (disk_format::kHeaderBytes + kBlockBytes));
  options.model_fingerprint = kFingerprint;
  options.max_queued_bytes = options.capacity_bytes * 2;  // no drops: every block is written
  return options;
}

// Runs in the forked child: fills the store and waits until every block is
// written. Returns 0, or the step that failed; RunChildUntilSigkill then
// kills the child without any clean-up.
int Fill(const std::string& path) {
  absl::StatusOr<std::unique_ptr<DiskTierStore>> store = DiskTierStore::Open(Options(path));
  if (!store.ok()) return 2;
  for (uint64_t i = 0; i < kInserted; ++i) {
    if (!(*store)->Insert(Key(i), Block(i)).ok()) return 3;
  }
  (*store)->Flush();
  const TierStoreStats stats = (*store)->Stats();
  if (stats.dropped_inserts != 0 || stats.blocks != kCapacityBlocks) return 4;
  return 0;
}

TEST(DiskTierDurabilityTest, BlocksSurviveSigkill) {
  strata::testing::TempDir dir;
  const std::string path = (dir.path() / "disk").string();
  const strata::testing::KilledChild child =
      strata::testing::RunChildUntilSigkill([&] { return Fill(path); });
  ASSERT_TRUE(child.became_ready) << "the child failed before it was ready; exit "
                                  << child.exit_code;
  ASSERT_TRUE(child.killed_by_sigkill);

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
