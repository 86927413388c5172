#include "storage/host_tier_store.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "gtest/gtest.h"

namespace strata::storage {
namespace {

constexpr size_t kBlockBytes = 256;

BlockKey Key(uint64_t i) { return BlockKey{.high = 0x1234, .low = i}; }

// Every byte depends on the key, so a block served for the wrong key shows.
std::vector<std::byte> Block(uint64_t i) {
  std::vector<std::byte> bytes(kBlockBytes);
  for (size_t j = 0; j < bytes.size(); ++j) bytes[j] = static_cast<std::byte>((i * 131 + j) & 0xff);
  return bytes;
}

bool Holds(TierStore& store, uint64_t i) {
  std::unique_ptr<TierStoreHandle> handle = store.Lookup(Key(i));
  if (handle == nullptr) return false;
  const absl::Span<const std::byte> value = handle->Value();
  const std::vector<std::byte> expected = Block(i);
  return std::vector<std::byte>(value.begin(), value.end()) == expected;
}

HostTierOptions Options(size_t blocks) {
  HostTierOptions options;
  options.block_bytes = kBlockBytes;
  options.capacity_bytes = blocks * kBlockBytes;
  options.slab_bytes = 2 * kBlockBytes;
  return options;
}

TEST(HostTierStoreTest, RoundTripsBlocksAndMissesUnknownKeys) {
  HostTierStore store(Options(4));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  std::unique_ptr<TierStoreHandle> handle = store.Lookup(Key(1));
  ASSERT_NE(handle, nullptr);
  EXPECT_TRUE(handle->IsReady());
  EXPECT_TRUE(Holds(store, 2));
  EXPECT_EQ(store.Lookup(Key(3)), nullptr);
  handle.reset();

  const TierStoreStats stats = store.Stats();
  EXPECT_TRUE(stats.enabled);
  EXPECT_EQ(stats.inserts, 2u);
  EXPECT_EQ(stats.lookups, 3u);
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.blocks, 2u);
  EXPECT_EQ(stats.used_bytes, 2 * kBlockBytes);
  EXPECT_EQ(stats.capacity_bytes, 4 * kBlockBytes);
  EXPECT_EQ(stats.bytes_written, 2 * kBlockBytes);
  EXPECT_EQ(stats.bytes_read, 2 * kBlockBytes);
}

TEST(HostTierStoreTest, RejectsBlocksOfTheWrongSize) {
  HostTierStore store(Options(4));
  std::vector<std::byte> small(kBlockBytes - 1);
  EXPECT_EQ(store.Insert(Key(1), small).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);
  EXPECT_EQ(store.Stats().inserts, 0u);
}

TEST(HostTierStoreTest, EvictsLeastRecentlyUsedAndReportsEvictions) {
  std::vector<std::pair<BlockKey, std::vector<std::byte>>> evicted;
  HostTierOptions options = Options(3);
  options.on_evict = [&](const BlockKey& key, absl::Span<const std::byte> bytes) {
    evicted.emplace_back(key, std::vector<std::byte>(bytes.begin(), bytes.end()));
  };
  HostTierStore store(std::move(options));
  for (uint64_t i = 1; i <= 3; ++i) ASSERT_TRUE(store.Insert(Key(i), Block(i)).ok());
  ASSERT_TRUE(Holds(store, 1));  // 2 is now the least recently used
  ASSERT_TRUE(store.Insert(Key(4), Block(4)).ok());

  ASSERT_EQ(evicted.size(), 1u);
  EXPECT_EQ(evicted[0].first, Key(2));
  EXPECT_EQ(evicted[0].second, Block(2));  // handed over intact, for demotion
  EXPECT_FALSE(Holds(store, 2));
  EXPECT_TRUE(Holds(store, 1));
  EXPECT_TRUE(Holds(store, 3));
  EXPECT_TRUE(Holds(store, 4));
  EXPECT_EQ(store.Stats().evictions, 1u);
  EXPECT_EQ(store.Stats().blocks, 3u);
}

TEST(HostTierStoreTest, ReinsertingAKeyRefreshesItWithoutCopying) {
  HostTierStore store(Options(2));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());  // 1 is now the newest
  ASSERT_TRUE(store.Insert(Key(3), Block(3)).ok());
  EXPECT_TRUE(Holds(store, 1));
  EXPECT_FALSE(Holds(store, 2));
  EXPECT_EQ(store.Stats().bytes_written, 3 * kBlockBytes);
}

TEST(HostTierStoreTest, PinnedBlocksSurviveEvictionPressure) {
  HostTierStore store(Options(2));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  std::unique_ptr<TierStoreHandle> one = store.Lookup(Key(1));
  std::unique_ptr<TierStoreHandle> two = store.Lookup(Key(2));
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);

  // Both pinned: nothing to evict, so the new block is dropped.
  ASSERT_TRUE(store.Insert(Key(3), Block(3)).ok());
  EXPECT_EQ(store.Stats().dropped_inserts, 1u);
  EXPECT_EQ(store.Lookup(Key(3)), nullptr);

  // Unpinning 2 makes it evictable; 1 stays pinned and intact throughout.
  two.reset();
  ASSERT_TRUE(store.Insert(Key(4), Block(4)).ok());
  EXPECT_FALSE(Holds(store, 2));
  EXPECT_TRUE(Holds(store, 4));
  const absl::Span<const std::byte> value = one->Value();
  EXPECT_EQ(std::vector<std::byte>(value.begin(), value.end()), Block(1));
}

TEST(HostTierStoreTest, ErasedPinnedBlockKeepsItsBytesUntilReleased) {
  HostTierStore store(Options(1));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  std::unique_ptr<TierStoreHandle> handle = store.Lookup(Key(1));
  ASSERT_NE(handle, nullptr);
  store.Erase(Key(1));
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);
  EXPECT_EQ(store.Stats().blocks, 0u);

  // Its slot is still in use, so the only slot cannot take a new block yet.
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  EXPECT_EQ(store.Stats().dropped_inserts, 1u);
  const absl::Span<const std::byte> value = handle->Value();
  EXPECT_EQ(std::vector<std::byte>(value.begin(), value.end()), Block(1));

  handle.reset();
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  EXPECT_TRUE(Holds(store, 2));
  EXPECT_EQ(store.Stats().evictions, 0u);
}

TEST(HostTierStoreTest, AllocatesSlabsLazilyThroughTheInjectedAllocator) {
  std::vector<size_t> requests;
  HostTierOptions options = Options(5);  // slabs of two blocks: 2 + 2 + 1
  options.allocator = [&](size_t bytes) {
    requests.push_back(bytes);
    return HeapHostAllocator()(bytes);
  };
  HostTierStore store(std::move(options));
  EXPECT_TRUE(requests.empty());
  for (uint64_t i = 1; i <= 7; ++i) ASSERT_TRUE(store.Insert(Key(i), Block(i)).ok());
  EXPECT_EQ(requests, (std::vector<size_t>{2 * kBlockBytes, 2 * kBlockBytes, kBlockBytes}));
  for (uint64_t i = 3; i <= 7; ++i) EXPECT_TRUE(Holds(store, i)) << i;
  EXPECT_EQ(store.Stats().evictions, 2u);
}

TEST(HostTierStoreTest, AllocatorFailureShrinksTheTierInsteadOfFailing) {
  int calls = 0;
  HostTierOptions options = Options(4);
  options.allocator = [&](size_t bytes) -> absl::StatusOr<std::unique_ptr<HostMemory>> {
    if (++calls > 1) return absl::ResourceExhaustedError("no pinned memory left");
    return HeapHostAllocator()(bytes);
  };
  HostTierStore store(std::move(options));
  for (uint64_t i = 1; i <= 4; ++i) ASSERT_TRUE(store.Insert(Key(i), Block(i)).ok());
  EXPECT_EQ(calls, 2);  // not retried on every insert
  EXPECT_TRUE(Holds(store, 3));
  EXPECT_TRUE(Holds(store, 4));
  const TierStoreStats stats = store.Stats();
  EXPECT_TRUE(stats.enabled);
  EXPECT_NE(stats.error.find("no pinned memory left"), std::string::npos);
  EXPECT_EQ(stats.blocks, 2u);
}

TEST(HostTierStoreTest, NoMemoryAtAllDisablesTheTier) {
  HostTierOptions options = Options(4);
  options.allocator = [](size_t) -> absl::StatusOr<std::unique_ptr<HostMemory>> {
    return absl::ResourceExhaustedError("no pinned memory");
  };
  HostTierStore store(std::move(options));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);
  EXPECT_FALSE(store.Stats().enabled);
  EXPECT_EQ(store.Stats().dropped_inserts, 1u);
}

TEST(HostTierStoreTest, CapacityBelowOneBlockHoldsNothing) {
  HostTierOptions options = Options(0);
  options.capacity_bytes = kBlockBytes - 1;
  HostTierStore store(std::move(options));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);
  EXPECT_EQ(store.Stats().capacity_bytes, 0u);
}

TEST(HostTierStoreTest, WaitAllSkipsMissesAndWaitsForHits) {
  HostTierStore store(Options(4));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  std::vector<std::unique_ptr<TierStoreHandle>> handles;
  handles.push_back(store.Lookup(Key(1)));
  handles.push_back(store.Lookup(Key(2)));
  store.WaitAll(handles);
  EXPECT_TRUE(handles[0]->IsReady());
  EXPECT_EQ(handles[1], nullptr);
}

// Fills a writer with Block(i), as a device-to-host copy would.
void Fill(TierStoreWriter& writer, uint64_t i) {
  const std::vector<std::byte> bytes = Block(i);
  ASSERT_EQ(writer.Data().size(), bytes.size());
  std::copy(bytes.begin(), bytes.end(), writer.Data().begin());
}

TEST(HostTierStoreTest, StartInsertWritesInPlaceAndServesOnlyAfterCommit) {
  HostTierStore store(Options(2));
  StartedInsert started = store.StartInsert(Key(1));
  ASSERT_EQ(started.outcome, StartedInsert::Outcome::kWriting);
  ASSERT_NE(started.writer, nullptr);
  Fill(*started.writer, 1);
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);  // not committed: never half-written bytes
  started.writer->Commit();
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);  // still pinned by its writer
  started.writer.reset();
  EXPECT_TRUE(Holds(store, 1));
  const TierStoreStats stats = store.Stats();
  EXPECT_EQ(stats.inserts, 1u);
  EXPECT_EQ(stats.bytes_written, kBlockBytes);
  EXPECT_EQ(stats.blocks, 1u);
}

TEST(HostTierStoreTest, AWriterGoneWithoutCommitLeavesNothing) {
  HostTierStore store(Options(1));
  StartedInsert started = store.StartInsert(Key(1));
  ASSERT_EQ(started.outcome, StartedInsert::Outcome::kWriting);
  Fill(*started.writer, 1);
  started.writer.reset();
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);
  EXPECT_EQ(store.Stats().blocks, 0u);
  EXPECT_EQ(store.Stats().used_bytes, 0u);
  EXPECT_EQ(store.Stats().bytes_written, 0u);
  // The slot is free again, without an eviction.
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  EXPECT_TRUE(Holds(store, 2));
  EXPECT_EQ(store.Stats().evictions, 0u);
}

TEST(HostTierStoreTest, StartInsertOfAHeldKeyCopiesNothingAndRefreshesIt) {
  HostTierStore store(Options(2));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  EXPECT_EQ(store.StartInsert(Key(1)).outcome, StartedInsert::Outcome::kHeld);  // 1 is newest
  ASSERT_TRUE(store.Insert(Key(3), Block(3)).ok());
  EXPECT_TRUE(Holds(store, 1));
  EXPECT_FALSE(Holds(store, 2));

  // A key being written is held too: one writer per key.
  StartedInsert first = store.StartInsert(Key(4));
  ASSERT_EQ(first.outcome, StartedInsert::Outcome::kWriting);
  EXPECT_EQ(store.StartInsert(Key(4)).outcome, StartedInsert::Outcome::kHeld);
  ASSERT_TRUE(store.Insert(Key(4), Block(4)).ok());  // left to the writer
  Fill(*first.writer, 4);
  first.writer->Commit();
  first.writer.reset();
  EXPECT_TRUE(Holds(store, 4));
}

TEST(HostTierStoreTest, StartInsertEvictsTheLeastRecentlyUsedOrHasNoRoomWhenAllArePinned) {
  std::vector<BlockKey> evicted;
  HostTierOptions options = Options(2);
  options.on_evict = [&](const BlockKey& key, absl::Span<const std::byte> bytes) {
    EXPECT_EQ(std::vector<std::byte>(bytes.begin(), bytes.end()), Block(key.low));
    evicted.push_back(key);
  };
  HostTierStore store(std::move(options));
  ASSERT_TRUE(store.Insert(Key(1), Block(1)).ok());
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  StartedInsert three = store.StartInsert(Key(3));
  ASSERT_EQ(three.outcome, StartedInsert::Outcome::kWriting);
  EXPECT_EQ(evicted, std::vector<BlockKey>{Key(1)});
  std::unique_ptr<TierStoreHandle> two = store.Lookup(Key(2));
  ASSERT_NE(two, nullptr);
  // 2 is pinned by a reader and 3 by its writer: nothing can make room.
  const uint64_t inserts = store.Stats().inserts;
  EXPECT_EQ(store.StartInsert(Key(4)).outcome, StartedInsert::Outcome::kNoRoom);
  EXPECT_EQ(store.Stats().inserts, inserts);  // nothing happened: the caller may Insert later
  EXPECT_EQ(store.Stats().dropped_inserts, 0u);
  three.writer.reset();  // discarded: its slot is free again
  EXPECT_EQ(store.StartInsert(Key(4)).outcome, StartedInsert::Outcome::kWriting);
}

TEST(HostTierStoreTest, AKeyErasedWhileBeingWrittenIsNotServed) {
  HostTierStore store(Options(1));
  StartedInsert started = store.StartInsert(Key(1));
  ASSERT_EQ(started.outcome, StartedInsert::Outcome::kWriting);
  store.Erase(Key(1));
  Fill(*started.writer, 1);
  started.writer->Commit();
  started.writer.reset();
  EXPECT_EQ(store.Lookup(Key(1)), nullptr);
  EXPECT_EQ(store.Stats().used_bytes, 0u);
  ASSERT_TRUE(store.Insert(Key(2), Block(2)).ok());
  EXPECT_TRUE(Holds(store, 2));
}

TEST(HostTierStoreTest, HeapAllocatorAlignsLargeRegionsToHugePages) {
  absl::StatusOr<std::unique_ptr<HostMemory>> small = HeapHostAllocator()(1000);
  absl::StatusOr<std::unique_ptr<HostMemory>> large = HeapHostAllocator()((size_t{4} << 20) + 64);
  ASSERT_TRUE(small.ok() && large.ok());
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*small)->data()) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*large)->data()) % (size_t{2} << 20), 0u);
  EXPECT_EQ((*large)->size(), (size_t{4} << 20) + 64);
  std::fill_n((*large)->data(), (*large)->size(), std::byte{7});  // all of it is usable
}

}  // namespace
}  // namespace strata::storage
