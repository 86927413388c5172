// The disk tier's admission policy and its test hooks: blocks wanted by
// fewer than admit_after_sightings requests are not written (and counted),
// and a read delay slows reads without changing what they return.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "storage/disk_format.h"
#include "storage/disk_tier_store.h"
#include "tests/common/temp_dir.h"

namespace strata::storage {
namespace {

constexpr size_t kBlockBytes = 4096;

BlockKey Key(uint64_t i) {
  return BlockKey{.high = 0xabc * (i + 1), .low = i * 0x9e3779b97f4a7c15ull};
}

std::vector<std::byte> Block(uint64_t i) {
  return std::vector<std::byte>(kBlockBytes, static_cast<std::byte>(i));
}

DiskTierOptions Options(const testing::TempDir& dir, int admit_after) {
  DiskTierOptions options;
  options.path = (dir.path() / "disk").string();
  options.block_bytes = kBlockBytes;
  options.capacity_bytes = DiskTierStore::CapacityForValues(64 * (kBlockBytes + 64));
  options.model_fingerprint = 7;
  options.read_threads = 2;
  options.admit_after_sightings = admit_after;
  return options;
}

TEST(DiskTierAdmissionTest, WritesOnlyBlocksWantedTwice) {
  testing::TempDir dir;
  auto store = DiskTierStore::Open(Options(dir, 2));
  ASSERT_TRUE(store.ok()) << store.status();
  DiskTierStore& disk = **store;
  // Block 0 was in two requests' prompts, block 1 in one, block 2 in none
  // (generated output).
  disk.RecordSightings({Key(0), Key(1)});
  disk.RecordSightings({Key(0)});
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE(disk.Insert(Key(i), Block(i)).ok());
  disk.Flush();
  EXPECT_NE(disk.Lookup(Key(0)), nullptr);
  EXPECT_EQ(disk.Lookup(Key(1)), nullptr);
  EXPECT_EQ(disk.Lookup(Key(2)), nullptr);
  const TierStoreStats stats = disk.Stats();
  EXPECT_EQ(stats.inserts, 3u);
  EXPECT_EQ(stats.blocks_written, 1u);
  EXPECT_EQ(stats.not_admitted_blocks, 2u);
  EXPECT_EQ(stats.not_admitted_bytes, 2 * (kBlockBytes + disk_format::kHeaderBytes));
  EXPECT_EQ(stats.dropped_inserts, 0u);
}

// A demotion asks StartInsert first, so that it copies a block only when
// the store will write it: the store copies through Insert (kUnsupported),
// but answers kHeld for a key it holds or queues and kDeclined for one
// admission turns away.
TEST(DiskTierAdmissionTest, StartInsertTellsWhichBlocksAreWorthACopy) {
  testing::TempDir dir;
  auto store = DiskTierStore::Open(Options(dir, 2));
  ASSERT_TRUE(store.ok()) << store.status();
  DiskTierStore& disk = **store;
  using Outcome = StartedInsert::Outcome;
  disk.RecordSightings({Key(0), Key(1)});
  disk.RecordSightings({Key(0)});
  EXPECT_EQ(disk.StartInsert(Key(0)).outcome, Outcome::kUnsupported);  // stage and Insert
  EXPECT_EQ(disk.StartInsert(Key(1)).outcome, Outcome::kDeclined);     // wanted once
  ASSERT_TRUE(disk.Insert(Key(0), Block(0)).ok());
  EXPECT_EQ(disk.StartInsert(Key(0)).outcome, Outcome::kHeld);  // queued
  disk.Flush();
  EXPECT_EQ(disk.StartInsert(Key(0)).outcome, Outcome::kHeld);  // written
  const TierStoreStats stats = disk.Stats();
  EXPECT_EQ(stats.inserts, 4u);  // the declined, the Insert and the two held offers
  EXPECT_EQ(stats.blocks_written, 1u);
  EXPECT_EQ(stats.not_admitted_blocks, 1u);
}

TEST(DiskTierAdmissionTest, OneWritesEveryBlock) {
  testing::TempDir dir;
  auto store = DiskTierStore::Open(Options(dir, 1));
  ASSERT_TRUE(store.ok()) << store.status();
  for (uint64_t i = 0; i < 3; ++i) ASSERT_TRUE((*store)->Insert(Key(i), Block(i)).ok());
  (*store)->Flush();
  EXPECT_EQ((*store)->Stats().blocks_written, 3u);
  EXPECT_EQ((*store)->Stats().not_admitted_blocks, 0u);
}

TEST(DiskTierAdmissionTest, OutOfRangeIsAnError) {
  testing::TempDir dir;
  for (int bad : {0, 256}) {
    auto store = DiskTierStore::Open(Options(dir, bad));
    EXPECT_EQ(store.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(store.status().message().find("admit_after_sightings"), std::string_view::npos);
  }
}

TEST(DiskTierAdmissionTest, ReadDelayIsAppliedAndReadyAtIsReported) {
  testing::TempDir dir;
  DiskTierOptions options = Options(dir, 1);
  std::atomic<int> delayed_reads{0};
  std::atomic<bool> slow{false};
  options.read_delay_for_testing = [&](std::string_view) {
    if (!slow.load()) return std::chrono::microseconds(0);
    delayed_reads.fetch_add(1);
    return std::chrono::microseconds(1000);
  };
  auto store = DiskTierStore::Open(std::move(options));
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Insert(Key(3), Block(3)).ok());
  (*store)->Flush();
  slow.store(true);
  const auto before = std::chrono::steady_clock::now();
  std::unique_ptr<TierStoreHandle> handle = (*store)->Lookup(Key(3));
  ASSERT_NE(handle, nullptr);
  EXPECT_EQ(std::vector<std::byte>(handle->Value().begin(), handle->Value().end()), Block(3));
  EXPECT_GT(delayed_reads.load(), 0);  // the read went through the slow file
  ASSERT_TRUE(handle->ReadyAt().has_value());
  EXPECT_GE(*handle->ReadyAt(), before);
}

}  // namespace
}  // namespace strata::storage
