#include "cache/demotions.h"

#include <utility>

namespace strata::cache {

Demotions::Demotions(StagingPool& staging, storage::TierStore& target, Tier tier)
    : staging_(staging), target_(target), tier_(tier) {}

Demotions::~Demotions() { Finish(/*performed=*/false); }

std::optional<absl::Span<std::byte>> Demotions::Add(const BlockKey& key) {
  storage::StartedInsert started = target_.StartInsert(key);
  switch (started.outcome) {
    case storage::StartedInsert::Outcome::kHeld:
    case storage::StartedInsert::Outcome::kDeclined:
      return std::nullopt;
    case storage::StartedInsert::Outcome::kWriting: {
      const absl::Span<std::byte> data = started.writer->Data();
      pending_.push_back(Pending{.key = key, .writer = std::move(started.writer)});
      return data;
    }
    case storage::StartedInsert::Outcome::kNoRoom:
      // Every slot is pinned, most likely by this step's own writers (it
      // demotes more than the tier holds): staged, the block is inserted
      // after them and pushes the oldest down a tier, as Insert does.
    case storage::StartedInsert::Outcome::kUnsupported:
      break;
  }
  std::optional<int32_t> slot = staging_.Acquire();
  if (!slot) return std::nullopt;
  pending_.push_back(Pending{.key = key, .slot = *slot});
  return staging_.Data(*slot);
}

int64_t Demotions::Finish(bool performed) {
  int64_t taken = 0;
  // Writers first: unpinned, their slots can take (or be evicted for) the
  // staged blocks that follow.
  for (Pending& pending : pending_) {
    if (pending.writer == nullptr) continue;
    if (performed) {
      pending.writer->Commit();
      ++taken;
    }
    pending.writer.reset();  // unpins: held if committed, else discarded
  }
  for (const Pending& pending : pending_) {
    if (pending.slot < 0) continue;
    // Insert copies (and may drop, or push an older block down a tier).
    if (performed && target_.Insert(pending.key, staging_.Data(pending.slot)).ok()) ++taken;
    staging_.Release(pending.slot);
  }
  pending_.clear();
  return taken;
}

}  // namespace strata::cache
