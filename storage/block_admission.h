// Admission to the disk tier: write a block only once it is likely to be
// used again. A block is "sighted" once per request whose prompt holds it
// (the scheduler reports each request's block keys when it arrives,
// TierStore::RecordSightings), and an evicted block is written to disk only
// if at least `admit_after` requests have wanted it. A one-off prompt's
// blocks are then never written; a shared system prompt or an earlier turn
// of a conversation is written on its first eviction after its second use.
//
// Why requests and not tier events: every block that reaches the disk tier
// from the host tier was inserted into the host tier once (on its device
// eviction), so counting inserts would admit everything on its first
// offer to disk. What says "reused" is a second request for the block,
// whether it was then served from the device, a tier, or recomputed.
//
// The counts live in a count-min sketch (4 rows of saturating 8-bit
// counters) of a fixed size: memory does not grow with the number of
// distinct blocks. Collisions can only overcount (admit a block seen once),
// never undercount. Counts are halved every `width / 2` sightings, so old
// popularity fades and the sketch's horizon is about that many sightings.
//
// Thread-safe: RecordSightings (the engine thread) and Admit (whoever
// inserts into the disk tier) may run concurrently.
#ifndef STRATA_STORAGE_BLOCK_ADMISSION_H_
#define STRATA_STORAGE_BLOCK_ADMISSION_H_

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "storage/block_key.h"

namespace strata::storage {

class BlockAdmission {
 public:
  // Sightings are counted up to this; admit_after must not exceed it.
  static constexpr int kMaxCount = 255;

  // `admit_after` >= 1 (1 admits every block and counts nothing);
  // `expected_blocks` sizes the sketch (a few counters per block the disk
  // holds), clamped to [4096, 2^22] counters per row.
  BlockAdmission(int admit_after, uint64_t expected_blocks);

  // One request wants these blocks: each distinct key's count goes up by
  // one (a key repeated within `keys` counts once).
  void RecordSightings(absl::Span<const BlockKey> keys);

  // Whether a block offered to the disk tier should be written.
  bool Admit(const BlockKey& key) const;

  // The sketch's estimate of a key's sightings (>= the true count, until
  // halved).
  int Estimate(const BlockKey& key) const;

  int admit_after() const { return admit_after_; }
  uint64_t width() const { return width_; }

 private:
  static constexpr int kRows = 4;
  uint64_t Index(const BlockKey& key, int row) const;
  int EstimateLocked(const BlockKey& key) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void HalveLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int admit_after_;
  uint64_t width_ = 0;  // counters per row, a power of two
  int shift_ = 0;       // 64 - log2(width_)
  mutable absl::Mutex mu_;
  std::vector<uint8_t> counters_ ABSL_GUARDED_BY(mu_);  // kRows * width_
  uint64_t since_halving_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace strata::storage

#endif  // STRATA_STORAGE_BLOCK_ADMISSION_H_
