#include "storage/block_admission.h"

#include <algorithm>
#include <bit>

#include "absl/container/flat_hash_set.h"
#include "common/check.h"

namespace strata::storage {
namespace {

constexpr uint64_t kMinWidth = uint64_t{1} << 12;
constexpr uint64_t kMaxWidth = uint64_t{1} << 22;
// Odd multipliers, one per row: keys are uniform hashes already, so each row
// only needs a different mix of the two words.
constexpr uint64_t kRowMix[] = {0x9e3779b97f4a7c15ull, 0xc2b2ae3d27d4eb4full, 0x165667b19e3779f9ull,
                                0xd6e8feb86659fd93ull};

}  // namespace

BlockAdmission::BlockAdmission(int admit_after, uint64_t expected_blocks)
    : admit_after_(admit_after) {
  CHECK_GE(admit_after, 1);
  CHECK_LE(admit_after, kMaxCount);
  if (admit_after_ <= 1) return;  // admits everything: no counts needed
  // A few counters per block keeps collisions (overcounts) rare.
  const uint64_t wanted = std::clamp<uint64_t>(expected_blocks * 8, kMinWidth, kMaxWidth);
  width_ = std::bit_ceil(wanted);
  shift_ = 64 - std::countr_zero(width_);
  absl::MutexLock lock(&mu_);
  counters_.assign(static_cast<size_t>(kRows * width_), 0);
}

uint64_t BlockAdmission::Index(const BlockKey& key, int row) const {
  const uint64_t mixed = (key.low ^ (key.high * kRowMix[row])) * kRowMix[(row + 1) % kRows];
  return static_cast<uint64_t>(row) * width_ + (mixed >> shift_);
}

void BlockAdmission::RecordSightings(absl::Span<const BlockKey> keys) {
  if (admit_after_ <= 1 || keys.empty()) return;
  absl::flat_hash_set<BlockKey> seen;
  seen.reserve(keys.size());
  absl::MutexLock lock(&mu_);
  for (const BlockKey& key : keys) {
    if (!seen.insert(key).second) continue;
    // Conservative update: raise only the rows at the minimum, which keeps
    // the overcount of colliding keys low.
    const int current = EstimateLocked(key);
    if (current >= kMaxCount) continue;
    for (int row = 0; row < kRows; ++row) {
      uint8_t& counter = counters_[static_cast<size_t>(Index(key, row))];
      if (counter == current) ++counter;
    }
    if (++since_halving_ >= width_ / 2) HalveLocked();
  }
}

void BlockAdmission::HalveLocked() {
  for (uint8_t& counter : counters_) counter = static_cast<uint8_t>(counter >> 1);
  since_halving_ = 0;
}

int BlockAdmission::EstimateLocked(const BlockKey& key) const {
  int estimate = kMaxCount;
  for (int row = 0; row < kRows; ++row) {
    estimate = std::min<int>(estimate, counters_[static_cast<size_t>(Index(key, row))]);
  }
  return estimate;
}

int BlockAdmission::Estimate(const BlockKey& key) const {
  if (admit_after_ <= 1) return 0;
  absl::ReaderMutexLock lock(&mu_);
  return EstimateLocked(key);
}

bool BlockAdmission::Admit(const BlockKey& key) const {
  return admit_after_ <= 1 || Estimate(key) >= admit_after_;
}

}  // namespace strata::storage
