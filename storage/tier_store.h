// TierStore: a store of whole KV blocks below device memory (host memory,
// disk), modelled on RocksDB's SecondaryCache. It is a cache, not a database:
// Insert may drop a block and still succeed, and every failure to read a block
// back (evicted, corrupt, foreign, I/O error) is a miss that the caller
// recomputes. A store never returns bytes other than those inserted under the
// key.
//
// Thread safety: every TierStore method may be called from any thread,
// concurrently (in practice the engine thread calls Insert/Lookup/Erase while
// the store's own I/O threads complete reads and writes). A handle is used by
// one thread at a time; IsReady may be polled from any thread.
#ifndef STRATA_STORAGE_TIER_STORE_H_
#define STRATA_STORAGE_TIER_STORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "storage/block_key.h"

namespace strata::storage {

// A snapshot of a store's counters, for the metrics endpoint. Counters only
// grow; used/capacity/blocks are the state at the time of the call.
struct TierStoreStats {
  // False once the store has turned itself off after an I/O error. A
  // disabled store drops inserts and misses every lookup.
  bool enabled = true;
  // False while the store serves what it holds but takes no new blocks
  // (the disk tier on a full filesystem). Implies nothing about `enabled`.
  bool writable = true;
  // The error that disabled the store, or one it degraded around (the host
  // tier keeps serving with less memory when its allocator fails); empty if none.
  std::string error;

  uint64_t inserts = 0;          // Insert calls with a well-sized block
  uint64_t dropped_inserts = 0;  // of those, blocks not stored (full, disabled, too slow)
  uint64_t lookups = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;          // every lookup that gave no bytes, including the two below
  uint64_t corrupt_misses = 0;  // stored bytes failed verification (checksum, length, magic)
  uint64_t foreign_misses = 0;  // stored bytes belong to another model fingerprint
  uint64_t evictions = 0;       // blocks removed to make room
  uint64_t bytes_written = 0;   // bytes stored (the disk store counts its headers too)
  uint64_t bytes_read = 0;      // block bytes returned by hits
  uint64_t blocks_written = 0;  // blocks actually stored: inserts less drops and failed writes
  uint64_t lost_blocks = 0;     // blocks dropped because their file vanished (disk)
  uint64_t touches_written = 0;  // hits' new eviction order written to disk (disk)
  // Inserts the admission policy declined (storage/block_admission.h): blocks
  // not written because too few requests had wanted them, and their bytes.
  uint64_t not_admitted_blocks = 0;
  uint64_t not_admitted_bytes = 0;

  uint64_t blocks = 0;      // blocks held now (0 once disabled)
  uint64_t used_bytes = 0;  // bytes held now, in the store's own accounting
  // The most it will hold now, in the same accounting: 0 once disabled, and
  // used_bytes while it takes no new blocks.
  uint64_t capacity_bytes = 0;
  // The disk store: bytes of all its files at the writer's last look.
  uint64_t disk_bytes = 0;
};

// One completed move of blocks into or out of a store, for the transfer
// duration metrics: from the moment it was queued until it was done.
struct TierTransfer {
  enum class Direction { kIn, kOut };
  Direction direction = Direction::kIn;
  double seconds = 0.0;
  uint64_t blocks = 0;
};

// The result of a Lookup. Owns (or pins) the block's bytes: Value() stays
// valid for the life of the handle, even if the block is evicted or erased in
// the meantime. The disk store's handles may outlive the store; the host
// store's may not (they pin its memory).
class TierStoreHandle {
 public:
  virtual ~TierStoreHandle() = default;

  // True once Value() can be called without blocking.
  virtual bool IsReady() const = 0;

  // Blocks until the read has finished (successfully or not).
  virtual void Wait() = 0;

  // Waits if needed, then returns the block's bytes (block_bytes() of them),
  // or an empty span for a miss: the block was gone, or the bytes read back
  // failed verification. Never other bytes than those inserted under the key.
  virtual absl::Span<const std::byte> Value() = 0;

  // When the read finished, for stores that time their reads (the disk
  // store), so that a caller polling IsReady only now and then can still
  // tell how long it took; nullopt before then, and from stores whose hits
  // are ready at Lookup.
  virtual std::optional<std::chrono::steady_clock::time_point> ReadyAt() const {
    return std::nullopt;
  }
};

// A block written in place into a store's own memory (TierStore::StartInsert),
// so that a demotion is one copy (device -> tier) and not two (device ->
// staging -> tier). The caller fills Data() (a DMA may write it), then calls
// Commit once the bytes are complete; destroying the writer without Commit
// discards the block. Until then the slot is pinned and no Lookup sees it.
// One thread at a time; it must not outlive its store.
class TierStoreWriter {
 public:
  virtual ~TierStoreWriter() = default;
  // block_bytes() bytes, valid for the writer's life.
  virtual absl::Span<std::byte> Data() = 0;
  // The store holds the block from now on (unless it was erased meanwhile).
  virtual void Commit() = 0;
};

// What StartInsert did.
struct StartedInsert {
  enum class Outcome : uint8_t {
    kUnsupported,  // this store copies only through Insert
    kHeld,         // the key is held (or being written) already: nothing to copy
    kNoRoom,       // no slot now (every one pinned, or no memory); nothing stored or
                   // counted: Insert it later, or drop it (a tier is a cache)
    kWriting,      // `writer` holds a slot to fill
    kDeclined,     // the store will not take the key now (admission, read-only,
                   // disabled): nothing to copy, and Insert would drop it too
  };
  Outcome outcome = Outcome::kUnsupported;
  std::unique_ptr<TierStoreWriter> writer;  // set for kWriting only
};

class TierStore {
 public:
  virtual ~TierStore() = default;

  // The fixed size of every block in this store (the KV block size).
  virtual size_t block_bytes() const = 0;

  // Offers a block to the store, which copies the bytes before returning
  // (the caller keeps ownership of `bytes`). OK also when the store dropped
  // the block (full, disabled, or its write queue is full): a tier is a
  // cache, and the block can be recomputed. INVALID_ARGUMENT when
  // bytes.size() != block_bytes(). A key already held is left as it is: a
  // key names its contents, so the bytes are the same.
  virtual absl::Status Insert(const BlockKey& key, absl::Span<const std::byte> bytes) = 0;

  // Insert without the caller's copy: a slot of the store's own memory to
  // fill, for stores whose memory the caller can write (the host tier). A
  // key already held is touched as Insert would. Stores that copy only
  // through Insert still answer kHeld and kDeclined, so that the caller
  // copies nothing for them; kUnsupported then means "stage it and Insert".
  // The default answers kUnsupported.
  virtual StartedInsert StartInsert(const BlockKey& /*key*/) { return {}; }

  // Starts a read of the block. nullptr is a miss known at once (not held,
  // or the store is disabled); otherwise the handle may still turn out a
  // miss (empty Value()). Reads of several handles run in parallel.
  virtual std::unique_ptr<TierStoreHandle> Lookup(const BlockKey& key) = 0;

  // Waits for every handle; null entries are skipped.
  virtual void WaitAll(absl::Span<const std::unique_ptr<TierStoreHandle>> handles) {
    for (const std::unique_ptr<TierStoreHandle>& handle : handles) {
      if (handle != nullptr) handle->Wait();
    }
  }

  // Removes the block if held; no-op otherwise. Handles already returned
  // keep their bytes.
  virtual void Erase(const BlockKey& key) = 0;

  // One request wants these blocks (its prompt's keys, in order), whether
  // or not this store holds them: input for an admission policy that
  // writes only blocks wanted more than once. The default ignores it.
  virtual void RecordSightings(absl::Span<const BlockKey> /*keys*/) {}

  virtual TierStoreStats Stats() const = 0;

  // The transfers completed since the previous call (bounded; a store that
  // does not time its transfers returns none). Any thread.
  virtual std::vector<TierTransfer> TakeTransfers() { return {}; }
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_TIER_STORE_H_
