#include "scheduler/inflight_prefixes.h"

namespace strata::scheduler {

void InflightPrefixes::Add(RequestId id, absl::Span<const cache::BlockKey> keys) {
  for (const cache::BlockKey& key : keys) computing_.try_emplace(key, id);
}

std::optional<RequestId> InflightPrefixes::ShouldWait(RequestId id,
                                                      absl::Span<const cache::BlockKey> keys,
                                                      int64_t cached_blocks) const {
  if (cached_blocks < 0 || cached_blocks >= static_cast<int64_t>(keys.size())) return std::nullopt;
  auto it = computing_.find(keys[static_cast<size_t>(cached_blocks)]);
  if (it == computing_.end() || it->second == id) return std::nullopt;
  return it->second;
}

}  // namespace strata::scheduler
