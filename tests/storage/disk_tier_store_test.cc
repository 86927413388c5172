#include "storage/disk_tier_store.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/disk_format.h"
#include "storage/disk_space.h"
#include "storage/disk_tier_rocksdb.h"
#include "tests/common/temp_dir.h"

namespace strata::storage {
namespace {

constexpr size_t kBlockBytes = 4096;
constexpr size_t kValueBytes = disk_format::kHeaderBytes + kBlockBytes;
constexpr uint64_t kModelA = 0xa11ce;
constexpr uint64_t kModelB = 0xb0b;

BlockKey Key(uint64_t i) { return BlockKey{.high = 0xfeed, .low = i}; }

std::vector<std::byte> Block(uint64_t i) {
  std::vector<std::byte> bytes(kBlockBytes);
  for (size_t j = 0; j < bytes.size(); ++j) {
    bytes[j] = static_cast<std::byte>((i * 2654435761u + j * 7) >> 3);
  }
  return bytes;
}

std::vector<std::byte> Copy(absl::Span<const std::byte> bytes) {
  return std::vector<std::byte>(bytes.begin(), bytes.end());
}

class DiskTierStoreTest : public ::testing::Test {
 protected:
  DiskTierOptions Options(uint64_t fingerprint = kModelA, size_t blocks = 64) const {
    DiskTierOptions options;
    options.path = (dir_.path() / "disk").string();
    options.block_bytes = kBlockBytes;
    // Room for exactly `blocks` values besides RocksDB's own files.
    options.capacity_bytes = DiskTierStore::CapacityForValues(blocks * kValueBytes);
    options.model_fingerprint = fingerprint;
    options.read_threads = 2;
    return options;
  }

  static std::unique_ptr<DiskTierStore> OpenStore(DiskTierOptions options) {
    absl::StatusOr<std::unique_ptr<DiskTierStore>> store = DiskTierStore::Open(std::move(options));
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // The block's bytes after a full read, or nullopt for any kind of miss.
  static std::optional<std::vector<std::byte>> Read(TierStore& store, uint64_t i) {
    std::unique_ptr<TierStoreHandle> handle = store.Lookup(Key(i));
    if (handle == nullptr) return std::nullopt;
    handle->Wait();
    EXPECT_TRUE(handle->IsReady());
    const absl::Span<const std::byte> value = handle->Value();
    if (value.empty()) return std::nullopt;
    return Copy(value);
  }

  static void InsertAll(DiskTierStore& store, uint64_t first, uint64_t last) {
    for (uint64_t i = first; i <= last; ++i) ASSERT_TRUE(store.Insert(Key(i), Block(i)).ok());
    store.Flush();
  }

  // Rewrites one stored value with the store closed, as damage on disk would.
  void RewriteValue(uint64_t fingerprint, uint64_t i,
                    const std::function<void(std::string&)>& damage) const {
    rocksdb::DBOptions options;
    const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, {}},
        {disk_format::kBlocksColumnFamily, {}},
        {disk_format::kIndexColumnFamily, {}},
    };
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, Options().path, families, &handles, &db).ok());
    const std::string key = disk_format::EncodeKey({fingerprint, Key(i)});
    std::string value;
    ASSERT_TRUE(db->Get({}, handles[1], key, &value).ok());
    damage(value);
    ASSERT_TRUE(db->Put({}, handles[1], key, value).ok());
    for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
    ASSERT_TRUE(db->Close().ok());
    delete db;
  }

  strata::testing::TempDir dir_;
};

TEST_F(DiskTierStoreTest, RoundTripsBlocksBitIdentical) {
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  ASSERT_TRUE(store->Insert(Key(1), Block(1)).ok());
  EXPECT_EQ(Read(*store, 1), Block(1));  // served from the write queue or from disk
  InsertAll(*store, 2, 10);
  for (uint64_t i = 1; i <= 10; ++i) EXPECT_EQ(Read(*store, i), Block(i)) << i;
  EXPECT_EQ(Read(*store, 11), std::nullopt);

  const TierStoreStats stats = store->Stats();
  EXPECT_TRUE(stats.enabled);
  EXPECT_EQ(stats.inserts, 10u);
  EXPECT_EQ(stats.dropped_inserts, 0u);
  EXPECT_EQ(stats.blocks, 10u);
  EXPECT_EQ(stats.used_bytes, 10 * kValueBytes);
  EXPECT_EQ(stats.bytes_written, 10 * kValueBytes);
  EXPECT_EQ(stats.hits, 11u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.bytes_read, 11 * kBlockBytes);
}

TEST_F(DiskTierStoreTest, RejectsBadOptionsAndBlocksOfTheWrongSize) {
  DiskTierOptions options = Options();
  options.block_bytes = 0;
  EXPECT_EQ(DiskTierStore::Open(options).status().code(), absl::StatusCode::kInvalidArgument);

  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  std::vector<std::byte> big(kBlockBytes + 1);
  EXPECT_EQ(store->Insert(Key(1), big).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DiskTierStoreTest, UnopenableDirectoryIsUnavailable) {
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  // The first store holds the database's lock.
  EXPECT_EQ(DiskTierStore::Open(Options()).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(DiskTierStoreTest, ServesItsBlocksAfterACleanRestart) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    for (uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE(store->Insert(Key(i), Block(i)).ok());
    // No Flush: closing writes what is queued.
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  EXPECT_EQ(store->Stats().blocks, 20u);
  EXPECT_EQ(store->Stats().used_bytes, 20 * kValueBytes);
  for (uint64_t i = 1; i <= 20; ++i) EXPECT_EQ(Read(*store, i), Block(i)) << i;
}

TEST_F(DiskTierStoreTest, EvictsOldestFirstAndKeepsTheOrderAcrossRestarts) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA, 3));
    InsertAll(*store, 1, 5);
    EXPECT_EQ(store->Stats().evictions, 2u);
    EXPECT_EQ(store->Stats().blocks, 3u);
    EXPECT_EQ(Read(*store, 1), std::nullopt);
    EXPECT_EQ(Read(*store, 2), std::nullopt);
    // A hit makes 3 the newest; 4 is next to go.
    EXPECT_EQ(Read(*store, 3), Block(3));
    store->Flush();
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA, 3));
  InsertAll(*store, 6, 6);
  EXPECT_EQ(Read(*store, 4), std::nullopt);
  EXPECT_EQ(Read(*store, 3), Block(3));
  EXPECT_EQ(Read(*store, 5), Block(5));
  EXPECT_EQ(Read(*store, 6), Block(6));
}

// A hit's touch (its new eviction order, and the rewrite of its block into
// the newest blob file) is upkeep: it waits for the next batch of inserts,
// or for the tier to go quiet, or for Flush; never for the hit itself.
TEST_F(DiskTierStoreTest, HitsAreRewrittenWithTheNextInsertsOrOnFlushNotAtOnce) {
  DiskTierOptions options = Options();
  options.quiet_before_touches = std::chrono::hours(1);
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  InsertAll(*store, 1, 2);
  EXPECT_EQ(Read(*store, 1), Block(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(store->Stats().touches_written, 0u);  // the tier was not quiet for an hour
  InsertAll(*store, 3, 3);                        // the touch goes with this put
  EXPECT_EQ(store->Stats().touches_written, 1u);
  EXPECT_EQ(Read(*store, 2), Block(2));
  store->Flush();
  EXPECT_EQ(store->Stats().touches_written, 2u);
  EXPECT_EQ(store->Stats().blocks_written, 3u);  // rewrites are not new blocks
}

// RocksDB hands a read blob over pinned; the rewrite keeps that pin rather
// than a copy, after the handle and the read are gone, and writes the same
// bytes again (a new blob value, not only a new order).
TEST_F(DiskTierStoreTest, AHitsRewriteWritesTheBytesItReadAfterItsHandleIsGone) {
  DiskTierOptions options = Options();
  options.quiet_before_touches = std::chrono::hours(1);
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(options);
    InsertAll(*store, 1, 1);
    store->Flush();
    const uint64_t blob_bytes = MeasureDiskSpace(options.path).blob_bytes;
    EXPECT_EQ(Read(*store, 1), Block(1));  // the handle is released inside
    store->Flush();
    EXPECT_EQ(store->Stats().touches_written, 1u);
    EXPECT_GE(MeasureDiskSpace(options.path).blob_bytes, blob_bytes + kValueBytes);
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  EXPECT_EQ(Read(*store, 1), Block(1));
}

TEST_F(DiskTierStoreTest, AQuietTierWritesItsTouchesOnItsOwn) {
  DiskTierOptions options = Options();
  options.quiet_before_touches = std::chrono::milliseconds(1);
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  InsertAll(*store, 1, 1);
  EXPECT_EQ(Read(*store, 1), Block(1));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (store->Stats().touches_written == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(store->Stats().touches_written, 1u);
}

// Threads of this process at nice 19, from /proc/self/task/*/stat (the
// 19th field, counted after the parenthesised name).
int ThreadsAtLowestPriority() {
  int count = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream stat(task.path() / "stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t name_end = text.rfind(')');
    if (name_end == std::string::npos) continue;
    std::istringstream fields(text.substr(name_end + 2));
    std::string field;
    for (int i = 3; i <= 19 && fields >> field; ++i) {
      if (i == 19 && field == "19") ++count;
    }
  }
  return count;
}

TEST_F(DiskTierStoreTest, LowPriorityWritesRunTheWriterAtNiceNineteen) {
  const int before = ThreadsAtLowestPriority();
  DiskTierOptions options = Options();
  options.low_priority_writes = true;
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  InsertAll(*store, 1, 3);  // the writer has run
  EXPECT_GT(ThreadsAtLowestPriority(), before);
  EXPECT_EQ(Read(*store, 2), Block(2));
  EXPECT_EQ(store->Stats().blocks_written, 3u);
}

TEST_F(DiskTierStoreTest, ReopeningWithASmallerCapacityEvictsTheOldest) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA, 8));
    InsertAll(*store, 1, 8);
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA, 2));
  EXPECT_EQ(store->Stats().blocks, 2u);
  EXPECT_EQ(Read(*store, 6), std::nullopt);
  EXPECT_EQ(Read(*store, 7), Block(7));
  EXPECT_EQ(Read(*store, 8), Block(8));
}

TEST_F(DiskTierStoreTest, EraseRemovesTheBlockForGood) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    InsertAll(*store, 1, 2);
    store->Erase(Key(1));
    EXPECT_EQ(store->Lookup(Key(1)), nullptr);
    store->Erase(Key(3));  // not held: nothing happens
    ASSERT_TRUE(store->Insert(Key(4), Block(4)).ok());
    store->Erase(Key(4));  // possibly still queued
    EXPECT_EQ(store->Lookup(Key(4)), nullptr);
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  EXPECT_EQ(store->Lookup(Key(1)), nullptr);
  EXPECT_EQ(store->Lookup(Key(4)), nullptr);
  EXPECT_EQ(Read(*store, 2), Block(2));
  EXPECT_EQ(store->Stats().blocks, 1u);
}

TEST_F(DiskTierStoreTest, CorruptValueIsAMissAndIsErased) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    InsertAll(*store, 1, 3);
  }
  RewriteValue(kModelA, 1, [](std::string& value) { value[disk_format::kHeaderBytes + 100] ^= 1; });
  RewriteValue(kModelA, 2, [](std::string& value) { value[0] ^= 0x40; });  // the magic
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    EXPECT_EQ(Read(*store, 1), std::nullopt);
    EXPECT_EQ(Read(*store, 2), std::nullopt);
    EXPECT_EQ(Read(*store, 3), Block(3));
    EXPECT_EQ(store->Stats().corrupt_misses, 2u);
    store->Flush();
    EXPECT_EQ(store->Lookup(Key(1)), nullptr);  // erased: now a miss known at once
    EXPECT_EQ(store->Stats().blocks, 1u);
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  EXPECT_EQ(store->Lookup(Key(1)), nullptr);
  EXPECT_EQ(store->Lookup(Key(2)), nullptr);
}

TEST_F(DiskTierStoreTest, TruncatedValueIsAMiss) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    InsertAll(*store, 1, 3);
  }
  RewriteValue(kModelA, 1, [](std::string& value) { value.resize(value.size() - 1); });
  RewriteValue(kModelA, 2, [](std::string& value) { value.resize(10); });  // not even a header
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  EXPECT_EQ(Read(*store, 1), std::nullopt);
  EXPECT_EQ(Read(*store, 2), std::nullopt);
  EXPECT_EQ(Read(*store, 3), Block(3));
  EXPECT_EQ(store->Stats().corrupt_misses, 2u);
}

TEST_F(DiskTierStoreTest, AnotherModelInTheSameDirectoryNeverSeesTheseBlocks) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA));
    InsertAll(*store, 1, 4);
  }
  {
    std::unique_ptr<DiskTierStore> other = OpenStore(Options(kModelB));
    for (uint64_t i = 1; i <= 4; ++i) EXPECT_EQ(other->Lookup(Key(i)), nullptr) << i;
    EXPECT_EQ(other->Stats().misses, 4u);
    EXPECT_EQ(other->Stats().used_bytes, 4 * kValueBytes);  // shared capacity
    InsertAll(*other, 5, 5);
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA));
  for (uint64_t i = 1; i <= 4; ++i) EXPECT_EQ(Read(*store, i), Block(i)) << i;
  EXPECT_EQ(store->Lookup(Key(5)), nullptr);
}

TEST_F(DiskTierStoreTest, ValueWrittenForAnotherModelIsAForeignMiss) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA));
    InsertAll(*store, 1, 2);
  }
  // An intact value with model B's header, under model A's key.
  RewriteValue(kModelA, 1, [](std::string& value) {
    disk_format::WriteHeader({kModelB, Key(1)}, kBlockBytes,
                             reinterpret_cast<std::byte*>(value.data()));
  });
  std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA));
  EXPECT_EQ(Read(*store, 1), std::nullopt);
  EXPECT_EQ(Read(*store, 2), Block(2));
  EXPECT_EQ(store->Stats().foreign_misses, 1u);
  EXPECT_EQ(store->Stats().corrupt_misses, 0u);
  store->Flush();
  EXPECT_EQ(store->Lookup(Key(1)), nullptr);
}

TEST_F(DiskTierStoreTest, WriteErrorTurnsTheTierOffAndServingGoesOn) {
  auto failing = std::make_shared<std::atomic<bool>>(false);
  DiskTierOptions options = Options();
  options.write_fault_for_testing = [failing](std::string_view) {
    return failing->load() ? absl::ResourceExhaustedError("injected: no space left on device")
                           : absl::OkStatus();
  };
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(options);
    InsertAll(*store, 1, 2);
    failing->store(true);
    InsertAll(*store, 3, 3);
    const TierStoreStats stats = store->Stats();
    EXPECT_FALSE(stats.enabled);
    EXPECT_NE(stats.error.find("no space left"), std::string::npos) << stats.error;
    EXPECT_EQ(stats.dropped_inserts, 1u);
    EXPECT_EQ(stats.blocks_written, 2u);
    // Off holds nothing and has no room: the metrics show an empty tier.
    EXPECT_EQ(stats.blocks, 0u);
    EXPECT_EQ(stats.capacity_bytes, 0u);
    // Off: cheap misses and dropped inserts, never an error or a crash.
    EXPECT_EQ(store->Lookup(Key(1)), nullptr);
    EXPECT_EQ(store->Lookup(Key(3)), nullptr);
    EXPECT_TRUE(store->Insert(Key(4), Block(4)).ok());
    store->Erase(Key(2));
    store->Flush();
    EXPECT_EQ(store->Stats().dropped_inserts, 2u);
  }
  // Once the disk has room again, a reopened store serves what was written.
  failing->store(false);
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  EXPECT_TRUE(store->Stats().enabled);
  EXPECT_EQ(Read(*store, 1), Block(1));
  EXPECT_EQ(Read(*store, 2), Block(2));
  EXPECT_EQ(Read(*store, 3), std::nullopt);
}

// A full disk the space checks could not see coming (another writer filled
// it during a batch) fails a write of whichever file RocksDB was writing:
// the tier turns off, the process goes on, and a reopen serves what was
// written before.
class DiskTierWriteFaultTest : public DiskTierStoreTest,
                               public ::testing::WithParamInterface<const char*> {};

TEST_P(DiskTierWriteFaultTest, NoSpaceInAnyFileTurnsTheTierOffWithoutACrash) {
  const std::string suffix = GetParam();
  auto failing = std::make_shared<std::atomic<bool>>(false);
  DiskTierOptions options = Options();
  options.write_fault_for_testing = [failing, suffix](std::string_view file) {
    return failing->load() && file.find(suffix) != std::string_view::npos
               ? absl::ResourceExhaustedError("injected: no space left on device")
               : absl::OkStatus();
  };
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(options);
    InsertAll(*store, 1, 4);
    failing->store(true);
    for (uint64_t first = 5; first < 200 && store->Stats().enabled; first += 4) {
      InsertAll(*store, first, first + 3);
    }
    EXPECT_FALSE(store->Stats().enabled) << suffix;
    EXPECT_EQ(store->Lookup(Key(1)), nullptr);
  }
  failing->store(false);
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Stats().enabled);
  EXPECT_EQ(Read(*store, 1), Block(1));
  EXPECT_EQ(Read(*store, 4), Block(4));
}

INSTANTIATE_TEST_SUITE_P(EveryKindOfFile, DiskTierWriteFaultTest,
                         ::testing::Values(".blob", ".sst", "MANIFEST"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param[0] == '.' ? info.param + 1 : info.param);
                         });

TEST_F(DiskTierStoreTest, AFailedWriteWhileOpeningLeavesTheTierOffNotTheCaller) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA, 8));
    InsertAll(*store, 1, 8);
  }
  // Reopened smaller, it evicts at once; that write fails.
  DiskTierOptions options = Options(kModelA, 2);
  options.write_fault_for_testing = [](std::string_view file) {
    return file.ends_with(".sst") ? absl::ResourceExhaustedError("injected: no space left")
                                  : absl::OkStatus();
  };
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(store->Stats().enabled);
  EXPECT_EQ(store->Lookup(Key(8)), nullptr);
  EXPECT_TRUE(store->Insert(Key(9), Block(9)).ok());
}

TEST_F(DiskTierStoreTest, DropsInsertsWhileTheWriteQueueIsFull) {
  auto armed = std::make_shared<std::atomic<bool>>(false);
  auto writing = std::make_shared<absl::Notification>();
  auto release = std::make_shared<absl::Notification>();
  DiskTierOptions options = Options();
  options.max_queued_bytes = kValueBytes;  // one block waits at most
  // Holds the writer inside its first blob file write once armed.
  options.write_fault_for_testing = [=](std::string_view file) {
    if (armed->load() && file.ends_with(".blob") && !writing->HasBeenNotified()) {
      writing->Notify();
      release->WaitForNotification();
    }
    return absl::OkStatus();
  };
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  armed->store(true);
  ASSERT_TRUE(store->Insert(Key(1), Block(1)).ok());
  writing->WaitForNotification();                     // 1 is being written
  ASSERT_TRUE(store->Insert(Key(2), Block(2)).ok());  // queued
  ASSERT_TRUE(store->Insert(Key(3), Block(3)).ok());  // no room: dropped
  EXPECT_EQ(store->Stats().dropped_inserts, 1u);
  EXPECT_EQ(Read(*store, 2), Block(2));  // served from the queue
  release->Notify();
  store->Flush();
  EXPECT_EQ(Read(*store, 1), Block(1));
  EXPECT_EQ(Read(*store, 2), Block(2));
  EXPECT_EQ(store->Lookup(Key(3)), nullptr);
}

TEST_F(DiskTierStoreTest, ConcurrentInsertsAndLookupsNeverSeeWrongBytes) {
  std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA, 150));
  constexpr int kThreads = 4;
  constexpr uint64_t kPerThread = 100;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t n = 0; n < kPerThread; ++n) {
        const uint64_t i = t * kPerThread + n;
        if (!store->Insert(Key(i), Block(i)).ok()) ++wrong;
        // Reads of this thread's and others' blocks, old and new, all in flight at once.
        std::vector<std::unique_ptr<TierStoreHandle>> handles;
        std::vector<uint64_t> wanted;
        for (uint64_t j : {i, i / 2, (i * 7) % (kThreads * kPerThread)}) {
          wanted.push_back(j);
          handles.push_back(store->Lookup(Key(j)));
        }
        if (n % 10 == 0) store->Erase(Key(i / 3));
        store->WaitAll(handles);
        for (size_t k = 0; k < handles.size(); ++k) {
          if (handles[k] == nullptr || handles[k]->Value().empty()) continue;
          if (Copy(handles[k]->Value()) != Block(wanted[k])) ++wrong;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  store->Flush();
  EXPECT_EQ(wrong.load(), 0);
  const TierStoreStats stats = store->Stats();
  EXPECT_TRUE(stats.enabled);
  EXPECT_EQ(stats.lookups, stats.hits + stats.misses);
  EXPECT_EQ(stats.corrupt_misses + stats.foreign_misses, 0u);
  EXPECT_LE(stats.used_bytes, 150 * kValueBytes);
  EXPECT_EQ(stats.used_bytes, stats.blocks * kValueBytes);
}

TEST_F(DiskTierStoreTest, HandlesOutliveTheStore) {
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  InsertAll(*store, 1, 1);
  std::unique_ptr<TierStoreHandle> handle = store->Lookup(Key(1));
  ASSERT_NE(handle, nullptr);
  store.reset();  // finishes queued reads before closing
  EXPECT_EQ(Copy(handle->Value()), Block(1));
}

TEST_F(DiskTierStoreTest, DiskUseStaysWithinTheCapacityUnderChurn) {
  // 1 MiB in all, RocksDB's files included, while 16 MiB of blocks go
  // through it. A WAL beside a 64 MiB memtable used to grow to tens of MiB.
  DiskTierOptions options = Options();
  options.capacity_bytes = uint64_t{1} << 20;
  std::unique_ptr<DiskTierStore> store = OpenStore(options);
  uint64_t most = 0;
  for (uint64_t first = 0; first < 4096; first += 32) {
    InsertAll(*store, first, first + 31);
    most = std::max(most, MeasureDiskSpace(options.path).directory_bytes);
  }
  EXPECT_LE(most, options.capacity_bytes);
  const TierStoreStats stats = store->Stats();
  EXPECT_TRUE(stats.enabled);
  EXPECT_TRUE(stats.writable);
  EXPECT_GE(stats.blocks, DiskTierStore::ValueCapacity(options.capacity_bytes) / kValueBytes / 2);
  EXPECT_LE(stats.used_bytes, DiskTierStore::ValueCapacity(options.capacity_bytes));
  EXPECT_EQ(Read(*store, 4095), Block(4095));  // the newest stay
  EXPECT_EQ(Read(*store, 0), std::nullopt);    // the oldest went
}

TEST_F(DiskTierStoreTest, TransfersAreTimedAndMatchWhatWasWritten) {
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  InsertAll(*store, 1, 10);
  uint64_t in = 0;
  for (const TierTransfer& transfer : store->TakeTransfers()) {
    EXPECT_EQ(transfer.direction, TierTransfer::Direction::kIn);
    EXPECT_GE(transfer.seconds, 0.0);
    in += transfer.blocks;
  }
  EXPECT_EQ(in, 10u);
  EXPECT_EQ(store->Stats().blocks_written, 10u);
  for (uint64_t i = 1; i <= 3; ++i) EXPECT_EQ(Read(*store, i), Block(i));
  const std::vector<TierTransfer> out = store->TakeTransfers();
  ASSERT_EQ(out.size(), 3u);
  for (const TierTransfer& transfer : out) {
    EXPECT_EQ(transfer.direction, TierTransfer::Direction::kOut);
    EXPECT_EQ(transfer.blocks, 1u);
  }
  EXPECT_TRUE(store->TakeTransfers().empty());
}

// The blob files in the store's directory, oldest (lowest number) first.
std::vector<std::filesystem::path> BlobFiles(const std::string& directory) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(directory)) {
    if (entry.path().extension() == ".blob") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Every block of [first, last] reads back whole or is a miss; returns the hits.
uint64_t CountIntactBlocks(TierStore& store, uint64_t first, uint64_t last) {
  uint64_t hits = 0;
  for (uint64_t i = first; i <= last; ++i) {
    std::unique_ptr<TierStoreHandle> handle = store.Lookup(Key(i));
    if (handle == nullptr) continue;
    const absl::Span<const std::byte> value = handle->Value();
    if (value.empty()) continue;
    EXPECT_EQ(Copy(value), Block(i)) << i;
    ++hits;
  }
  return hits;
}

TEST_F(DiskTierStoreTest, DeletedBlobFileIsRepairedOnOpenAndTheTierStaysOn) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    // Three batches, three flushes: at least three blob files.
    InsertAll(*store, 1, 8);
    InsertAll(*store, 9, 16);
    InsertAll(*store, 17, 24);
  }
  const std::vector<std::filesystem::path> blobs = BlobFiles(Options().path);
  ASSERT_GE(blobs.size(), 2u);
  std::filesystem::remove(blobs.front());
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    const TierStoreStats stats = store->Stats();
    EXPECT_TRUE(stats.enabled);
    EXPECT_GE(stats.lost_blocks, 1u);
    EXPECT_EQ(stats.blocks + stats.lost_blocks, 24u);
    EXPECT_EQ(CountIntactBlocks(*store, 1, 24), stats.blocks);
    EXPECT_EQ(Read(*store, 24), Block(24));
    EXPECT_TRUE(store->Stats().enabled);
    InsertAll(*store, 25, 25);  // and it takes new blocks
    EXPECT_EQ(Read(*store, 25), Block(25));
  }
  // Repaired for good: nothing more is lost on the next open.
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  EXPECT_TRUE(store->Stats().enabled);
  EXPECT_EQ(store->Stats().lost_blocks, 0u);
  EXPECT_EQ(CountIntactBlocks(*store, 1, 25), store->Stats().blocks);
  EXPECT_TRUE(store->Stats().enabled);
}

TEST_F(DiskTierStoreTest, BlobFileDeletedWhileOpenLosesOnlyItsBlocks) {
  {
    std::unique_ptr<DiskTierStore> store = OpenStore(Options());
    InsertAll(*store, 1, 8);
    InsertAll(*store, 9, 16);
  }
  std::unique_ptr<DiskTierStore> store = OpenStore(Options());
  const std::vector<std::filesystem::path> blobs = BlobFiles(Options().path);
  ASSERT_GE(blobs.size(), 2u);
  std::filesystem::remove(blobs.front());
  const uint64_t intact = CountIntactBlocks(*store, 1, 16);
  store->Flush();
  const TierStoreStats stats = store->Stats();
  EXPECT_TRUE(stats.enabled) << stats.error;
  EXPECT_GE(stats.lost_blocks, 1u);
  EXPECT_EQ(intact + stats.lost_blocks, 16u);
  EXPECT_EQ(stats.blocks, intact);
  EXPECT_EQ(Read(*store, 16), Block(16));
}

// Every flush adds an SST per family to level 0, which every read searches.
// Without evictions nothing else makes the store compact, so it must merge
// them itself once there are kDiskTierMaxLevel0Files. Each flush's keys
// span the others' (as hashed block keys do), so merging rewrites them
// into fewer files rather than moving them down a level.
TEST_F(DiskTierStoreTest, ManyFlushesWithoutEvictionsKeepLevelZeroBounded) {
  constexpr uint64_t kFlushes = 5 * kDiskTierMaxLevel0Files;
  std::unique_ptr<DiskTierStore> store = OpenStore(Options(kModelA, 2 * kFlushes));
  for (uint64_t i = 0; i < kFlushes; ++i) {
    ASSERT_TRUE(store->Insert(Key(i), Block(i)).ok());
    ASSERT_TRUE(store->Insert(Key(2 * kFlushes - 1 - i), Block(2 * kFlushes - 1 - i)).ok());
    store->Flush();
  }
  uint64_t tables = 0;
  for (const auto& entry : std::filesystem::directory_iterator(Options().path)) {
    if (entry.path().extension() == ".sst") ++tables;
  }
  EXPECT_LE(tables, 2 * (kDiskTierMaxLevel0Files + 1)) << "of " << 2 * kFlushes << " flushed";
  const TierStoreStats stats = store->Stats();
  EXPECT_EQ(stats.blocks, 2 * kFlushes);
  EXPECT_EQ(stats.dropped_inserts, 0u);
  for (uint64_t i = 0; i < 2 * kFlushes; ++i) EXPECT_EQ(Read(*store, i), Block(i)) << i;
}

}  // namespace
}  // namespace strata::storage
