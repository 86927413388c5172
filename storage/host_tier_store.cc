#include "storage/host_tier_store.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sys/mman.h>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "server/logging/log.h"

namespace strata::storage {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;

// Regions of a huge page or more are huge-page aligned, so that the kernel
// can back them with transparent huge pages.
std::align_val_t AlignmentFor(size_t size) {
  return std::align_val_t{size >= kHugePage ? kHugePage : 64};
}

class HeapMemory final : public HostMemory {
 public:
  explicit HeapMemory(size_t size)
      : alignment_(AlignmentFor(size)),
        data_(static_cast<std::byte*>(::operator new(size, alignment_))),
        size_(size) {
    if (size >= kHugePage) {
      // Advice only: without THP (or with it off) the memory still works,
      // in 4 KiB pages.
      (void)madvise(data_, size / kHugePage * kHugePage, MADV_HUGEPAGE);
    }
  }
  ~HeapMemory() override { ::operator delete(data_, alignment_); }
  HeapMemory(const HeapMemory&) = delete;
  HeapMemory& operator=(const HeapMemory&) = delete;

  std::byte* data() override { return data_; }
  size_t size() const override { return size_; }

 private:
  std::align_val_t alignment_;
  std::byte* data_;
  size_t size_;
};

}  // namespace

HostAllocator HeapHostAllocator() {
  return [](size_t bytes) -> absl::StatusOr<std::unique_ptr<HostMemory>> {
    std::unique_ptr<HostMemory> memory;
    try {
      memory = std::make_unique<HeapMemory>(bytes);
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes, " host bytes"));
    }
    return memory;
  };
}

// Pins one slot for its lifetime; the bytes cannot move or be reused until
// the destructor unpins them.
class HostTierStore::Handle final : public TierStoreHandle {
 public:
  Handle(HostTierStore* store, int32_t slot, absl::Span<const std::byte> value)
      : store_(store), slot_(slot), value_(value) {}
  ~Handle() override { store_->Unpin(slot_); }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  bool IsReady() const override { return true; }
  void Wait() override {}
  absl::Span<const std::byte> Value() override { return value_; }

 private:
  HostTierStore* store_;
  int32_t slot_;
  absl::Span<const std::byte> value_;
};

// Pins one slot being filled in place; see TierStoreWriter.
class HostTierStore::Writer final : public TierStoreWriter {
 public:
  Writer(HostTierStore* store, int32_t slot, absl::Span<std::byte> data)
      : store_(store), slot_(slot), data_(data) {}
  ~Writer() override { store_->FinishWrite(slot_, committed_); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  absl::Span<std::byte> Data() override { return data_; }
  void Commit() override { committed_ = true; }

 private:
  HostTierStore* store_;
  int32_t slot_;
  absl::Span<std::byte> data_;
  bool committed_ = false;
};

HostTierStore::HostTierStore(HostTierOptions options)
    : options_(std::move(options)),
      allocator_(options_.allocator ? options_.allocator : HeapHostAllocator()),
      max_slots_(options_.block_bytes == 0
                     ? 0
                     : static_cast<int64_t>(options_.capacity_bytes / options_.block_bytes)),
      slots_per_slab_(options_.block_bytes == 0
                          ? 1
                          : std::max<int64_t>(1, static_cast<int64_t>(options_.slab_bytes /
                                                                      options_.block_bytes))) {
  CHECK_GT(options_.block_bytes, 0u);
  // Slot numbers are int32_t links; a tier of 2^31 blocks is far beyond host memory.
  CHECK_LT(max_slots_, int64_t{1} << 31);
  stats_.capacity_bytes = static_cast<uint64_t>(max_slots_) * options_.block_bytes;
}

HostTierStore::~HostTierStore() {
  absl::MutexLock lock(&mu_);
  CHECK_EQ(pinned_handles_, 0);
}

std::byte* HostTierStore::SlotData(int32_t slot) const {
  const int64_t slab = slot / slots_per_slab_;
  const int64_t offset = (slot % slots_per_slab_) * static_cast<int64_t>(options_.block_bytes);
  return slabs_[static_cast<size_t>(slab)]->data() + offset;
}

bool HostTierStore::Grow() {
  const int64_t allocated = static_cast<int64_t>(slots_.size());
  if (allocated >= max_slots_ || allocator_failed_) return false;
  const int64_t count = std::min(slots_per_slab_, max_slots_ - allocated);
  const size_t bytes = static_cast<size_t>(count) * options_.block_bytes;
  absl::StatusOr<std::unique_ptr<HostMemory>> memory = allocator_(bytes);
  if (memory.ok() && (*memory == nullptr || (*memory)->size() < bytes)) {
    memory = absl::InternalError("allocator returned less memory than asked");
  }
  if (!memory.ok()) {
    // The tier keeps serving with the slots it has; retrying every Insert
    // would only slow the engine thread down.
    allocator_failed_ = true;
    stats_.error = absl::StrCat("host tier allocation failed: ", memory.status().ToString());
    logging::Event(allocated == 0 ? logging::Level::kError : logging::Level::kWarning,
                   allocated == 0 ? "host_tier_off" : "host_tier_shrunk")
        .With("error", stats_.error)
        .With("blocks", static_cast<int64_t>(allocated));
    if (allocated == 0) stats_.enabled = false;
    return false;
  }
  // Every slab but the last is whole, so slot / slots_per_slab_ finds the slab.
  slabs_.push_back(*std::move(memory));
  slots_.resize(static_cast<size_t>(allocated + count));
  for (int64_t slot = allocated + count - 1; slot >= allocated; --slot) {
    free_slots_.push_back(static_cast<int32_t>(slot));
  }
  return true;
}

void HostTierStore::LinkFront(int32_t slot) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.prev = kNone;
  s.next = lru_head_;
  if (lru_head_ != kNone) slots_[static_cast<size_t>(lru_head_)].prev = slot;
  lru_head_ = slot;
  if (lru_tail_ == kNone) lru_tail_ = slot;
}

void HostTierStore::Unlink(int32_t slot) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (s.prev != kNone) {
    slots_[static_cast<size_t>(s.prev)].next = s.next;
  } else {
    lru_head_ = s.next;
  }
  if (s.next != kNone) {
    slots_[static_cast<size_t>(s.next)].prev = s.prev;
  } else {
    lru_tail_ = s.prev;
  }
  s.prev = s.next = kNone;
}

void HostTierStore::FreeSlot(int32_t slot) {
  slots_[static_cast<size_t>(slot)] = Slot{};
  free_slots_.push_back(slot);
  --live_slots_;
}

int32_t HostTierStore::TakeSlot() {
  if (free_slots_.empty()) Grow();
  if (!free_slots_.empty()) {
    const int32_t slot = free_slots_.back();
    free_slots_.pop_back();
    ++live_slots_;
    return slot;
  }
  // Pinned blocks are not in the LRU list, so its tail is always evictable.
  const int32_t victim = lru_tail_;
  if (victim == kNone) return kNone;
  Slot& s = slots_[static_cast<size_t>(victim)];
  Unlink(victim);
  index_.erase(s.key);
  ++stats_.evictions;
  if (options_.on_evict) {
    options_.on_evict(s.key, absl::MakeConstSpan(SlotData(victim), options_.block_bytes));
  }
  s = Slot{};
  return victim;  // stays counted in live_slots_: the new block takes it over
}

absl::Status HostTierStore::Insert(const BlockKey& key, absl::Span<const std::byte> bytes) {
  if (bytes.size() != options_.block_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block of ", bytes.size(), " bytes; this store holds blocks of ", options_.block_bytes));
  }
  absl::MutexLock lock(&mu_);
  ++stats_.inserts;
  if (const auto it = index_.find(key); it != index_.end()) {
    Slot& s = slots_[static_cast<size_t>(it->second)];
    if (s.pins == 0) {
      Unlink(it->second);
      LinkFront(it->second);
    }
    return absl::OkStatus();
  }
  const int32_t slot = TakeSlot();
  if (slot == kNone) {
    ++stats_.dropped_inserts;
    return absl::OkStatus();
  }
  std::memcpy(SlotData(slot), bytes.data(), bytes.size());
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.key = key;
  index_[key] = slot;
  LinkFront(slot);
  stats_.bytes_written += bytes.size();
  return absl::OkStatus();
}

StartedInsert HostTierStore::StartInsert(const BlockKey& key) {
  absl::MutexLock lock(&mu_);
  if (const auto it = index_.find(key); it != index_.end()) {
    ++stats_.inserts;
    Slot& s = slots_[static_cast<size_t>(it->second)];
    if (s.pins == 0) {
      Unlink(it->second);
      LinkFront(it->second);
    }
    return {.outcome = StartedInsert::Outcome::kHeld};
  }
  // Not counted: the caller may still Insert it, which counts.
  const int32_t slot = TakeSlot();
  if (slot == kNone) return {.outcome = StartedInsert::Outcome::kNoRoom};
  ++stats_.inserts;
  // Indexed at once, so that a second StartInsert or Insert of the key finds
  // it, but pinned (out of the LRU list) and hidden from Lookup until Commit.
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.key = key;
  s.pins = 1;
  s.writing = true;
  index_[key] = slot;
  ++pinned_handles_;
  return {.outcome = StartedInsert::Outcome::kWriting,
          .writer = std::make_unique<Writer>(
              this, slot, absl::MakeSpan(SlotData(slot), options_.block_bytes))};
}

void HostTierStore::FinishWrite(int32_t slot, bool commit) {
  absl::MutexLock lock(&mu_);
  Slot& s = slots_[static_cast<size_t>(slot)];
  CHECK(s.writing && s.pins > 0);
  s.writing = false;
  if (commit && !s.erased) {
    stats_.bytes_written += options_.block_bytes;
  } else if (!s.erased) {
    // Discarded: the half-written bytes must never be served.
    index_.erase(s.key);
    s.erased = true;
  }
  --pinned_handles_;
  if (--s.pins > 0) return;
  if (s.erased) {
    FreeSlot(slot);
  } else {
    LinkFront(slot);
  }
}

std::unique_ptr<TierStoreHandle> HostTierStore::Lookup(const BlockKey& key) {
  absl::MutexLock lock(&mu_);
  ++stats_.lookups;
  const auto it = index_.find(key);
  if (it == index_.end() || slots_[static_cast<size_t>(it->second)].writing) {
    ++stats_.misses;
    return nullptr;
  }
  const int32_t slot = it->second;
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (s.pins++ == 0) Unlink(slot);
  ++pinned_handles_;
  ++stats_.hits;
  stats_.bytes_read += options_.block_bytes;
  return std::make_unique<Handle>(this, slot,
                                  absl::MakeConstSpan(SlotData(slot), options_.block_bytes));
}

void HostTierStore::Unpin(int32_t slot) {
  absl::MutexLock lock(&mu_);
  Slot& s = slots_[static_cast<size_t>(slot)];
  CHECK_GT(s.pins, 0);
  --pinned_handles_;
  if (--s.pins > 0) return;
  if (s.erased) {
    FreeSlot(slot);
  } else {
    LinkFront(slot);  // the reader just used it
  }
}

void HostTierStore::Erase(const BlockKey& key) {
  absl::MutexLock lock(&mu_);
  const auto it = index_.find(key);
  if (it == index_.end()) return;
  const int32_t slot = it->second;
  index_.erase(it);
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (s.pins > 0) {
    s.erased = true;
    return;
  }
  Unlink(slot);
  FreeSlot(slot);
}

TierStoreStats HostTierStore::Stats() const {
  absl::MutexLock lock(&mu_);
  TierStoreStats stats = stats_;
  stats.blocks = index_.size();
  stats.used_bytes = static_cast<uint64_t>(live_slots_) * options_.block_bytes;
  return stats;
}

}  // namespace strata::storage
