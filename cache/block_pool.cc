#include "cache/block_pool.h"

#include "common/check.h"

namespace strata::cache {

BlockPool::BlockPool(int64_t num_blocks) : ref_counts_(num_blocks, 0) {
  CHECK_GE(num_blocks, 0);
  free_list_.reserve(num_blocks);
  // Highest id at the bottom so that low ids are handed out first.
  for (int64_t id = num_blocks - 1; id >= 0; --id) free_list_.push_back(static_cast<BlockId>(id));
}

std::optional<std::vector<BlockId>> BlockPool::Allocate(int64_t count) {
  CHECK_GE(count, 0);
  if (count > num_free()) return std::nullopt;
  std::vector<BlockId> ids(free_list_.end() - count, free_list_.end());
  free_list_.resize(free_list_.size() - count);
  for (BlockId id : ids) ref_counts_[id] = 1;
  return ids;
}

void BlockPool::AddRef(BlockId id) {
  CHECK_GT(ref_count(id), 0);
  ++ref_counts_[id];
}

void BlockPool::Release(absl::Span<const BlockId> ids) {
  for (BlockId id : ids) {
    CHECK_GT(ref_count(id), 0);
    if (--ref_counts_[id] == 0) free_list_.push_back(id);
  }
}

int32_t BlockPool::ref_count(BlockId id) const {
  CHECK_GE(id, 0);
  CHECK_LT(static_cast<int64_t>(id), num_blocks());
  return ref_counts_[id];
}

}  // namespace strata::cache
