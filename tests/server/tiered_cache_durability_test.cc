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

// In the forked child: A, B and C go through the disk tier; once it has
// written everything, tell the parent and die without clean-up.
[[noreturn]] void FillAndDie(const std::string& path, int ready_fd) {
  absl::StatusOr<ServingEngine> serving =
      LoadServingEngine(testing::kModel, Options(11, 0, path, kDiskBytes));
  if (!serving.ok()) _exit(2);
  {
    scheduler::Scheduler scheduler(serving->scheduler_options, *serving->tokenizer);
    const auto requests = Requests();
    RunEach(scheduler, *serving->backend, {requests[0], requests[1], requests[2]});
  }
  serving->tiers.disk->Flush();
  const storage::TierStoreStats stats = serving->tiers.disk->Stats();
  if (stats.blocks < 20) {
    fprintf(stderr, "disk: %llu blocks, %llu inserts, %llu dropped, enabled %d %s\n",
            (unsigned long long)stats.blocks, (unsigned long long)stats.inserts,
            (unsigned long long)stats.dropped_inserts, stats.enabled, stats.error.c_str());
    _exit(3);
  }
  const char ready = 'R';
  if (write(ready_fd, &ready, 1) != 1) _exit(4);
  raise(SIGKILL);
  _exit(5);  // not reached
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

  const auto requests = Requests();
  const auto cold = testing::ColdOutputs({requests[3]});
  {  // Restart: A's prefix is on disk, and comes back exactly.
    absl::StatusOr<ServingEngine> serving =
        LoadServingEngine(testing::kModel, Options(11, 0, path, kDiskBytes));
    ASSERT_TRUE(serving.ok()) << serving.status();
    scheduler::Scheduler scheduler(serving->scheduler_options, *serving->tokenizer);
    auto outputs = RunEach(scheduler, *serving->backend, {requests[3]});
    EXPECT_EQ(outputs[4], cold.at(4));
    EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)], 40);
  }
  CorruptEveryValue(path);
  {  // Damaged on disk: misses, recomputed, the same output.
    absl::StatusOr<ServingEngine> serving =
        LoadServingEngine(testing::kModel, Options(11, 0, path, kDiskBytes));
    ASSERT_TRUE(serving.ok()) << serving.status();
    scheduler::Scheduler scheduler(serving->scheduler_options, *serving->tokenizer);
    auto outputs = RunEach(scheduler, *serving->backend, {requests[3]});
    EXPECT_EQ(outputs[4], cold.at(4));
    EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)], 0);
    EXPECT_GT(serving->tiers.disk->Stats().corrupt_misses, 0u);
  }
}

}  // namespace
}  // namespace strata::server
