// Demotions: a block evicted from the device goes straight into the host
// tier's memory (one copy), or through a staging slot into a tier that only
// takes Insert (the disk tier); the tier holds it only once the step's moves
// were performed, and a block the tier holds already is not copied again.
#include "cache/demotions.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "gtest/gtest.h"
#include "storage/host_tier_store.h"
#include "tests/mocks/fake_tier_store.h"

namespace strata::cache {
namespace {

constexpr size_t kBlockBytes = 128;

BlockKey Key(uint64_t i) { return BlockKey{.high = 7, .low = i}; }

std::vector<std::byte> Block(uint64_t i) {
  std::vector<std::byte> bytes(kBlockBytes);
  for (size_t j = 0; j < bytes.size(); ++j) bytes[j] = static_cast<std::byte>((i * 29 + j) & 0xff);
  return bytes;
}

// What a kDeviceToHost move does with the span Add returned.
void Copy(std::optional<absl::Span<std::byte>> dst, uint64_t i) {
  ASSERT_TRUE(dst.has_value());
  ASSERT_EQ(dst->size(), kBlockBytes);
  const std::vector<std::byte> bytes = Block(i);
  std::copy(bytes.begin(), bytes.end(), dst->begin());
}

bool Holds(storage::TierStore& store, uint64_t i) {
  std::unique_ptr<storage::TierStoreHandle> handle = store.Lookup(Key(i));
  if (handle == nullptr) return false;
  const absl::Span<const std::byte> value = handle->Value();
  return std::vector<std::byte>(value.begin(), value.end()) == Block(i);
}

storage::HostTierOptions HostOptions(size_t blocks) {
  storage::HostTierOptions options;
  options.block_bytes = kBlockBytes;
  options.capacity_bytes = blocks * kBlockBytes;
  return options;
}

TEST(DemotionsTest, HostTierBlocksAreWrittenInPlaceAndHeldAfterAPerformedStep) {
  StagingPool staging(kBlockBytes, 4, storage::HeapHostAllocator());
  storage::HostTierStore host(HostOptions(4));
  Demotions demotions(staging, host, Tier::kHost);
  EXPECT_EQ(demotions.tier(), Tier::kHost);
  Copy(demotions.Add(Key(1)), 1);
  Copy(demotions.Add(Key(2)), 2);
  EXPECT_EQ(staging.num_in_use(), 0);  // no staging copy
  EXPECT_FALSE(Holds(host, 1));        // not before the step is done
  EXPECT_EQ(demotions.Finish(/*performed=*/true), 2);
  EXPECT_TRUE(Holds(host, 1));
  EXPECT_TRUE(Holds(host, 2));
  EXPECT_EQ(host.Stats().bytes_written, 2 * kBlockBytes);
  EXPECT_EQ(demotions.num_pending(), 0);
}

TEST(DemotionsTest, AStepWhoseMovesDidNotRunLeavesTheTierAsItWas) {
  StagingPool staging(kBlockBytes, 4, storage::HeapHostAllocator());
  storage::HostTierStore host(HostOptions(4));
  Demotions demotions(staging, host, Tier::kHost);
  Copy(demotions.Add(Key(1)), 1);
  EXPECT_EQ(demotions.Finish(/*performed=*/false), 0);
  EXPECT_FALSE(Holds(host, 1));
  EXPECT_EQ(host.Stats().used_bytes, 0u);
}

TEST(DemotionsTest, ABlockTheTierHoldsIsNotCopiedAgain) {
  StagingPool staging(kBlockBytes, 4, storage::HeapHostAllocator());
  storage::HostTierStore host(HostOptions(4));
  ASSERT_TRUE(host.Insert(Key(1), Block(1)).ok());
  Demotions demotions(staging, host, Tier::kHost);
  EXPECT_FALSE(demotions.Add(Key(1)).has_value());
  EXPECT_EQ(demotions.Finish(/*performed=*/true), 0);  // nothing moved
  EXPECT_TRUE(Holds(host, 1));
}

TEST(DemotionsTest, MoreThanTheHostTierHoldsPushesTheOldestDownATier) {
  std::vector<BlockKey> pushed_down;
  storage::HostTierOptions options = HostOptions(2);
  options.on_evict = [&](const BlockKey& key, absl::Span<const std::byte> bytes) {
    EXPECT_EQ(std::vector<std::byte>(bytes.begin(), bytes.end()), Block(key.low));
    pushed_down.push_back(key);
  };
  StagingPool staging(kBlockBytes, 4, storage::HeapHostAllocator());
  storage::HostTierStore host(std::move(options));
  Demotions demotions(staging, host, Tier::kHost);
  for (uint64_t i = 1; i <= 4; ++i) Copy(demotions.Add(Key(i)), i);
  EXPECT_EQ(staging.num_in_use(), 2);  // 1 and 2 in place; 3 and 4 staged
  EXPECT_EQ(demotions.Finish(/*performed=*/true), 4);
  EXPECT_EQ(pushed_down, (std::vector<BlockKey>{Key(1), Key(2)}));
  EXPECT_TRUE(Holds(host, 3));
  EXPECT_TRUE(Holds(host, 4));
  EXPECT_EQ(staging.num_in_use(), 0);
}

TEST(DemotionsTest, NoRoomAnywhereDropsTheBlock) {
  StagingPool staging(kBlockBytes, 0, storage::HeapHostAllocator());
  storage::HostTierStore host(HostOptions(1));
  ASSERT_TRUE(host.Insert(Key(1), Block(1)).ok());
  std::unique_ptr<storage::TierStoreHandle> pin = host.Lookup(Key(1));
  Demotions demotions(staging, host, Tier::kHost);
  EXPECT_FALSE(demotions.Add(Key(2)).has_value());  // dropped: recomputed if needed
  EXPECT_EQ(demotions.num_pending(), 0);
}

TEST(DemotionsTest, AnInsertOnlyTierGetsItsBlocksThroughStaging) {
  StagingPool staging(kBlockBytes, 1, storage::HeapHostAllocator());
  // Takes blocks only through Insert, as the disk tier does.
  strata::testing::FakeTierStore disk(kBlockBytes);
  Demotions demotions(staging, disk, Tier::kDisk);
  Copy(demotions.Add(Key(1)), 1);
  EXPECT_EQ(staging.num_in_use(), 1);
  EXPECT_FALSE(demotions.Add(Key(2)).has_value());  // the one staging slot is taken
  EXPECT_TRUE(disk.blocks().empty());
  EXPECT_EQ(demotions.Finish(/*performed=*/true), 1);
  EXPECT_EQ(staging.num_in_use(), 0);
  ASSERT_TRUE(disk.blocks().contains(Key(1)));
  EXPECT_EQ(disk.blocks()[Key(1)], Block(1));

  Copy(demotions.Add(Key(3)), 3);
  EXPECT_EQ(demotions.Finish(/*performed=*/false), 0);
  EXPECT_FALSE(disk.blocks().contains(Key(3)));
  EXPECT_EQ(staging.num_in_use(), 0);
}

TEST(DemotionsTest, AnInsertOnlyTierIsNotStagedBlocksItHoldsOrDeclines) {
  StagingPool staging(kBlockBytes, 4, storage::HeapHostAllocator());
  strata::testing::FakeTierStore disk(kBlockBytes);
  disk.blocks()[Key(1)] = Block(1);
  disk.declined().insert(Key(2));  // as disk admission declines a block wanted once
  Demotions demotions(staging, disk, Tier::kDisk);
  EXPECT_FALSE(demotions.Add(Key(1)).has_value());
  EXPECT_FALSE(demotions.Add(Key(2)).has_value());
  EXPECT_EQ(staging.num_in_use(), 0);
  EXPECT_EQ(demotions.num_pending(), 0);
  EXPECT_EQ(demotions.Finish(/*performed=*/true), 0);
  EXPECT_FALSE(disk.blocks().contains(Key(2)));
}

TEST(DemotionsTest, DestroyedMidStepItDiscardsItsWritersAndSlots) {
  StagingPool staging(kBlockBytes, 4, storage::HeapHostAllocator());
  storage::HostTierStore host(HostOptions(2));
  {
    Demotions demotions(staging, host, Tier::kHost);
    Copy(demotions.Add(Key(1)), 1);
  }
  EXPECT_FALSE(Holds(host, 1));
  EXPECT_EQ(host.Stats().used_bytes, 0u);
}

}  // namespace
}  // namespace strata::cache
