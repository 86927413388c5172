#include "storage/disk_tier_store.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/check.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "server/logging/log.h"
#include "storage/disk_tier_rocksdb.h"
#include "storage/fault_file_system.h"
#include "storage/lost_blob_files.h"

namespace strata::storage {

using disk_format::Verdict;
using logging::Level;

namespace {

// nice 19 for the calling thread only (Linux gives each thread its own).
void LowerThisThreadsPriority() {
  if (setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 19) != 0) {
    logging::Event(Level::kWarning, "disk_tier_priority")
        .With("detail", "could not lower the disk writer's CPU priority");
  }
}

}  // namespace

DiskTierStore::DiskTierStore(DiskTierOptions options)
    : options_(std::move(options)),
      admission_(options_.admit_after_sightings,
                 options_.capacity_bytes / (disk_format::kHeaderBytes + options_.block_bytes)) {}

double DiskTierStore::SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

uint64_t DiskTierStore::ValueCapacity(uint64_t capacity_bytes) {
  return DiskValueCapacity(capacity_bytes);
}

uint64_t DiskTierStore::CapacityForValues(uint64_t value_bytes) {
  return DiskCapacityForValues(value_bytes);
}

absl::StatusOr<std::unique_ptr<DiskTierStore>> DiskTierStore::Open(DiskTierOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("disk tier: empty path");
  if (options.block_bytes == 0) return absl::InvalidArgumentError("disk tier: block_bytes is 0");
  if (options.read_threads < 1) {
    return absl::InvalidArgumentError("disk tier: read_threads must be at least 1");
  }
  if (options.admit_after_sightings < 1 ||
      options.admit_after_sightings > BlockAdmission::kMaxCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("disk tier: admit_after_sightings must be in [1, ", BlockAdmission::kMaxCount,
                     "], not ", options.admit_after_sightings));
  }
  std::unique_ptr<DiskTierStore> store(new DiskTierStore(std::move(options)));
  if (absl::Status status = store->OpenDatabase(); !status.ok()) return status;
  if (absl::Status status = store->LoadIndex(); !status.ok()) return status;
  store->writer_ = std::thread([raw = store.get()] { raw->WriterLoop(); });
  for (int i = 0; i < store->options_.read_threads; ++i) {
    store->readers_.emplace_back([raw = store.get()] { raw->ReaderLoop(); });
  }
  return store;
}

absl::Status DiskTierStore::OpenDatabase() {
  std::error_code error;
  std::filesystem::create_directories(options_.path, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("disk tier: cannot create ", options_.path, ": ", error.message()));
  }
  rocksdb::DBOptions db_options = DiskTierDatabaseOptions(options_.path);
  if (options_.write_fault_for_testing || options_.read_delay_for_testing) {
    env_ = rocksdb::NewCompositeEnv(NewFaultFileSystem(rocksdb::FileSystem::Default(),
                                                       options_.write_fault_for_testing,
                                                       options_.read_delay_for_testing));
    db_options.env = env_.get();
  }
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {disk_format::kBlocksColumnFamily, DiskTierBlocksOptions(options_.capacity_bytes)},
      {disk_format::kIndexColumnFamily, DiskTierIndexOptions()},
  };
  // Opening for writing writes a MANIFEST and an OPTIONS file, and flushes
  // any WAL left by an older version: on a full disk that would fail inside
  // RocksDB, so open read-only, which writes nothing.
  const DiskSpace space = MeasureDiskSpace(options_.path);
  std::string read_only_reason;
  if (space.free_bytes < options_.min_free_bytes + space.wal_bytes) {
    read_only_reason =
        absl::StrCat("opened read-only: ", space.free_bytes,
                     " bytes free on the filesystem, below min_free_bytes (",
                     options_.min_free_bytes, ") plus the WAL to recover (", space.wal_bytes, ")");
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status status;
  if (read_only_reason.empty()) {
    status = rocksdb::DB::Open(db_options, options_.path, families, &handles, &db_);
    if (status.IsNoSpace()) {
      read_only_reason = absl::StrCat("opened read-only: ", status.ToString());
      handles.clear();
      db_ = nullptr;
    }
  }
  if (!read_only_reason.empty()) {
    status = rocksdb::DB::OpenForReadOnly(db_options, options_.path, families, &handles, &db_);
  }
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("disk tier: cannot open ", options_.path, ": ", status.ToString()));
  }
  if (options_.low_priority_writes) {
    rocksdb::Env* env = db_options.env != nullptr ? db_options.env : rocksdb::Env::Default();
    env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::HIGH, rocksdb::CpuPriority::kLow);
    env->LowerThreadPoolCPUPriority(rocksdb::Env::Priority::LOW, rocksdb::CpuPriority::kLow);
  }
  default_cf_ = handles[0];
  blocks_cf_ = handles[1];
  index_cf_ = handles[2];
  if (!read_only_reason.empty()) {
    absl::MutexLock lock(&mu_);
    MakeReadOnly(read_only_reason);
  }
  return absl::OkStatus();
}

absl::Status DiskTierStore::LoadIndex() {
  const DiskSpace space = MeasureDiskSpace(options_.path);
  absl::MutexLock lock(&mu_);
  stats_.disk_bytes = space.directory_bytes;
  value_limit_ =
      DiskValueCapacity(DiskBudget(space, options_.capacity_bytes, options_.min_free_bytes));
  Batch repairs;  // malformed records, lost blocks, and blocks beyond the capacity
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, index_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::optional<StoredKey> key =
        disk_format::DecodeKey(std::string_view(it->key().data(), it->key().size()));
    const std::optional<disk_format::IndexRecord> record =
        disk_format::DecodeIndexRecord(std::string_view(it->value().data(), it->value().size()));
    if (!key.has_value()) continue;  // not ours to interpret, and not counted
    if (!record.has_value() || by_sequence_.contains(record->sequence)) {
      repairs.ops.push_back(WriteOp{.kind = WriteOp::Kind::kDelete, .key = *key});
      continue;
    }
    AddToIndex(*key, IndexEntry{record->sequence, record->value_bytes});
    next_sequence_ = std::max(next_sequence_, record->sequence + 1);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "disk tier: reading the index");
  it.reset();
  const uint64_t lost = stats_.lost_blocks;
  RepairLostBlocks(repairs);
  if (!Writable()) return absl::OkStatus();  // repaired in memory only
  EvictTo(value_limit_, repairs);
  if (repairs.ops.empty()) return absl::OkStatus();
  absl::Status status = Write(repairs);
  if (status.ok() && stats_.lost_blocks > lost) {
    // Compaction drops the deleted blocks' references, and with them
    // RocksDB's record of the missing file, so the next open is quick.
    rocksdb::CompactRangeOptions compact;
    compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForceOptimized;
    status = FromRocks(db_->CompactRange(compact, blocks_cf_, nullptr, nullptr),
                       "disk tier: compacting after a repair");
  }
  // Opened, but the first writes failed: the tier is off, the caller serves on.
  if (!status.ok()) Disable(status);
  return absl::OkStatus();
}

void DiskTierStore::RepairLostBlocks(Batch& repairs) {
  const std::vector<std::string> missing = MissingBlobFiles(*db_, *blocks_cf_);
  if (missing.empty()) return;
  std::vector<std::string> keys;
  keys.reserve(index_.size());
  for (const auto& [key, entry] : index_) keys.push_back(disk_format::EncodeKey(key));
  uint64_t lost = 0;
  for (const std::string& encoded : UnreadableKeys(*db_, *blocks_cf_, keys)) {
    const std::optional<StoredKey> key = disk_format::DecodeKey(encoded);
    if (!key.has_value()) continue;
    RemoveFromIndex(*key);
    repairs.ops.push_back(WriteOp{.kind = WriteOp::Kind::kDelete, .key = *key});
    ++lost;
  }
  stats_.lost_blocks += lost;
  logging::Event(Level::kWarning, "disk_tier_repaired")
      .With("path", options_.path)
      .With("missing_files", absl::StrJoin(missing, ","))
      .With("lost_blocks", static_cast<int64_t>(lost));
}

DiskTierStore::~DiskTierStore() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  // Readers first: a hit may still queue a touch for the writer to record.
  for (std::thread& reader : readers_) reader.join();
  if (writer_.joinable()) writer_.join();
  if (db_ == nullptr) return;
  for (rocksdb::ColumnFamilyHandle* handle : {default_cf_, blocks_cf_, index_cf_}) {
    if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle);
  }
  // Nothing is left to flush (every batch was flushed, and shutdown never
  // flushes: avoid_flush_during_shutdown), so closing writes nothing.
  db_->Close().PermitUncheckedError();
  delete db_;
}

void DiskTierStore::AddToIndex(const StoredKey& key, IndexEntry entry) {
  RemoveFromIndex(key);
  index_[key] = entry;
  by_sequence_[entry.sequence] = key;
  used_bytes_ += entry.value_bytes;
}

void DiskTierStore::RemoveFromIndex(const StoredKey& key) {
  const auto it = index_.find(key);
  if (it == index_.end()) return;
  by_sequence_.erase(it->second.sequence);
  used_bytes_ -= it->second.value_bytes;
  index_.erase(it);
}

void DiskTierStore::DropQueuedPuts() {
  for (const std::deque<WriteOp>* queue : {&write_queue_, &touch_queue_}) {
    for (const WriteOp& op : *queue) {
      if (op.value != nullptr) queued_bytes_ -= op.value->size;  // puts and rewrites
      if (op.kind == WriteOp::Kind::kPut) ++stats_.dropped_inserts;
    }
  }
  write_queue_.clear();
  touch_queue_.clear();
  pending_.clear();
}

void DiskTierStore::QueueTouch(WriteOp touch) {
  touch_queue_.push_back(std::move(touch));
  if (touch_queue_.size() <= kMaxQueuedTouches) return;
  // Only its on-disk order is lost: the index in memory has it already.
  if (touch_queue_.front().value != nullptr) queued_bytes_ -= touch_queue_.front().value->size;
  touch_queue_.pop_front();
}

bool DiskTierStore::WriterHasWork() const {
  if (stopping_ || !write_queue_.empty()) return true;
  if (touch_queue_.empty()) return false;
  return flush_waiters_ > 0 || Clock::now() - last_lookup_ >= options_.quiet_before_touches;
}

void DiskTierStore::Disable(const absl::Status& error) {
  if (!stats_.enabled) return;
  stats_.enabled = false;
  stats_.error = error.ToString();
  logging::Event(Level::kError, "disk_tier_off")
      .With("path", options_.path)
      .With("error", stats_.error)
      .With("blocks", static_cast<int64_t>(index_.size()));
  // Nothing more is written or read until reopened.
  DropQueuedPuts();
  index_.clear();
  by_sequence_.clear();
  used_bytes_ = 0;
}

void DiskTierStore::MakeReadOnly(const std::string& reason) {
  if (!stats_.writable) return;
  stats_.writable = false;
  stats_.error = reason;
  logging::Event(Level::kError, "disk_tier_read_only")
      .With("path", options_.path)
      .With("reason", reason)
      .With("blocks", static_cast<int64_t>(index_.size()));
  DropQueuedPuts();
}

absl::Status DiskTierStore::Insert(const BlockKey& key, absl::Span<const std::byte> bytes) {
  if (bytes.size() != options_.block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block of ", bytes.size(), " bytes; this store holds blocks of ", options_.block_bytes));
  }
  const StoredKey stored{options_.model_fingerprint, key};
  const size_t value_bytes = disk_format::kHeaderBytes + bytes.size();
  auto value = std::make_shared<PendingValue>();
  {
    absl::MutexLock lock(&mu_);
    if (RefuseOffer(stored, /*needs_room=*/true).has_value()) return absl::OkStatus();
    ++stats_.inserts;
    queued_bytes_ += value_bytes;  // reserved while copying without the lock
    if (!spare_buffers_.empty()) {
      value->bytes = std::move(spare_buffers_.back());
      spare_buffers_.pop_back();
    }
  }
  if (value->bytes == nullptr)
    value->bytes = std::make_unique_for_overwrite<std::byte[]>(value_bytes);
  value->size = value_bytes;
  std::memcpy(value->bytes.get() + disk_format::kHeaderBytes, bytes.data(), bytes.size());

  absl::MutexLock lock(&mu_);
  if (!Writable() || pending_.contains(stored) || index_.contains(stored)) {
    queued_bytes_ -= value_bytes;
    if (!Writable()) ++stats_.dropped_inserts;
    return absl::OkStatus();
  }
  pending_[stored] = value;
  write_queue_.push_back(WriteOp{.kind = WriteOp::Kind::kPut,
                                 .key = stored,
                                 .value = std::move(value),
                                 .queued_at = Clock::now()});
  return absl::OkStatus();
}

StartedInsert DiskTierStore::StartInsert(const BlockKey& key) {
  absl::MutexLock lock(&mu_);
  // Room in the write queue is Insert's to check: it comes after the step,
  // when the writer may have drained the queue.
  const std::optional<StartedInsert::Outcome> refused =
      RefuseOffer(StoredKey{options_.model_fingerprint, key}, /*needs_room=*/false);
  // An offer taken is counted by the Insert that follows.
  return {.outcome = refused.value_or(StartedInsert::Outcome::kUnsupported)};
}

std::optional<StartedInsert::Outcome> DiskTierStore::RefuseOffer(const StoredKey& stored,
                                                                 bool needs_room) {
  const size_t value_bytes = disk_format::kHeaderBytes + options_.block_bytes;
  std::optional<StartedInsert::Outcome> refused;
  if (pending_.contains(stored) || index_.contains(stored)) {
    refused = StartedInsert::Outcome::kHeld;
  } else if (!admission_.Admit(stored.key)) {
    ++stats_.not_admitted_blocks;
    stats_.not_admitted_bytes += value_bytes;
    refused = StartedInsert::Outcome::kDeclined;
  } else if (!Writable() ||
             (needs_room && (value_bytes > value_limit_ ||
                             queued_bytes_ + value_bytes > options_.max_queued_bytes))) {
    ++stats_.dropped_inserts;
    refused = StartedInsert::Outcome::kDeclined;
  }
  if (refused.has_value()) ++stats_.inserts;
  return refused;
}

void DiskTierStore::RecordSightings(absl::Span<const BlockKey> keys) {
  admission_.RecordSightings(keys);
}

void DiskTierStore::Erase(const BlockKey& key) {
  const StoredKey stored{options_.model_fingerprint, key};
  absl::MutexLock lock(&mu_);
  if (!stats_.enabled) return;
  pending_.erase(stored);  // a queued put no longer matches and is skipped
  const auto it = index_.find(stored);
  if (it == index_.end()) return;
  deleted_bytes_ += it->second.value_bytes;
  RemoveFromIndex(stored);
  // Read-only: gone from this process's index only; back after a reopen.
  if (Writable()) write_queue_.push_back(WriteOp{.kind = WriteOp::Kind::kDelete, .key = stored});
}

TierStoreStats DiskTierStore::Stats() const {
  absl::MutexLock lock(&mu_);
  TierStoreStats stats = stats_;
  stats.blocks = index_.size();
  stats.used_bytes = used_bytes_;
  if (!stats.enabled) {
    stats.capacity_bytes = 0;
  } else if (!stats.writable) {
    stats.capacity_bytes = used_bytes_;
  } else {
    stats.capacity_bytes = std::max(value_limit_, used_bytes_);
  }
  return stats;
}

std::vector<TierTransfer> DiskTierStore::TakeTransfers() {
  absl::MutexLock lock(&mu_);
  std::vector<TierTransfer> transfers;
  transfers.swap(transfers_);
  return transfers;
}

void DiskTierStore::RecordTransfer(TierTransfer transfer) {
  if (transfers_.size() < kMaxTransfers) transfers_.push_back(transfer);
}

void DiskTierStore::Flush() {
  absl::MutexLock lock(&mu_);
  ++flush_waiters_;  // the touches too, now
  mu_.Await(absl::Condition(
      +[](DiskTierStore* store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_) {
        return store->write_queue_.empty() && store->touch_queue_.empty() && !store->writing_;
      },
      this));
  --flush_waiters_;
}

void DiskTierStore::WriterLoop() {
  if (options_.low_priority_writes) LowerThisThreadsPriority();
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      const absl::Condition has_work(this, &DiskTierStore::WriterHasWork);
      while (!WriterHasWork()) {
        if (touch_queue_.empty()) {
          mu_.Await(has_work);
        } else {  // touches only: due once the tier has been quiet long enough
          mu_.AwaitWithTimeout(has_work, absl::FromChrono(options_.quiet_before_touches -
                                                          (Clock::now() - last_lookup_)));
        }
      }
      // Stopping, and everything is written.
      if (write_queue_.empty() && touch_queue_.empty()) return;
      writing_ = true;  // Flush waits while the space is measured
    }
    // Only this thread writes, so the directory cannot grow meanwhile.
    DiskSpace space = MeasureDiskSpace(options_.path);
    if (CompactIfDue(space)) space = MeasureDiskSpace(options_.path);
    Batch batch;
    {
      absl::MutexLock lock(&mu_);
      batch = TakeBatch(space);
    }
    const absl::Status status = batch.ops.empty() ? absl::OkStatus() : Write(batch);
    FinishBatch(batch, status);
  }
}

DiskTierStore::Batch DiskTierStore::TakeBatch(const DiskSpace& space) {
  stats_.disk_bytes = space.directory_bytes;
  if (Writable() && space.free_bytes < options_.min_free_bytes) {
    MakeReadOnly(absl::StrCat("the filesystem has ", space.free_bytes,
                              " bytes free, below min_free_bytes (", options_.min_free_bytes, ")"));
  }
  if (!Writable()) {
    DropQueuedPuts();  // and touches and deletes: nothing is written any more
    return Batch{};
  }
  const uint64_t budget = DiskBudget(space, options_.capacity_bytes, options_.min_free_bytes);
  value_limit_ = DiskValueCapacity(budget);
  // What this batch's values may add to the directory: evicted blocks keep
  // their space until compaction, so eviction alone does not make room.
  const uint64_t room = budget > space.directory_bytes + kDiskFlushBytes
                            ? budget - space.directory_bytes - kDiskFlushBytes
                            : 0;
  // A flush writes its blocks in key order, not in eviction order, so its
  // blob files empty out only once the whole batch is evicted: batches of
  // half the garbage allowance keep that garbage within it.
  const uint64_t one_value = disk_format::kHeaderBytes + options_.block_bytes;
  const uint64_t batch_limit = std::min<uint64_t>(
      options_.max_batch_bytes, std::max(DiskGarbageAllowance(budget) / 2, one_value));
  const uint64_t put_limit = std::min({room, value_limit_, batch_limit});
  Batch batch;
  bool full = false;  // the next put waits for the next batch
  while (!full && batch.put_bytes < batch_limit) {
    // Puts and deletes first; touches ride along (see touch_queue_).
    std::deque<WriteOp>& queue = write_queue_.empty() ? touch_queue_ : write_queue_;
    if (queue.empty()) break;
    WriteOp op = std::move(queue.front());
    queue.pop_front();
    switch (op.kind) {
      case WriteOp::Kind::kPut: {
        queued_bytes_ -= op.value->size;
        const auto it = pending_.find(op.key);
        if (it == pending_.end() || it->second != op.value) break;  // erased since
        if (batch.put_bytes + op.value->size > put_limit) {
          if (batch.put_bytes > 0) {  // the next batch takes it
            queued_bytes_ += op.value->size;
            write_queue_.push_front(std::move(op));
            full = true;
            break;
          }
          // Not even one block fits, after compaction: dropped.
          pending_.erase(it);
          ++stats_.dropped_inserts;
          break;
        }
        op.sequence = next_sequence_++;
        op.value_bytes = op.value->size;
        // Indexed before it is written; Lookup serves it from pending_ until then.
        AddToIndex(op.key, IndexEntry{op.sequence, op.value_bytes});
        if (batch.puts == 0) batch.first_queued = op.queued_at;
        ++batch.puts;
        batch.put_bytes += op.value_bytes;
        batch.ops.push_back(std::move(op));
        break;
      }
      case WriteOp::Kind::kDelete:
        batch.ops.push_back(std::move(op));
        break;
      case WriteOp::Kind::kTouch: {
        if (op.value != nullptr) queued_bytes_ -= op.value->size;
        const auto it = index_.find(op.key);
        if (it == index_.end() || it->second.sequence != op.sequence) break;  // superseded
        op.value_bytes = it->second.value_bytes;
        if (op.value != nullptr && batch.put_bytes + op.value->size > put_limit) {
          op.value = nullptr;  // no room to rewrite it now: reorder only
        }
        if (op.value != nullptr) {
          batch.put_bytes += op.value->size;
          batch.rewrite_bytes += op.value->size;
        }
        ++batch.touches;
        batch.ops.push_back(std::move(op));
        break;
      }
    }
  }
  EvictTo(value_limit_, batch);
  return batch;
}

void DiskTierStore::EvictTo(uint64_t value_limit, Batch& batch) {
  while (used_bytes_ > value_limit && !by_sequence_.empty()) {
    const StoredKey victim = by_sequence_.begin()->second;
    deleted_bytes_ += index_.at(victim).value_bytes;
    RemoveFromIndex(victim);
    // Appended after any put of the same key in this batch, so it wins.
    batch.ops.push_back(WriteOp{.kind = WriteOp::Kind::kDelete, .key = victim});
    ++stats_.evictions;
  }
}

absl::Status DiskTierStore::Write(const Batch& batch) {
  rocksdb::WriteBatch write_batch;
  for (const WriteOp& op : batch.ops) {
    const std::string key = disk_format::EncodeKey(op.key);
    rocksdb::Status status;
    switch (op.kind) {
      case WriteOp::Kind::kPut:
        // Handles reading this value touch only its payload, never the header.
        disk_format::WriteHeader(op.key, op.value->size - disk_format::kHeaderBytes,
                                 op.value->bytes.get());
        status = write_batch.Put(
            blocks_cf_, key,
            rocksdb::Slice(reinterpret_cast<const char*>(op.value->bytes.get()), op.value->size));
        if (status.ok()) {
          status = write_batch.Put(index_cf_, key,
                                   disk_format::EncodeIndexRecord({op.sequence, op.value_bytes}));
        }
        break;
      case WriteOp::Kind::kDelete:
        status = write_batch.Delete(blocks_cf_, key);
        if (status.ok()) status = write_batch.Delete(index_cf_, key);
        break;
      case WriteOp::Kind::kTouch:
        if (op.value != nullptr) {
          status = write_batch.Put(
              blocks_cf_, key,
              rocksdb::Slice(reinterpret_cast<const char*>(op.value->data()), op.value->size));
        }
        if (status.ok()) {
          status = write_batch.Put(index_cf_, key,
                                   disk_format::EncodeIndexRecord({op.sequence, op.value_bytes}));
        }
        break;
    }
    if (!status.ok()) return FromRocks(status, "disk tier: building a write batch");
  }
  // No WAL: the flush below puts the batch in synced SST and blob files, and
  // a WAL would only double the bytes written and grow beside the data.
  rocksdb::WriteOptions write_options;
  write_options.disableWAL = true;
  if (absl::Status status = FromRocks(db_->Write(write_options, &write_batch), "disk tier: write");
      !status.ok()) {
    return status;
  }
  rocksdb::FlushOptions flush;
  flush.wait = true;
  flush.allow_write_stall = true;
  return FromRocks(db_->Flush(flush, {blocks_cf_, index_cf_}), "disk tier: flush");
}

void DiskTierStore::FinishBatch(Batch& batch, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (!status.ok()) {
    stats_.dropped_inserts += batch.puts;
    Disable(status);
    return;
  }
  stats_.bytes_written += batch.put_bytes - batch.rewrite_bytes;
  stats_.blocks_written += batch.puts;
  stats_.touches_written += batch.touches;
  if (batch.puts > 0) {
    RecordTransfer(TierTransfer{.direction = TierTransfer::Direction::kIn,
                                .seconds = SecondsSince(batch.first_queued),
                                .blocks = batch.puts});
  }
  // About one batch of spares: what a steady stream of inserts reuses.
  const size_t max_spares =
      options_.max_batch_bytes / (disk_format::kHeaderBytes + options_.block_bytes) + 1;
  for (WriteOp& op : batch.ops) {
    if (op.kind != WriteOp::Kind::kPut) continue;
    const auto it = pending_.find(op.key);
    if (it != pending_.end() && it->second == op.value) pending_.erase(it);
    // Only the batch holds it now: no handle is reading from it.
    if (op.value.use_count() == 1 && op.value->bytes != nullptr &&
        spare_buffers_.size() < max_spares) {
      spare_buffers_.push_back(std::move(op.value->bytes));
    }
  }
}

bool DiskTierStore::CompactIfDue(const DiskSpace& space) {
  // Compaction writes new SSTs before it deletes the old ones: never on a
  // full filesystem (TakeBatch turns the tier read-only then).
  if (space.free_bytes < options_.min_free_bytes) return false;
  const uint64_t level0_files = MaxLevel0Files(*db_, {blocks_cf_, index_cf_});
  {
    absl::MutexLock lock(&mu_);
    if (!Writable()) return false;
    const uint64_t budget = DiskBudget(space, options_.capacity_bytes, options_.min_free_bytes);
    const uint64_t garbage = DiskGarbageAllowance(budget);
    // Every flush adds an L0 file, which every read then searches: merge
    // them before RocksDB would stall writes (at 20). Evicted blocks fill
    // half the garbage allowance, or the next block would not fit beside
    // them: make RocksDB drop their blob files. And when the directory has
    // no room for another flush, merge the L0 files even without evictions:
    // batches of deletes and touches alone add an SST per family each, and
    // would otherwise grow the directory past its budget into min_free_bytes.
    const uint64_t next_put =
        std::min<uint64_t>(queued_bytes_, disk_format::kHeaderBytes + options_.block_bytes);
    const bool no_room = space.directory_bytes + kDiskFlushBytes + next_put > budget;
    const bool due = level0_files >= kDiskTierMaxLevel0Files ||
                     (deleted_bytes_ > 0 && (deleted_bytes_ >= garbage / 2 || no_room)) ||
                     (no_room && level0_files > 1);
    if (!due) return false;
    deleted_bytes_ = 0;
  }
  rocksdb::CompactRangeOptions compact;
  absl::Status status =
      FromRocks(db_->CompactRange(compact, blocks_cf_, nullptr, nullptr), "disk tier: compaction");
  if (status.ok()) {
    status =
        FromRocks(db_->CompactRange(compact, index_cf_, nullptr, nullptr), "disk tier: compaction");
  }
  if (!status.ok()) {
    absl::MutexLock lock(&mu_);
    Disable(status);
  }
  return true;
}

}  // namespace strata::storage
