// A fake of storage::TierStore (storage/tier_store.h) for tests: holds what
// it is given through Insert (StartInsert answers only kHeld, kDeclined for
// the keys the test declines, or kUnsupported, as the disk tier), serves no
// lookups, records the sightings it is told of, and reports the stats and
// transfers the test sets. Not
// thread-safe: for tests that call it from one thread.
#ifndef STRATA_TESTS_MOCKS_FAKE_TIER_STORE_H_
#define STRATA_TESTS_MOCKS_FAKE_TIER_STORE_H_

#include <cstddef>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "storage/tier_store.h"

namespace strata::testing {

class FakeTierStore final : public storage::TierStore {
 public:
  explicit FakeTierStore(size_t block_bytes, storage::TierStoreStats stats = {})
      : block_bytes_(block_bytes), stats_(std::move(stats)) {}

  size_t block_bytes() const override { return block_bytes_; }
  absl::Status Insert(const storage::BlockKey& key, absl::Span<const std::byte> bytes) override {
    blocks_[key] = std::vector<std::byte>(bytes.begin(), bytes.end());
    return absl::OkStatus();
  }
  storage::StartedInsert StartInsert(const storage::BlockKey& key) override {
    using Outcome = storage::StartedInsert::Outcome;
    if (blocks_.contains(key)) return {.outcome = Outcome::kHeld};
    if (declined_.contains(key)) return {.outcome = Outcome::kDeclined};
    return {.outcome = Outcome::kUnsupported};
  }
  std::unique_ptr<storage::TierStoreHandle> Lookup(const storage::BlockKey&) override {
    return nullptr;
  }
  void Erase(const storage::BlockKey& key) override { blocks_.erase(key); }
  void RecordSightings(absl::Span<const storage::BlockKey> keys) override {
    sightings_.insert(sightings_.end(), keys.begin(), keys.end());
  }
  storage::TierStoreStats Stats() const override { return stats_; }
  std::vector<storage::TierTransfer> TakeTransfers() override {
    std::vector<storage::TierTransfer> taken;
    taken.swap(transfers_);
    return taken;
  }

  // What the test sets and reads.
  storage::TierStoreStats& stats() { return stats_; }
  std::vector<storage::TierTransfer>& transfers() { return transfers_; }
  absl::flat_hash_map<storage::BlockKey, std::vector<std::byte>>& blocks() { return blocks_; }
  // Keys StartInsert declines (as admission does on the disk tier).
  absl::flat_hash_set<storage::BlockKey>& declined() { return declined_; }
  // Every key RecordSightings was given, in order.
  const std::vector<storage::BlockKey>& sightings() const { return sightings_; }

 private:
  size_t block_bytes_;
  storage::TierStoreStats stats_;
  std::vector<storage::TierTransfer> transfers_;
  absl::flat_hash_map<storage::BlockKey, std::vector<std::byte>> blocks_;
  absl::flat_hash_set<storage::BlockKey> declined_;
  std::vector<storage::BlockKey> sightings_;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_MOCKS_FAKE_TIER_STORE_H_
