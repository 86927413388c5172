#include "cache/prefix_load.h"

#include <utility>

namespace strata::cache {

PrefixLoad::PrefixLoad(absl::Span<const BlockKey> keys, storage::TierStore* host,
                       storage::TierStore* disk) {
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
