// The disk tier across a kill -9 of a serving process: a child fills it
// through the real scheduler and backend and dies by SIGKILL; the parent
// restarts on the same directory and gets disk hits with exactly the cold
// output. Stored values damaged on disk are misses, never wrong output. Alone
// in its binary: the child is forked before any thread (RocksDB's, the
// backend's pool) exists.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/disk_format.h"
#include "tests/common/sigkill_child.h"
#include "tests/common/temp_dir.h"
#include "tests/server/tiered_cache_util.h"

namespace strata::server {
namespace {

using testing::MakeRequest;
using testing::Options;
using testing::RunEach;
using testing::Tokens;

constexpr uint64_t kDiskBytes = 1 << 20;

std::vector<scheduler::Request> Requests() {
  // Three prompts of 11 blocks on an arena of 11: each evicts the one before.
  return {MakeRequest(1, Tokens(41, 1)), MakeRequest(2, Tokens(41, 2)),
          MakeRequest(3, Tokens(41, 3)), MakeRequest(4, Tokens(41, 1))};
}

// In the forked child: A, B and C go through the disk tier until it has
// written everything. Returns 0, or the step that failed.
int Fill(const std::string& path) {
  absl::StatusOr<ServingEngine> serving =
      LoadServingEngine(testing::kModel, Options(11, 0, path, kDiskBytes));
  if (!serving.ok()) return 2;
  {
    scheduler::Scheduler scheduler(serving->scheduler_options);
    const auto requests = Requests();
    RunEach(scheduler, *serving->backend, {requests[0], requests[1], requests[2]});
  }
  serving->tiers.disk->Flush();
  const storage::TierStoreStats stats = serving->tiers.disk->Stats();
  if (stats.blocks < 20) {
    fprintf(stderr, "disk: %llu blocks, %llu inserts, %llu dropped, enabled %d %s\n",
            (unsigned long long)stats.blocks, (unsigned long long)stats.inserts,
            (unsigned long long)stats.dropped_inserts, stats.enabled, stats.error.c_str());
    return 3;
  }
  return 0;
}

// Flips one payload byte of every stored block, with the store closed.
void CorruptEveryValue(const std::string& path) {
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, {}},
      {storage::disk_format::kBlocksColumnFamily, {}},
      {storage::disk_format::kIndexColumnFamily, {}},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(rocksdb::DBOptions(), path, families, &handles, &db).ok());
  std::vector<std::pair<std::string, std::string>> damaged;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}, handles[1]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string value = it->value().ToString();
    value[storage::disk_format::kHeaderBytes + 7] ^= 0x10;
    damaged.emplace_back(it->key().ToString(), std::move(value));
  }
  it.reset();
  EXPECT_GE(damaged.size(), 20u);
  for (const auto& [key, value] : damaged) ASSERT_TRUE(db->Put({}, handles[1], key, value).ok());
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  ASSERT_TRUE(db->Close().ok());
  delete db;
}

TEST(TieredCacheDurabilityTest, DiskHitsAfterSigkillAreExactAndCorruptionIsAMiss) {
  strata::testing::TempDir dir;
  const std::string path = (dir.path() / "kv").string();
  const strata::testing::KilledChild child =
      strata::testing::RunChildUntilSigkill([&] { return Fill(path); });
  ASSERT_TRUE(child.became_ready) << "the child failed before it was ready; exit " << child.exit_code;
  ASSERT_TRUE(child.killed_by_sigkill);

  const auto requests = Requests();
  const auto cold = testing::ColdOutputs({requests[3]});
  {  // Restart: A's prefix is on disk, and comes back exactly.
    absl::StatusOr<ServingEngine> serving =
        LoadServingEngine(testing::kModel, Options(11, 0, path, kDiskBytes));
    ASSERT_TRUE(serving.ok()) << serving.status();
    scheduler::Scheduler scheduler(serving->scheduler_options);
    auto outputs = RunEach(scheduler, *serving->backend, {requests[3]});
    EXPECT_EQ(outputs[4], cold.at(4));
    EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)], 40);
  }
  CorruptEveryValue(path);
  {  // Damaged on disk: misses, recomputed, the same output.
    absl::StatusOr<ServingEngine> serving =
        LoadServingEngine(testing::kModel, Options(11, 0, path, kDiskBytes));
    ASSERT_TRUE(serving.ok()) << serving.status();
    scheduler::Scheduler scheduler(serving->scheduler_options);
    auto outputs = RunEach(scheduler, *serving->backend, {requests[3]});
    EXPECT_EQ(outputs[4], cold.at(4));
    EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)], 0);
    EXPECT_GT(serving->tiers.disk->Stats().corrupt_misses, 0u);
  }
}

}  // namespace
}  // namespace strata::server
