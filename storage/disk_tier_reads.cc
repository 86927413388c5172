// DiskTierStore's read side (storage/disk_tier_store.h): Lookup queues a
// read, the reader threads run it (RocksDB Get, then our own checksum), and
// a hit is moved to the newest end of the eviction order.
#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "server/logging/log.h"
#include "storage/disk_tier_rocksdb.h"
#include "storage/disk_tier_store.h"
#include "storage/lost_blob_files.h"

namespace strata::storage {

using disk_format::Verdict;
using logging::Level;

// One Lookup's read. The reader thread fills it, then notifies `done`;
// readers of the fields wait for `done` first.
struct DiskTierStore::ReadState {
  StoredKey key;
  uint64_t sequence = 0;  // the index entry's order when looked up
  std::string buffer;     // where `value` is read to, unless pinned
  rocksdb::PinnableSlice value{&buffer};
  // A hit served from the write queue, or this read's buffer kept for its
  // rewrite; either way what `payload` points into.
  std::shared_ptr<PendingValue> pending;
  absl::Span<const std::byte> payload;
  std::chrono::steady_clock::time_point queued_at;
  std::chrono::steady_clock::time_point done_at;  // set before `done` is notified
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
  std::optional<std::chrono::steady_clock::time_point> ReadyAt() const override {
    if (!IsReady()) return std::nullopt;
    return state_->done_at;
  }

 private:
  std::shared_ptr<ReadState> state_;
};

std::unique_ptr<TierStoreHandle> DiskTierStore::Lookup(const BlockKey& key) {
  const StoredKey stored{options_.model_fingerprint, key};
  auto state = std::make_shared<ReadState>();
  state->key = stored;
  absl::MutexLock lock(&mu_);
  ++stats_.lookups;
  last_lookup_ = Clock::now();
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
    state->done_at = Clock::now();
    state->done.Notify();
    return std::make_unique<Handle>(std::move(state));
  }
  const auto it = index_.find(stored);
  if (it == index_.end()) {
    ++stats_.misses;
    return nullptr;
  }
  state->sequence = it->second.sequence;
  state->queued_at = Clock::now();
  read_queue_.push_back(state);
  return std::make_unique<Handle>(std::move(state));
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
  // Every block carries its own XXH3 checksum over header and payload
  // (disk_format::Verify below), so RocksDB's CRC of the blob record would
  // check the same bytes a second time, and Debian's RocksDB computes CRC32C
  // in portable code: at ~1 GB/s it was half of a disk hit's time.
  read_options.verify_checksums = false;
  const rocksdb::Status status =
      db_->Get(read_options, blocks_cf_, disk_format::EncodeKey(state.key), &state.value);
  Verdict verdict = Verdict::kCorrupt;
  bool found = true;
  bool lost = false;
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
    // A blob file deleted behind RocksDB's back loses only its own blocks;
    // any other error means the device failed: stop using it.
    const std::vector<std::string> missing = MissingBlobFiles(*db_, *blocks_cf_);
    if (missing.empty()) {
      absl::MutexLock lock(&mu_);
      ++stats_.misses;
      Disable(FromRocks(status, "disk tier: read"));
      state.done_at = std::chrono::steady_clock::now();
      state.done.Notify();
      return;
    }
    found = false;
    lost = true;
  }
  std::shared_ptr<PendingValue> rewrite;
  if (found && verdict == Verdict::kOk) rewrite = KeepForRewrite(state);
  RecordRead(state, verdict, found, lost, std::move(rewrite));
  state.done_at = std::chrono::steady_clock::now();
  state.done.Notify();
}

std::shared_ptr<DiskTierStore::PendingValue> DiskTierStore::KeepForRewrite(ReadState& state) {
  const size_t size = state.value.size();
  {
    absl::MutexLock lock(&mu_);
    if (!Writable() || queued_bytes_ + size > options_.max_queued_bytes) return nullptr;
    queued_bytes_ += size;  // released by TakeBatch, or by RecordRead if unused
  }
  auto kept = std::make_shared<PendingValue>();
  kept->size = size;
  // The value lies either in RocksDB's own buffer, pinned (a blob read
  // without a blob cache), or in the read's buffer, which PinnableSlice
  // fills when it does not pin: keep whichever holds it. Both moves keep
  // the bytes where they are (the value, header and block, is far past a
  // string's inline capacity).
  if (state.value.IsPinned()) {
    kept->pinned = std::move(state.value);
  } else {
    kept->read = std::move(state.buffer);
  }
  state.payload =
      absl::MakeConstSpan(kept->data() + disk_format::kHeaderBytes, options_.block_bytes);
  state.pending = kept;
  return kept;
}

void DiskTierStore::RecordRead(const ReadState& state, Verdict verdict, bool found, bool lost,
                               std::shared_ptr<PendingValue> rewrite) {
  absl::MutexLock lock(&mu_);
  if (rewrite != nullptr && !(Writable() && index_.contains(state.key))) {
    queued_bytes_ -= rewrite->size;  // not queued after all
    rewrite = nullptr;
  }
  const auto it = index_.find(state.key);
  // The entry this read was for is still there: not erased, evicted or
  // replaced by a newer write of the key (those change its sequence).
  const bool same_entry =
      it != index_.end() && it->second.sequence == state.sequence && !pending_.contains(state.key);
  if (found && verdict == Verdict::kOk) {
    ++stats_.hits;
    stats_.bytes_read += options_.block_bytes;
    RecordTransfer(TierTransfer{.direction = TierTransfer::Direction::kOut,
                                .seconds = SecondsSince(state.queued_at),
                                .blocks = 1});
    if (same_entry && Writable()) {
      // Used again: move it to the newest end of the eviction order, and
      // into the newest blob file, so that no old file stays alive for it.
      const uint64_t sequence = next_sequence_++;
      by_sequence_.erase(it->second.sequence);
      by_sequence_[sequence] = state.key;
      it->second.sequence = sequence;
      QueueTouch(WriteOp{.kind = WriteOp::Kind::kTouch,
                         .key = state.key,
                         .value = std::move(rewrite),
                         .sequence = sequence});
      return;
    }
    if (rewrite != nullptr) queued_bytes_ -= rewrite->size;
    return;
  }
  if (rewrite != nullptr) queued_bytes_ -= rewrite->size;
  ++stats_.misses;
  if (found && verdict == Verdict::kCorrupt) ++stats_.corrupt_misses;
  if (found && verdict == Verdict::kForeign) ++stats_.foreign_misses;
  // A bad value, a lost one, or an index record without its block: drop
  // both for good.
  if (same_entry && stats_.enabled) {
    if (lost) {
      if (stats_.lost_blocks == 0) {
        logging::Event(Level::kWarning, "disk_tier_lost_blocks")
            .With("path", options_.path)
            .With("detail", "a blob file is missing; its blocks are dropped as they are read");
      }
      ++stats_.lost_blocks;
    }
    deleted_bytes_ += it->second.value_bytes;
    RemoveFromIndex(state.key);
    if (Writable()) {
      write_queue_.push_back(WriteOp{.kind = WriteOp::Kind::kDelete, .key = state.key});
    }
  }
}

}  // namespace strata::storage
