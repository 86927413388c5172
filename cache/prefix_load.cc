#include "cache/prefix_load.h"

#include <algorithm>
#include <utility>

namespace strata::cache {

PrefixLoad::PrefixLoad(absl::Span<const BlockKey> keys, storage::TierStore* host,
                       storage::TierStore* disk)
    : started_(std::chrono::steady_clock::now()) {
  for (const BlockKey& key : keys) {
    Tier tier = Tier::kHost;
    std::unique_ptr<storage::TierStoreHandle> handle;
    if (host != nullptr) handle = host->Lookup(key);
    if (handle == nullptr && disk != nullptr) {
      tier = Tier::kDisk;
      handle = disk->Lookup(key);
    }
    if (handle == nullptr) break;  // the chain is broken here: later blocks are useless
    handles_.push_back(Pending{key, tier, std::move(handle)});
  }
  looked_up_ = std::chrono::steady_clock::now();
}

std::vector<Tier> PrefixLoad::tiers() const {
  std::vector<Tier> tiers;
  tiers.reserve(handles_.size());
  for (const Pending& pending : handles_) tiers.push_back(pending.tier);
  return tiers;
}

void PrefixLoad::Truncate(int64_t n) {
  if (n < num_found()) handles_.resize(static_cast<size_t>(std::max<int64_t>(n, 0)));
}

std::optional<double> PrefixLoad::ReadSeconds() const {
  if (!IsReady()) return std::nullopt;
  std::chrono::steady_clock::time_point done = looked_up_;
  for (const Pending& pending : handles_) {
    done = std::max(done, pending.handle->ReadyAt().value_or(looked_up_));
  }
  return std::chrono::duration<double>(done - started_).count();
}

bool PrefixLoad::IsReady() const {
  for (const Pending& pending : handles_) {
    if (!pending.handle->IsReady()) return false;
  }
  return true;
}

std::vector<LoadedBlock> PrefixLoad::Blocks() {
  std::vector<LoadedBlock> blocks;
  for (Pending& pending : handles_) {
    absl::Span<const std::byte> bytes = pending.handle->Value();
    if (bytes.empty()) break;
    blocks.push_back(LoadedBlock{pending.key, pending.tier, bytes});
  }
  return blocks;
}

}  // namespace strata::cache
