// The disk tier: KV blocks in a RocksDB database in one directory, keyed by
// model fingerprint and BlockKey, each value checksummed (storage/disk_format.h).
//
// Nothing slow runs on the caller's thread. Insert copies the block into a
// bounded write queue and returns; one writer thread applies the queue in
// order, in batches: one WriteBatch each, without a WAL, then a flush of the
// memtables to SST and blob files. A batch is on disk (in files RocksDB has
// synced) when it completes, so blocks survive a kill -9 of the process, and
// no WAL grows beside the data. Lookup consults an in-memory index and starts
// the read on a small pool of reader threads.
//
// The index (key -> eviction order and size) is rebuilt on open from a small
// column family, so after a clean exit or a kill -9 the store serves every
// block it had written. The oldest blocks (by insertion or last hit) are
// evicted first. Several models may share a directory: they share its
// capacity but never each other's blocks.
//
// Disk use: capacity_bytes bounds every file in the directory (blob files,
// SSTs, MANIFEST, OPTIONS, RocksDB's LOG, the empty WAL), not just the
// values. Values get ValueCapacity(capacity_bytes) of it; the rest is kept
// for RocksDB's metadata and for evicted blocks whose space compaction has
// not reclaimed yet. Before each batch the writer measures the directory and
// the filesystem: a batch that would take the directory past the capacity,
// or leave less than min_free_bytes free on the filesystem, is cut short
// (its blocks dropped, a compaction asked for), so RocksDB itself never runs
// out of space. On a filesystem smaller than the capacity, the tier holds
// what fits.
//
// Failure. RocksDB as Debian builds it keeps its assertions, and some of its
// paths abort the process after a write failed for lack of space (its info
// log did: RocksDbInfoLog replaces it); hence the checks above, and after
// any error the store writes nothing more:
//  - the filesystem has no room left even for metadata (other writers filled
//    it): the store turns read-only: it serves what it holds, drops inserts;
//    opening on such a disk opens read-only too;
//  - a RocksDB error on write or read (failing device, a full disk the
//    checks missed): the store turns off: drops inserts, misses lookups.
// Either logs one structured error (event disk_tier_read_only or
// disk_tier_off) and shows in Stats(); both last until the store is
// reopened. A value that fails verification is a miss and is erased. A blob
// file that went missing (deleted by hand) is repaired on open, or when a
// read finds it gone: the blocks it held are dropped from the index, and the
// tier goes on.
#ifndef STRATA_STORAGE_DISK_TIER_STORE_H_
#define STRATA_STORAGE_DISK_TIER_STORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
#include "rocksdb/slice.h"
#include "storage/block_admission.h"
#include "storage/block_key.h"
#include "storage/disk_format.h"
#include "storage/disk_space.h"
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
  uint64_t capacity_bytes = 0;  // every file in the directory (see the top)
  // Identifies the model, KV layout and dtype whose blocks this store holds.
  // Blocks stored under another fingerprint are never served.
  uint64_t model_fingerprint = 0;
  int read_threads = 4;
  // Insert drops blocks while this many bytes wait to be written: a slow
  // disk must not make the engine thread wait or memory grow without bound.
  size_t max_queued_bytes = size_t{256} << 20;
  size_t max_batch_bytes = size_t{32} << 20;  // per WriteBatch
  // Left free on the filesystem for everyone else (and RocksDB's
  // compactions): the tier shrinks to what fits above it.
  uint64_t min_free_bytes = uint64_t{1} << 20;
  // Tests only: asked before each write of a RocksDB file; a non-OK status
  // fails that write (RESOURCE_EXHAUSTED as "no space left"). Called from
  // RocksDB's threads.
  std::function<absl::Status(std::string_view file_name)> write_fault_for_testing;
  // Tests and benchmarks only: asked before each read of a RocksDB SST or
  // blob file; the read sleeps that long first (a slow device). Called from
  // the reader threads.
  std::function<std::chrono::microseconds(std::string_view file_name)> read_delay_for_testing;
  // Admission (storage/block_admission.h): a block is written only once
  // this many requests have wanted it (RecordSightings); 1 writes every
  // block offered.
  int admit_after_sightings = 1;
  // A hit moves its block to the newest end of the eviction order and
  // rewrites it into the newest blob file, so that no old file stays alive
  // for it. That write is upkeep: it goes with the next batch of inserts,
  // or on its own once no Lookup has come for this long (and on Flush).
  std::chrono::milliseconds quiet_before_touches{100};
  // The writer thread, and RocksDB's flush and compaction threads (process
  // wide), run at the lowest CPU priority (nice 19): disk writes are upkeep
  // that should take only the CPU the engine leaves. On a CPU saturated for
  // long the write queue then fills and inserts are dropped (a tier is a
  // cache); reads keep their priority.
  bool low_priority_writes = false;
};

class DiskTierStore final : public TierStore {
 public:
  // Opens (or creates) the database and loads its index, repairing it
  // (lost blob files, a reduced capacity). INVALID_ARGUMENT for bad
  // options; UNAVAILABLE (or RESOURCE_EXHAUSTED) when RocksDB cannot open
  // or read the directory: the caller may go on without a disk tier. On a
  // full filesystem it opens read-only; if the repair's writes fail, the
  // store opens turned off.
  static absl::StatusOr<std::unique_ptr<DiskTierStore>> Open(DiskTierOptions options);

  // Writes what is queued (unless disabled), finishes queued reads, closes.
  ~DiskTierStore() override;

  DiskTierStore(const DiskTierStore&) = delete;
  DiskTierStore& operator=(const DiskTierStore&) = delete;

  size_t block_bytes() const override { return options_.block_bytes; }

  // Copies the block into the write queue and returns. Until it is written,
  // Lookup serves it from that copy. A block too few requests have wanted
  // (admit_after_sightings) is not written: counted in not_admitted_*.
  absl::Status Insert(const BlockKey& key, absl::Span<const std::byte> bytes) override;
  // kHeld for a key held or queued, kDeclined for one Insert would not
  // write (admission, read-only, disabled), else kUnsupported: stage it and
  // Insert. A demotion then copies only blocks this store will write.
  StartedInsert StartInsert(const BlockKey& key) override;

  // Counts the sightings admission goes by; a no-op when every block is
  // admitted.
  void RecordSightings(absl::Span<const BlockKey> keys) override;

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

  // Writes since the last call (one per batch, into this tier) and disk
  // reads (one per block, out of it), timed from the moment they were
  // queued. At most kMaxTransfers are kept between calls; later ones are
  // not recorded.
  std::vector<TierTransfer> TakeTransfers() override;
  static constexpr size_t kMaxTransfers = 4096;

  // The bytes values may occupy in a directory of `capacity_bytes` on a
  // filesystem with room to spare; the rest is RocksDB's metadata and
  // not-yet-compacted garbage. Monotonic in capacity_bytes.
  static uint64_t ValueCapacity(uint64_t capacity_bytes);
  // The smallest capacity_bytes whose ValueCapacity is at least `value_bytes`.
  static uint64_t CapacityForValues(uint64_t value_bytes);

 private:
  using StoredKey = disk_format::StoredKey;
  // A block waiting in the write queue: header (filled in by the writer) then
  // payload. Shared with handles that hit it, so it outlives its queue entry.
  // A hit's rewrite holds what its read filled instead: RocksDB's own blob
  // buffer, pinned (`pinned`), or the read's buffer (`read`), so that a hit
  // costs no copy beyond the read.
  struct PendingValue {
    std::unique_ptr<std::byte[]> bytes;
    rocksdb::PinnableSlice pinned;
    std::string read;
    size_t size = 0;
    const std::byte* data() const {
      if (bytes != nullptr) return bytes.get();
      return reinterpret_cast<const std::byte*>(pinned.IsPinned() ? pinned.data() : read.data());
    }
  };
  struct ReadState;
  class Handle;

  using Clock = std::chrono::steady_clock;
  static constexpr size_t kMaxQueuedTouches = size_t{1} << 16;
  static double SecondsSince(Clock::time_point start);

  struct WriteOp {
    enum class Kind { kPut, kDelete, kTouch };
    Kind kind = Kind::kPut;
    StoredKey key;
    // kPut; and kTouch when the block is rewritten (see RecordRead).
    std::shared_ptr<PendingValue> value;
    // kPut and kTouch, set by the writer: the eviction order and stored
    // size that the index record keeps.
    uint64_t sequence = 0;
    uint64_t value_bytes = 0;
    Clock::time_point queued_at;  // kPut
  };
  struct IndexEntry {
    uint64_t sequence = 0;
    uint64_t value_bytes = 0;
  };
  // One WriteBatch's worth of work, decided under the lock; applied in order,
  // since a key may be deleted and put again within one batch.
  struct Batch {
    std::vector<WriteOp> ops;
    uint64_t put_bytes = 0;      // values written: puts and rewrites
    uint64_t rewrite_bytes = 0;  // of those, rewrites of hit blocks
    uint64_t puts = 0;
    uint64_t touches = 0;
    Clock::time_point first_queued;  // of its oldest put
  };

  explicit DiskTierStore(DiskTierOptions options);
  absl::Status OpenDatabase();
  absl::Status LoadIndex();
  // Drops the index entries of blocks whose blob file is gone.
  void RepairLostBlocks(Batch& repairs) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void WriterLoop();
  // `space` was measured before the lock was taken: puts are cut to what
  // fits in the directory's budget.
  Batch TakeBatch(const DiskSpace& space) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EvictTo(uint64_t value_limit, Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Write(const Batch& batch);
  void FinishBatch(Batch& batch, const absl::Status& status);
  // Compacts both families when evicted blocks hold enough of the
  // directory, so that RocksDB deletes their blob files. True if it did.
  bool CompactIfDue(const DiskSpace& space);

  void ReaderLoop();
  void Read(ReadState& state);
  // The read value, for RecordRead to rewrite: the read's own buffer,
  // which the handle then reaches through `state.pending` (a copy only if
  // RocksDB pinned the value elsewhere); null past the write queue's limit.
  std::shared_ptr<PendingValue> KeepForRewrite(ReadState& state);
  // Bookkeeping after a read: counters, eviction order, erasing bad values.
  void RecordRead(const ReadState& state, disk_format::Verdict verdict, bool found, bool lost,
                  std::shared_ptr<PendingValue> rewrite);
  void RecordTransfer(TierTransfer transfer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void AddToIndex(const StoredKey& key, IndexEntry entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFromIndex(const StoredKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queued puts are dropped; pending_ empties.
  void DropQueuedPuts() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Off for good (until reopened): an I/O error.
  void Disable(const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Serves what it holds, writes nothing more: the filesystem is full.
  void MakeReadOnly(const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts an offer of `stored` (Insert, StartInsert) that the store will
  // not write, and says why: kHeld (held or queued) or kDeclined
  // (admission, read-only, or with `needs_room` no room for its value);
  // nullopt, and nothing counted, for an offer it would write.
  std::optional<StartedInsert::Outcome> RefuseOffer(const StoredKey& stored, bool needs_room)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the writer has a batch to write now (or is to stop).
  bool WriterHasWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a hit's touch, dropping the oldest beyond kMaxQueuedTouches.
  void QueueTouch(WriteOp touch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the database may be written now.
  bool Writable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stats_.enabled && stats_.writable;
  }

  const DiskTierOptions options_;
  BlockAdmission admission_;
  std::unique_ptr<rocksdb::Env> env_;  // only with write_fault_for_testing
  rocksdb::DB* db_ = nullptr;          // owned; closed in the destructor
  rocksdb::ColumnFamilyHandle* blocks_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a batch is being written
  std::deque<WriteOp> write_queue_ ABSL_GUARDED_BY(mu_);
  // Hits' touches (rewrites into the newest blob file), kept apart: they
  // are upkeep, so they ride along with the next batch of writes, and are
  // written on their own only once no Lookup came for quiet_before_touches
  // (or on Flush and shutdown). Written at once, a hit's rewrite competed
  // for the CPU with the reads, and the engine, that were waiting for it.
  std::deque<WriteOp> touch_queue_ ABSL_GUARDED_BY(mu_);
  Clock::time_point last_lookup_ ABSL_GUARDED_BY(mu_){};
  int flush_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // Blocks inserted but not yet written, served to Lookup from memory.
  absl::flat_hash_map<StoredKey, std::shared_ptr<PendingValue>> pending_ ABSL_GUARDED_BY(mu_);
  // Every block in the database (all fingerprints), and eviction order.
  absl::flat_hash_map<StoredKey, IndexEntry> index_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, StoredKey> by_sequence_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  // What values may occupy now: ValueCapacity of the directory's budget.
  uint64_t value_limit_ ABSL_GUARDED_BY(mu_) = 0;
  // Bytes of blocks deleted (evicted, erased) since the last compaction.
  uint64_t deleted_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<TierTransfer> transfers_ ABSL_GUARDED_BY(mu_);
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
