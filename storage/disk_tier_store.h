// The disk tier: KV blocks in a RocksDB database in one directory, keyed by
// model fingerprint and BlockKey, each value checksummed (storage/disk_format.h).
//
// Nothing slow runs on the caller's thread. Insert copies the block into a
// bounded write queue and returns; one writer thread applies the queue in
// order, in batches (one WriteBatch each, WAL on, no fsync: blocks survive a
// crash of the process, and a power loss at worst loses the newest blocks,
// which the WAL's own checksums then drop). Lookup consults an in-memory index
// and starts the read on a small pool of reader threads.
//
// The index (key -> eviction order and size) is rebuilt on open from a small
// column family, so after a clean exit or a kill -9 the store serves every
// block it had written. Capacity counts stored values (header and payload),
// not RocksDB's own overhead; the oldest blocks (by insertion or last hit) are
// evicted first. Several models may share a directory: they share its
// capacity but never each other's blocks.
//
// Failure: a RocksDB error on write or read (full disk, failing device) turns
// the store off: it logs one line to stderr, reports enabled=false and the
// error in Stats(), drops inserts and misses lookups, cheaply, until it is
// reopened. A value that fails verification is a miss and is erased.
#ifndef STRATA_STORAGE_DISK_TIER_STORE_H_
#define STRATA_STORAGE_DISK_TIER_STORE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "storage/block_key.h"
#include "storage/disk_format.h"
#include "storage/tier_store.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
}  // namespace rocksdb

namespace strata::storage {

struct DiskTierOptions {
  std::string path;             // the database directory; created if missing
  size_t block_bytes = 0;       // > 0
  uint64_t capacity_bytes = 0;  // of stored values, headers included
  // Identifies the model, KV layout and dtype whose blocks this store holds.
  // Blocks stored under another fingerprint are never served.
  uint64_t model_fingerprint = 0;
  int read_threads = 4;
  // Insert drops blocks while this many bytes wait to be written: a slow
  // disk must not make the engine thread wait or memory grow without bound.
  size_t max_queued_bytes = size_t{256} << 20;
  size_t max_batch_bytes = size_t{32} << 20;  // per WriteBatch
  // fsync the WAL on every batch; only needed to survive power loss.
  bool sync_writes = false;
  // Tests only: asked before each write of a RocksDB file; a non-OK status
  // fails that write (RESOURCE_EXHAUSTED as "no space left"). Called from
  // RocksDB's threads.
  std::function<absl::Status(std::string_view file_name)> write_fault_for_testing;
};

class DiskTierStore final : public TierStore {
 public:
  // Opens (or creates) the database and loads its index. INVALID_ARGUMENT
  // for bad options; UNAVAILABLE when RocksDB cannot open the directory
  // (the caller may go on without a disk tier).
  static absl::StatusOr<std::unique_ptr<DiskTierStore>> Open(DiskTierOptions options);

  // Writes what is queued (unless disabled), finishes queued reads, closes.
  ~DiskTierStore() override;

  DiskTierStore(const DiskTierStore&) = delete;
  DiskTierStore& operator=(const DiskTierStore&) = delete;

  size_t block_bytes() const override { return options_.block_bytes; }

  // Copies the block into the write queue and returns. Until it is written,
  // Lookup serves it from that copy.
  absl::Status Insert(const BlockKey& key, absl::Span<const std::byte> bytes) override;

  // nullptr when the key is not in the index or the store is disabled;
  // otherwise the read runs on the reader pool. A hit makes the block the
  // newest in eviction order.
  std::unique_ptr<TierStoreHandle> Lookup(const BlockKey& key) override;

  void Erase(const BlockKey& key) override;

  // blocks and used_bytes count every model's blocks in the directory, since
  // they share its capacity; hits and misses are this store's own.
  TierStoreStats Stats() const override;

  // Blocks until everything queued so far has been written (or dropped
  // because the store turned itself off). Thread-safe.
  void Flush();

 private:
  using StoredKey = disk_format::StoredKey;
  struct PendingValue;
  struct ReadState;
  class Handle;

  struct WriteOp {
    enum class Kind { kPut, kDelete, kTouch };
    Kind kind = Kind::kPut;
    StoredKey key;
    std::shared_ptr<PendingValue> value;  // kPut
    // kPut and kTouch, set by the writer: the eviction order and stored
    // size that the index record keeps.
    uint64_t sequence = 0;
    uint64_t value_bytes = 0;
  };
  struct IndexEntry {
    uint64_t sequence = 0;
    uint64_t value_bytes = 0;
  };
  // One WriteBatch's worth of work, decided under the lock; applied in order,
  // since a key may be deleted and put again within one batch.
  struct Batch {
    std::vector<WriteOp> ops;
    uint64_t put_bytes = 0;
  };

  explicit DiskTierStore(DiskTierOptions options);
  absl::Status OpenDatabase();
  absl::Status LoadIndex();

  void WriterLoop();
  Batch TakeBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictToCapacity(Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Write(const Batch& batch);
  void FinishBatch(Batch& batch, const absl::Status& status);

  void ReaderLoop();
  void Read(ReadState& state);
  // Bookkeeping after a read: counters, eviction order, erasing bad values.
  void RecordRead(const ReadState& state, disk_format::Verdict verdict, bool found);

  void AddToIndex(const StoredKey& key, IndexEntry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFromIndex(const StoredKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Disable(const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DiskTierOptions options_;
  std::unique_ptr<rocksdb::Env> env_;  // only with write_fault_for_testing
  rocksdb::DB* db_ = nullptr;          // owned; closed in the destructor
  rocksdb::ColumnFamilyHandle* blocks_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a batch is being written
  std::deque<WriteOp> write_queue_ ABSL_GUARDED_BY(mu_);
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Blocks inserted but not yet written, served to Lookup from memory.
  absl::flat_hash_map<StoredKey, std::shared_ptr<PendingValue>> pending_ ABSL_GUARDED_BY(mu_);
  // Every block in the database (all fingerprints), and eviction order.
  absl::flat_hash_map<StoredKey, IndexEntry> index_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, StoredKey> by_sequence_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<std::shared_ptr<ReadState>> read_queue_ ABSL_GUARDED_BY(mu_);
  // Written values' buffers, reused so that Insert copies into memory that
  // is already mapped instead of faulting in fresh pages on the engine thread.
  std::vector<std::unique_ptr<std::byte[]>> spare_buffers_ ABSL_GUARDED_BY(mu_);
  TierStoreStats stats_ ABSL_GUARDED_BY(mu_);

  std::thread writer_;
  std::vector<std::thread> readers_;
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_DISK_TIER_STORE_H_
