#include "scheduler/key_holds.h"

#include <utility>

#include "common/check.h"

namespace strata::scheduler {

cache::Priority KeyHolds::Highest(const Counts& counts) {
  for (int p = cache::kNumPriorities - 1; p > 0; --p) {
    if (counts[static_cast<size_t>(p)] > 0) return static_cast<cache::Priority>(p);
  }
  return cache::Priority::kNormal;
}

void KeyHolds::Hold(absl::Span<const cache::BlockKey> keys, cache::Priority priority) {
  CHECK(priority != cache::Priority::kNormal);
  for (const cache::BlockKey& key : keys) {
    Counts& counts = counts_[key];
    const cache::Priority before = Highest(counts);
    ++counts[static_cast<size_t>(priority)];
    if (Highest(counts) != before) changed_.push_back(key);
  }
}

void KeyHolds::Drop(absl::Span<const cache::BlockKey> keys, cache::Priority priority) {
  for (const cache::BlockKey& key : keys) {
    auto it = counts_.find(key);
    CHECK(it != counts_.end());
    Counts& counts = it->second;
    CHECK_GT(counts[static_cast<size_t>(priority)], 0);
    const cache::Priority before = Highest(counts);
    --counts[static_cast<size_t>(priority)];
    const cache::Priority after = Highest(counts);
    if (after != before) changed_.push_back(key);
    if (counts == Counts{}) counts_.erase(it);
  }
}

cache::Priority KeyHolds::Effective(const cache::BlockKey& key) const {
  auto it = counts_.find(key);
  return it == counts_.end() ? cache::Priority::kNormal : Highest(it->second);
}

void KeyHolds::Touch(absl::Span<const cache::BlockKey> keys) {
  changed_.insert(changed_.end(), keys.begin(), keys.end());
}

std::vector<cache::BlockKey> KeyHolds::TakeChanged() { return std::exchange(changed_, {}); }

}  // namespace strata::scheduler
