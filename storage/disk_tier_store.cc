#include "storage/disk_tier_store.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/check.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "storage/fault_file_system.h"

namespace strata::storage {
namespace {

using disk_format::Verdict;

absl::Status FromRocks(const rocksdb::Status& status, std::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(std::string(what), ": ", status.ToString());
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  return absl::UnavailableError(message);
}

rocksdb::ColumnFamilyOptions BlocksFamilyOptions() {
  rocksdb::ColumnFamilyOptions options;
  // KV blocks are large and do not compress; blob files keep them out of the
  // LSM tree, so compactions move only keys and blob references.
  options.enable_blob_files = true;
  options.min_blob_size = 4096;
  options.blob_file_size = uint64_t{256} << 20;
  options.enable_blob_garbage_collection = true;
  options.compression = rocksdb::kNoCompression;
  options.blob_compression_type = rocksdb::kNoCompression;
  options.write_buffer_size = size_t{64} << 20;
  return options;
}

rocksdb::ColumnFamilyOptions IndexFamilyOptions() {
  rocksdb::ColumnFamilyOptions options;
  options.write_buffer_size = size_t{4} << 20;
  return options;
}

}  // namespace

// A block waiting in the write queue: header (filled in by the writer) then
// payload. Shared with handles that hit it, so it outlives its queue entry.
struct DiskTierStore::PendingValue {
  std::unique_ptr<std::byte[]> bytes;
  size_t size = 0;
};

// One Lookup's read. The reader thread fills it, then notifies `done`;
// readers of the fields wait for `done` first.
struct DiskTierStore::ReadState {
  StoredKey key;
  uint64_t sequence = 0;  // the index entry's order when looked up
  rocksdb::PinnableSlice value;
  std::shared_ptr<PendingValue> pending;  // a hit served from the write queue
  absl::Span<const std::byte> payload;
  absl::Notification done;
};

class DiskTierStore::Handle final : public TierStoreHandle {
 public:
  explicit Handle(std::shared_ptr<ReadState> state) : state_(std::move(state)) {}

  bool IsReady() const override { return state_->done.HasBeenNotified(); }
  void Wait() override { state_->done.WaitForNotification(); }
  absl::Span<const std::byte> Value() override {
    Wait();
    return state_->payload;
  }

 private:
  std::shared_ptr<ReadState> state_;
};

DiskTierStore::DiskTierStore(DiskTierOptions options) : options_(std::move(options)) {
  stats_.capacity_bytes = options_.capacity_bytes;
}

absl::StatusOr<std::unique_ptr<DiskTierStore>> DiskTierStore::Open(DiskTierOptions options) {
  if (options.path.empty()) return absl::InvalidArgumentError("disk tier: empty path");
  if (options.block_bytes == 0) return absl::InvalidArgumentError("disk tier: block_bytes is 0");
  if (options.read_threads < 1) {
    return absl::InvalidArgumentError("disk tier: read_threads must be at least 1");
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
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Both families flush together, so a WAL holding large values is freed as
  // soon as the blocks are flushed, not when the tiny index next fills up.
  db_options.atomic_flush = true;
  db_options.max_background_jobs = 2;
  db_options.keep_log_file_num = 2;
  if (options_.write_fault_for_testing) {
    env_ = rocksdb::NewCompositeEnv(
        NewFaultFileSystem(rocksdb::FileSystem::Default(), options_.write_fault_for_testing));
    db_options.env = env_.get();
  }
  const std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {disk_format::kBlocksColumnFamily, BlocksFamilyOptions()},
      {disk_format::kIndexColumnFamily, IndexFamilyOptions()},
  };
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  const rocksdb::Status status =
      rocksdb::DB::Open(db_options, options_.path, families, &handles, &db_);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("disk tier: cannot open ", options_.path, ": ", status.ToString()));
  }
  default_cf_ = handles[0];
  blocks_cf_ = handles[1];
  index_cf_ = handles[2];
  return absl::OkStatus();
}

absl::Status DiskTierStore::LoadIndex() {
  absl::MutexLock lock(&mu_);
  Batch repairs;  // malformed records, and blocks beyond a reduced capacity
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
  EvictToCapacity(repairs);
  if (!repairs.ops.empty()) {
    if (absl::Status status = Write(repairs); !status.ok()) return status;
  }
  return absl::OkStatus();
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
  // A store that turned itself off may fail to flush here; its WAL still
  // holds what was written.
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

void DiskTierStore::Disable(const absl::Status& error) {
  if (!stats_.enabled) return;
  stats_.enabled = false;
  stats_.error = error.ToString();
  std::fprintf(stderr, "strata storage: ERROR: disk tier at %s turned off: %s\n",
               options_.path.c_str(), stats_.error.c_str());
  // Queued blocks are dropped: nothing more will be written until reopened.
  for (const WriteOp& op : write_queue_) {
    if (op.kind == WriteOp::Kind::kPut) {
      queued_bytes_ -= op.value->size;
      ++stats_.dropped_inserts;
    }
  }
  write_queue_.clear();
  pending_.clear();
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
    ++stats_.inserts;
    if (pending_.contains(stored) || index_.contains(stored)) return absl::OkStatus();
    if (!stats_.enabled || value_bytes > options_.capacity_bytes ||
        queued_bytes_ + value_bytes > options_.max_queued_bytes) {
      ++stats_.dropped_inserts;
      return absl::OkStatus();
    }
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
  if (!stats_.enabled || pending_.contains(stored) || index_.contains(stored)) {
    queued_bytes_ -= value_bytes;
    if (!stats_.enabled) ++stats_.dropped_inserts;
    return absl::OkStatus();
  }
  pending_[stored] = value;
  write_queue_.push_back(
      WriteOp{.kind = WriteOp::Kind::kPut, .key = stored, .value = std::move(value)});
  return absl::OkStatus();
}

std::unique_ptr<TierStoreHandle> DiskTierStore::Lookup(const BlockKey& key) {
  const StoredKey stored{options_.model_fingerprint, key};
  auto state = std::make_shared<ReadState>();
  state->key = stored;
  absl::MutexLock lock(&mu_);
  ++stats_.lookups;
  if (!stats_.enabled) {
    ++stats_.misses;
    return nullptr;
  }
  if (const auto it = pending_.find(stored); it != pending_.end()) {
    ++stats_.hits;
    stats_.bytes_read += options_.block_bytes;
    state->pending = it->second;
    state->payload = absl::MakeConstSpan(state->pending->bytes.get() + disk_format::kHeaderBytes,
                                         options_.block_bytes);
    state->done.Notify();
    return std::make_unique<Handle>(std::move(state));
  }
  const auto it = index_.find(stored);
  if (it == index_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  state->sequence = it->second.sequence;
  read_queue_.push_back(state);
  return std::make_unique<Handle>(std::move(state));
}

void DiskTierStore::Erase(const BlockKey& key) {
  const StoredKey stored{options_.model_fingerprint, key};
  absl::MutexLock lock(&mu_);
  if (!stats_.enabled) return;
  pending_.erase(stored);  // a queued put no longer matches and is skipped
  if (!index_.contains(stored)) return;
  RemoveFromIndex(stored);
  write_queue_.push_back(WriteOp{.kind = WriteOp::Kind::kDelete, .key = stored});
}

TierStoreStats DiskTierStore::Stats() const {
  absl::MutexLock lock(&mu_);
  TierStoreStats stats = stats_;
  stats.blocks = index_.size();
  stats.used_bytes = used_bytes_;
  return stats;
}

void DiskTierStore::Flush() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](DiskTierStore* store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_) {
        return store->write_queue_.empty() && !store->writing_;
      },
      this));
}

void DiskTierStore::WriterLoop() {
  for (;;) {
    Batch batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](DiskTierStore* store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_) {
            return store->stopping_ || !store->write_queue_.empty();
          },
          this));
      if (write_queue_.empty()) return;  // stopping, and everything is written
      batch = TakeBatch();
      writing_ = true;
    }
    const absl::Status status = batch.ops.empty() ? absl::OkStatus() : Write(batch);
    FinishBatch(batch, status);
  }
}

DiskTierStore::Batch DiskTierStore::TakeBatch() {
  Batch batch;
  while (!write_queue_.empty() && batch.put_bytes < options_.max_batch_bytes) {
    WriteOp op = std::move(write_queue_.front());
    write_queue_.pop_front();
    switch (op.kind) {
      case WriteOp::Kind::kPut: {
        queued_bytes_ -= op.value->size;
        const auto it = pending_.find(op.key);
        if (it == pending_.end() || it->second != op.value) break;  // erased since
        op.sequence = next_sequence_++;
        op.value_bytes = op.value->size;
        // Indexed before it is written; Lookup serves it from pending_ until then.
        AddToIndex(op.key, IndexEntry{op.sequence, op.value_bytes});
        batch.put_bytes += op.value_bytes;
        batch.ops.push_back(std::move(op));
        break;
      }
      case WriteOp::Kind::kDelete:
        batch.ops.push_back(std::move(op));
        break;
      case WriteOp::Kind::kTouch: {
        const auto it = index_.find(op.key);
        if (it == index_.end() || it->second.sequence != op.sequence) break;  // superseded
        op.value_bytes = it->second.value_bytes;
        batch.ops.push_back(std::move(op));
        break;
      }
    }
  }
  EvictToCapacity(batch);
  return batch;
}

void DiskTierStore::EvictToCapacity(Batch& batch) {
  while (used_bytes_ > options_.capacity_bytes && !by_sequence_.empty()) {
    const StoredKey victim = by_sequence_.begin()->second;
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
        status = write_batch.Put(index_cf_, key,
                                 disk_format::EncodeIndexRecord({op.sequence, op.value_bytes}));
        break;
    }
    if (!status.ok()) return FromRocks(status, "disk tier: building a write batch");
  }
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync_writes;
  return FromRocks(db_->Write(write_options, &write_batch), "disk tier: write");
}

void DiskTierStore::FinishBatch(Batch& batch, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (!status.ok()) {
    for (const WriteOp& op : batch.ops) {
      if (op.kind == WriteOp::Kind::kPut) ++stats_.dropped_inserts;
    }
    Disable(status);
    return;
  }
  stats_.bytes_written += batch.put_bytes;
  // About one batch of spares: what a steady stream of inserts reuses.
  const size_t max_spares =
      options_.max_batch_bytes / (disk_format::kHeaderBytes + options_.block_bytes) + 1;
  for (WriteOp& op : batch.ops) {
    if (op.kind != WriteOp::Kind::kPut) continue;
    const auto it = pending_.find(op.key);
    if (it != pending_.end() && it->second == op.value) pending_.erase(it);
    // Only the batch holds it now: no handle is reading from it.
    if (op.value.use_count() == 1 && spare_buffers_.size() < max_spares) {
      spare_buffers_.push_back(std::move(op.value->bytes));
    }
  }
}

void DiskTierStore::ReaderLoop() {
  for (;;) {
    std::shared_ptr<ReadState> state;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](DiskTierStore* store) ABSL_EXCLUSIVE_LOCKS_REQUIRED(store->mu_) {
            return store->stopping_ || !store->read_queue_.empty();
          },
          this));
      if (read_queue_.empty()) return;
      state = std::move(read_queue_.front());
      read_queue_.pop_front();
      if (state.use_count() == 1) {  // its handle is gone: nobody wants the bytes
        ++stats_.misses;
        continue;
      }
    }
    Read(*state);
  }
}

void DiskTierStore::Read(ReadState& state) {
  rocksdb::ReadOptions read_options;
  read_options.fill_cache = false;  // blocks are large and cached by the tiers above
  const rocksdb::Status status =
      db_->Get(read_options, blocks_cf_, disk_format::EncodeKey(state.key), &state.value);
  Verdict verdict = Verdict::kCorrupt;
  bool found = true;
  if (status.ok()) {
    verdict = disk_format::Verify(std::string_view(state.value.data(), state.value.size()),
                                  state.key, options_.block_bytes);
    if (verdict == Verdict::kOk) {
      state.payload = absl::MakeConstSpan(
          reinterpret_cast<const std::byte*>(state.value.data()) + disk_format::kHeaderBytes,
          options_.block_bytes);
    }
  } else if (status.IsNotFound()) {
    found = false;
  } else if (!status.IsCorruption()) {
    // The device failed rather than one value: stop using it.
    absl::MutexLock lock(&mu_);
    ++stats_.misses;
    Disable(FromRocks(status, "disk tier: read"));
    state.done.Notify();
    return;
  }
  RecordRead(state, verdict, found);
  state.done.Notify();
}

void DiskTierStore::RecordRead(const ReadState& state, Verdict verdict, bool found) {
  absl::MutexLock lock(&mu_);
  const auto it = index_.find(state.key);
  // The entry this read was for is still there: not erased, evicted or
  // replaced by a newer write of the key (those change its sequence).
  const bool same_entry =
      it != index_.end() && it->second.sequence == state.sequence && !pending_.contains(state.key);
  if (found && verdict == Verdict::kOk) {
    ++stats_.hits;
    stats_.bytes_read += options_.block_bytes;
    if (same_entry && stats_.enabled) {
      // Used again: move it to the newest end of the eviction order.
      const uint64_t sequence = next_sequence_++;
      by_sequence_.erase(it->second.sequence);
      by_sequence_[sequence] = state.key;
      it->second.sequence = sequence;
      write_queue_.push_back(
          WriteOp{.kind = WriteOp::Kind::kTouch, .key = state.key, .sequence = sequence});
    }
    return;
  }
  ++stats_.misses;
  if (found && verdict == Verdict::kCorrupt) ++stats_.corrupt_misses;
  if (found && verdict == Verdict::kForeign) ++stats_.foreign_misses;
  // A bad value, or an index record without its block: drop both for good.
  if (same_entry && stats_.enabled) {
    RemoveFromIndex(state.key);
    write_queue_.push_back(WriteOp{.kind = WriteOp::Kind::kDelete, .key = state.key});
  }
}

}  // namespace strata::storage
