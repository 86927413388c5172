#include "cache/block_pool.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace strata::cache {

BlockPool::BlockPool(int64_t num_blocks)
    : ref_counts_(num_blocks, 0),
      keys_(num_blocks),
      has_key_(num_blocks, 0),
      priorities_(num_blocks, Priority::kNormal),
      last_use_(num_blocks, 0),
      prev_(num_blocks, kNone),
      next_(num_blocks, kNone) {
  CHECK_GE(num_blocks, 0);
  free_list_.reserve(num_blocks);
  // Highest id at the bottom so that low ids are handed out first.
  for (int64_t id = num_blocks - 1; id >= 0; --id) free_list_.push_back(static_cast<BlockId>(id));
}

std::optional<std::vector<BlockId>> BlockPool::Allocate(int64_t count,
                                                        std::vector<EvictedBlock>* evicted) {
  CHECK_GE(count, 0);
  if (count > num_available()) return std::nullopt;
  if (count > num_free()) {
    int64_t wanted = count - num_free();
    CHECK_EQ(Evict(wanted, evicted), wanted);
  }
  std::vector<BlockId> ids(free_list_.end() - count, free_list_.end());
  free_list_.resize(free_list_.size() - count);
  // In ascending order: blocks freed or evicted together are often
  // consecutive, and a block table in arena order lets the CPU backend's
  // decode attention stream a head's KV (engine/cpu/kv_arena.h).
  std::sort(ids.begin(), ids.end());
  ++tick_;
  for (BlockId id : ids) {
    ref_counts_[id] = 1;
    last_use_[id] = tick_;
  }
  return ids;
}

int64_t BlockPool::Evict(int64_t count, std::vector<EvictedBlock>* evicted) {
  int64_t done = 0;
  for (; done < count; ++done) {
    BlockId id = PopVictim();
    if (id == kNone) break;
    if (evicted != nullptr) {
      evicted->push_back(EvictedBlock{
          .id = id, .key = keys_[id], .priority = priorities_[id], .last_use = last_use_[id]});
    }
    has_key_[id] = 0;
    keys_[id] = BlockKey{};
    priorities_[id] = Priority::kNormal;
    free_list_.push_back(id);
  }
  return done;
}

void BlockPool::AddRef(BlockId id) {
  CHECK_GT(ref_count(id), 0);
  ++ref_counts_[id];
}

void BlockPool::Acquire(BlockId id) {
  BlockState current = state(id);
  CHECK(current != BlockState::kFree);
  if (current == BlockState::kCached) Unlink(id);
  ++ref_counts_[id];
  last_use_[id] = ++tick_;
}

void BlockPool::Release(absl::Span<const BlockId> ids) {
  ++tick_;
  for (BlockId id : ids) {
    CHECK_GT(ref_count(id), 0);
    last_use_[id] = tick_;
    if (--ref_counts_[id] > 0) continue;
    if (has_key_[id]) {
      PushBack(id);
    } else {
      priorities_[id] = Priority::kNormal;
      free_list_.push_back(id);
    }
  }
}

void BlockPool::SetKey(BlockId id, const BlockKey& key) {
  CHECK_GT(ref_count(id), 0);
  CHECK(!has_key_[id]);
  keys_[id] = key;
  has_key_[id] = 1;
}

void BlockPool::SetPriority(BlockId id, Priority priority) {
  BlockState current = state(id);
  if (current == BlockState::kFree) return;
  if (current == BlockState::kCached) Unlink(id);
  priorities_[id] = priority;
  if (current == BlockState::kCached) PushBack(id);
}

int32_t BlockPool::ref_count(BlockId id) const {
  CheckId(id);
  return ref_counts_[id];
}

BlockState BlockPool::state(BlockId id) const {
  CheckId(id);
  if (ref_counts_[id] > 0) return BlockState::kInUse;
  return has_key_[id] ? BlockState::kCached : BlockState::kFree;
}

std::optional<BlockKey> BlockPool::key(BlockId id) const {
  CheckId(id);
  if (!has_key_[id]) return std::nullopt;
  return keys_[id];
}

Priority BlockPool::priority(BlockId id) const {
  CheckId(id);
  return priorities_[id];
}

uint64_t BlockPool::last_use(BlockId id) const {
  CheckId(id);
  return last_use_[id];
}

void BlockPool::CheckId(BlockId id) const {
  CHECK_GE(id, 0);
  CHECK_LT(static_cast<int64_t>(id), num_blocks());
}

void BlockPool::PushBack(BlockId id) {
  List& list = lists_[static_cast<int>(priorities_[id])];
  prev_[id] = list.tail;
  next_[id] = kNone;
  if (list.tail != kNone) {
    next_[list.tail] = id;
  } else {
    list.head = id;
  }
  list.tail = id;
  ++num_cached_;
}

void BlockPool::Unlink(BlockId id) {
  List& list = lists_[static_cast<int>(priorities_[id])];
  if (prev_[id] != kNone) {
    next_[prev_[id]] = next_[id];
  } else {
    list.head = next_[id];
  }
  if (next_[id] != kNone) {
    prev_[next_[id]] = prev_[id];
  } else {
    list.tail = prev_[id];
  }
  prev_[id] = next_[id] = kNone;
  --num_cached_;
}

BlockId BlockPool::PopVictim() {
  for (const List& list : lists_) {  // lowest priority first
    if (list.head != kNone) {
      BlockId id = list.head;
      Unlink(id);
      return id;
    }
  }
  return kNone;
}

absl::Status BlockPool::Validate() const {
  const int64_t n = num_blocks();
  std::vector<int> seen(n, 0);  // times each block was found on a list
  for (BlockId id : free_list_) {
    if (id < 0 || id >= n) return absl::InternalError(absl::StrCat("free list holds id ", id));
    if (state(id) != BlockState::kFree) {
      return absl::InternalError(absl::StrCat("block ", id, " is on the free list but not free"));
    }
    ++seen[id];
  }
  int64_t cached = 0;
  for (int p = 0; p < kNumPriorities; ++p) {
    BlockId previous = kNone;
    for (BlockId id = lists_[p].head; id != kNone; previous = id, id = next_[id]) {
      if (id < 0 || id >= n || ++seen[id] > 1 || cached++ > n) {
        return absl::InternalError(absl::StrCat("eviction list ", p, " is malformed at ", id));
      }
      if (state(id) != BlockState::kCached || static_cast<int>(priorities_[id]) != p ||
          prev_[id] != previous) {
        return absl::InternalError(
            absl::StrCat("block ", id, " is misplaced on eviction list ", p));
      }
    }
    if (lists_[p].tail != previous) {
      return absl::InternalError(absl::StrCat("eviction list ", p, " has a stale tail"));
    }
  }
  if (cached != num_cached_) return absl::InternalError("cached count drifted");
  for (BlockId id = 0; id < n; ++id) {
    if (seen[id] > 1) return absl::InternalError(absl::StrCat("block ", id, " listed twice"));
    if (state(id) != BlockState::kInUse && seen[id] == 0) {
      return absl::InternalError(absl::StrCat("block ", id, " is lost: unreferenced, unlisted"));
    }
    if (state(id) == BlockState::kInUse && seen[id] != 0) {
      return absl::InternalError(absl::StrCat("block ", id, " is referenced and listed"));
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::cache
