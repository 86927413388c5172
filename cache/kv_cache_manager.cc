#include "cache/kv_cache_manager.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace strata::cache {
KvCacheManager::KvCacheManager(const KvCacheSpec& spec, int64_t num_device_blocks,
                               const ModelFingerprint& model)
    : block_size_(spec.block_size),
      bytes_per_block_(spec.BytesPerBlock()),
      model_(model),
      pool_(num_device_blocks) {
  CHECK_GT(block_size_, 0);
  index_.reserve(num_device_blocks);
}

CachedPrefix KvCacheManager::FindCachedPrefix(const CacheSalt& salt,
                                              absl::Span<const TokenId> tokens) const {
  ++num_prefix_lookups_;
  CachedPrefix prefix;
  if (tokens.empty()) return prefix;
  // (n - 1) / block_size full blocks end before the last token (see header).
  const int64_t max_blocks = (static_cast<int64_t>(tokens.size()) - 1) / block_size_;
  BlockKey key;
  for (int64_t i = 0; i < max_blocks; ++i) {
    key =
        HashBlock(ChainParent(model_, salt, i, key), tokens.subspan(i * block_size_, block_size_));
    ++num_index_lookups_;
    auto it = index_.find(key);
    if (it == index_.end()) break;
    prefix.blocks.push_back(it->second);
  }
  prefix.num_tokens = static_cast<int64_t>(prefix.blocks.size()) * block_size_;
  return prefix;
}

CachedPrefix KvCacheManager::FindCachedPrefixByKeys(absl::Span<const BlockKey> keys) const {
  ++num_prefix_lookups_;
  CachedPrefix prefix;
  for (const BlockKey& key : keys) {
    ++num_index_lookups_;
    auto it = index_.find(key);
    if (it == index_.end()) break;
    prefix.blocks.push_back(it->second);
  }
  prefix.num_tokens = static_cast<int64_t>(prefix.blocks.size()) * block_size_;
  return prefix;
}

void KvCacheManager::ExtendKeys(const CacheSalt& salt, absl::Span<const TokenId> tokens,
                                int64_t num_blocks, std::vector<BlockKey>& keys) const {
  num_blocks = std::min(num_blocks, static_cast<int64_t>(tokens.size()) / block_size_);
  BlockKey key = keys.empty() ? BlockKey{} : keys.back();
  for (int64_t i = static_cast<int64_t>(keys.size()); i < num_blocks; ++i) {
    key =
        HashBlock(ChainParent(model_, salt, i, key), tokens.subspan(i * block_size_, block_size_));
    keys.push_back(key);
  }
}

std::vector<BlockKey> KvCacheManager::KeysAfter(const CacheSalt& salt,
                                                absl::Span<const TokenId> tokens,
                                                const CachedPrefix& prefix) const {
  std::vector<BlockKey> keys;
  if (tokens.empty()) return keys;
  const int64_t max_blocks = (static_cast<int64_t>(tokens.size()) - 1) / block_size_;
  BlockKey key;
  if (!prefix.blocks.empty()) {
    std::optional<BlockKey> last = pool_.key(prefix.blocks.back());
    CHECK(last.has_value());  // stale prefix
    key = *last;
  }
  for (int64_t i = static_cast<int64_t>(prefix.blocks.size()); i < max_blocks; ++i) {
    key =
        HashBlock(ChainParent(model_, salt, i, key), tokens.subspan(i * block_size_, block_size_));
    keys.push_back(key);
  }
  return keys;
}

std::optional<BlockTable> KvCacheManager::AddSequence(SeqId seq, const CacheSalt& salt,
                                                      const CachedPrefix& prefix,
                                                      int64_t num_tokens,
                                                      int64_t num_query_tokens) {
  CHECK(!sequences_.contains(seq));
  CHECK_EQ(prefix.num_tokens, static_cast<int64_t>(prefix.blocks.size()) * block_size_);
  CHECK_GE(num_tokens, prefix.num_tokens);
  CHECK(num_query_tokens == 0 || num_query_tokens >= prefix.num_tokens);
  int64_t reclaimed = 0;  // prefix blocks that stop being evictable once shared
  for (BlockId id : prefix.blocks) {
    std::optional<BlockKey> key = pool_.key(id);
    CHECK(key.has_value());  // stale prefix: the block was evicted since the lookup
    auto it = index_.find(*key);
    CHECK(it != index_.end() && it->second == id);
    if (pool_.state(id) == BlockState::kCached) ++reclaimed;
  }
  const int64_t needed =
      BlocksFor(num_tokens, block_size_) - static_cast<int64_t>(prefix.blocks.size());
  if (needed > pool_.num_available() - reclaimed) return std::nullopt;

  // References first, so that the allocation below cannot evict the prefix.
  for (BlockId id : prefix.blocks) pool_.Acquire(id);
  Sequence sequence;
  sequence.blocks = prefix.blocks;
  sequence.num_committed = static_cast<int64_t>(prefix.blocks.size());
  if (!prefix.blocks.empty()) sequence.last_key = *pool_.key(prefix.blocks.back());
  sequence.tenant = std::string(salt.tenant);
  sequence.public_blocks = salt.public_blocks;
  CHECK(AllocateInto(sequence.blocks, needed));

  if (num_query_tokens > 0) {  // 0: not a query, no statistics
    ++stats_.queries;
    stats_.query_tokens += num_query_tokens;
    stats_.hit_tokens[static_cast<int>(Tier::kDevice)] += prefix.num_tokens;
    stats_.miss_tokens += num_query_tokens - prefix.num_tokens;
  }
  BlockTable table = sequence.blocks;
  sequences_.emplace(seq, std::move(sequence));
  return table;
}

std::optional<BlockTable> KvCacheManager::Allocate(SeqId seq, int64_t num_tokens) {
  Sequence& sequence = GetSequence(seq);
  int64_t needed =
      BlocksFor(num_tokens, block_size_) - static_cast<int64_t>(sequence.blocks.size());
  if (needed > 0 && !AllocateInto(sequence.blocks, needed)) return std::nullopt;
  return sequence.blocks;
}

bool KvCacheManager::AllocateInto(BlockTable& table, int64_t count) {
  if (count <= 0) return true;
  evicted_scratch_.clear();
  std::optional<std::vector<BlockId>> ids = pool_.Allocate(count, &evicted_scratch_);
  if (!ids) return false;
  for (const EvictedBlock& evicted : evicted_scratch_) {
    auto it = index_.find(evicted.key);
    CHECK(it != index_.end() && it->second == evicted.id);
    index_.erase(it);
    ++stats_.evicted_blocks;
    if (listener_) listener_(evicted);
  }
  table.insert(table.end(), ids->begin(), ids->end());
  return true;
}

void KvCacheManager::CommitFullBlocks(SeqId seq, absl::Span<const TokenId> tokens,
                                      int64_t num_computed) {
  Sequence& sequence = GetSequence(seq);
  CHECK_LE(num_computed, static_cast<int64_t>(tokens.size()));
  const int64_t full =
      std::min(num_computed / block_size_, static_cast<int64_t>(sequence.blocks.size()));
  const CacheSalt salt = sequence.salt();
  for (int64_t i = sequence.num_committed; i < full; ++i) {
    BlockKey key = HashBlock(ChainParent(model_, salt, i, sequence.last_key),
                             tokens.subspan(i * block_size_, block_size_));
    BlockId id = sequence.blocks[i];
    // A key already indexed means another sequence computed the same block
    // first: keep that one, leave this copy unregistered (freed, not cached).
    if (index_.try_emplace(key, id).second) pool_.SetKey(id, key);
    sequence.last_key = key;
    sequence.num_committed = i + 1;
  }
}

std::vector<BlockKey> KvCacheManager::ChunkKeys(const CacheSalt& salt,
                                                absl::Span<const TokenId> chunk) const {
  std::vector<BlockKey> keys;
  const auto full = static_cast<int64_t>(chunk.size()) / block_size_;
  ExtendKeys(salt, chunk, full, keys);
  if (full * block_size_ < static_cast<int64_t>(chunk.size())) {
    const BlockKey previous = keys.empty() ? BlockKey{} : keys.back();
    keys.push_back(ChunkTailKey(ChainParent(model_, salt, full, previous),
                                chunk.subspan(static_cast<size_t>(full * block_size_))));
  }
  return keys;
}

std::optional<std::vector<BlockId>> KvCacheManager::FindChunk(
    const CacheSalt& salt, absl::Span<const TokenId> chunk) const {
  return FindChunkByKeys(ChunkKeys(salt, chunk));
}

std::optional<std::vector<BlockId>> KvCacheManager::FindChunkByKeys(
    absl::Span<const BlockKey> keys) const {
  std::vector<BlockId> blocks;
  for (const BlockKey& key : keys) {
    ++num_index_lookups_;
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    blocks.push_back(it->second);
  }
  return blocks;
}

void KvCacheManager::CommitChunkTail(SeqId seq, absl::Span<const TokenId> tokens) {
  Sequence& sequence = GetSequence(seq);
  const auto full = static_cast<int64_t>(tokens.size()) / block_size_;
  if (full * block_size_ == static_cast<int64_t>(tokens.size())) return;
  CHECK_EQ(sequence.num_committed, full);  // CommitFullBlocks ran over the whole chunk
  CHECK_GT(static_cast<int64_t>(sequence.blocks.size()), full);
  const BlockKey key = ChunkTailKey(ChainParent(model_, sequence.salt(), full, sequence.last_key),
                                    tokens.subspan(static_cast<size_t>(full * block_size_)));
  const BlockId id = sequence.blocks[static_cast<size_t>(full)];
  if (index_.try_emplace(key, id).second) pool_.SetKey(id, key);
}

void KvCacheManager::Free(SeqId seq) {
  auto it = sequences_.find(seq);
  if (it == sequences_.end()) return;
  // Tail first: the pool evicts the earliest released first, and a chain's
  // later blocks are worthless once their parents are gone.
  std::vector<BlockId> reversed(it->second.blocks.rbegin(), it->second.blocks.rend());
  pool_.Release(reversed);
  sequences_.erase(it);
}

void KvCacheManager::SetPriority(SeqId seq, Priority priority) {
  SetPriority(GetSequence(seq).blocks, priority);
}

void KvCacheManager::SetPriority(absl::Span<const BlockId> blocks, Priority priority) {
  for (BlockId id : blocks) pool_.SetPriority(id, priority);
}

void KvCacheManager::RecordTransfer(Tier from, Tier to, int64_t num_blocks) {
  CHECK_GE(num_blocks, 0);
  CHECK(from != to);
  if (static_cast<int>(to) > static_cast<int>(from)) {
    stats_.demoted_blocks += num_blocks;
  } else {
    stats_.promoted_blocks += num_blocks;
  }
  stats_.bytes_moved[static_cast<int>(from)][static_cast<int>(to)] += num_blocks * bytes_per_block_;
}

void KvCacheManager::RecordWriteBehind(int64_t num_blocks) {
  CHECK_GE(num_blocks, 0);
  stats_.written_behind_blocks += num_blocks;
}

void KvCacheManager::RecordTierHit(Tier tier, int64_t num_tokens) {
  CHECK_GE(num_tokens, 0);
  stats_.hit_tokens[static_cast<int>(tier)] += num_tokens;
  stats_.miss_tokens -= num_tokens;  // counted as a miss by the device lookup
}

int64_t KvCacheManager::CountAvailableBelow(Priority priority) const {
  int64_t count = pool_.num_free();
  for (BlockId id = 0; id < pool_.num_blocks(); ++id) {
    if (pool_.state(id) == BlockState::kCached && pool_.priority(id) < priority) ++count;
  }
  return count;
}

std::optional<BlockId> KvCacheManager::IndexedBlock(const BlockKey& key) const {
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::vector<BlockKey> KvCacheManager::IndexedKeys(SeqId seq) const {
  std::vector<BlockKey> keys;
  const auto it = sequences_.find(seq);
  if (it == sequences_.end()) return keys;
  for (BlockId block : it->second.blocks) {
    const std::optional<BlockKey> key = pool_.key(block);
    if (!key.has_value()) continue;
    const auto indexed = index_.find(*key);
    if (indexed != index_.end() && indexed->second == block) keys.push_back(*key);
  }
  return keys;
}

const BlockTable& KvCacheManager::block_table(SeqId seq) const {
  auto it = sequences_.find(seq);
  CHECK(it != sequences_.end());
  return it->second.blocks;
}

KvCacheManager::Sequence& KvCacheManager::GetSequence(SeqId seq) {
  auto it = sequences_.find(seq);
  CHECK(it != sequences_.end());
  return it->second;
}

absl::Status KvCacheManager::Validate() const {
  if (absl::Status pool = pool_.Validate(); !pool.ok()) return pool;
  for (const auto& [key, id] : index_) {
    if (id < 0 || id >= pool_.num_blocks() || pool_.key(id) != key) {
      return absl::InternalError(
          absl::StrCat("index entry ", key.ToHex(), " -> block ", id, " does not hold that key"));
    }
  }
  std::vector<int32_t> holders(pool_.num_blocks(), 0);
  for (const auto& [seq, sequence] : sequences_) {
    for (BlockId id : sequence.blocks) ++holders[id];
  }
  int64_t keyed = 0;
  for (BlockId id = 0; id < pool_.num_blocks(); ++id) {
    if (pool_.key(id)) ++keyed;
    if (pool_.ref_count(id) != holders[id]) {
      return absl::InternalError(absl::StrCat("block ", id, " has ", pool_.ref_count(id),
                                              " references but ", holders[id], " holders"));
    }
  }
  if (keyed != num_indexed_blocks()) {
    return absl::InternalError(
        absl::StrCat(keyed, " keyed blocks but ", num_indexed_blocks(), " index entries"));
  }
  return absl::OkStatus();
}

}  // namespace strata::cache
