// The device tier's KV bookkeeping: each sequence's block table, prefix
// sharing between sequences, and the prefix index that lets a new request
// start from K/V computed for an earlier one.
//
// Prefix index. Every full block a sequence has computed is registered under
// its chained key (cache/block_hash.h) in one flat_hash_map<BlockKey, BlockId>.
// Because a key already commits to its whole prefix, the map is an implicit
// radix tree of block granularity: the longest cached prefix of a prompt is
// found by hashing its blocks in order and looking each up until the first
// miss, i.e. at most prompt_blocks lookups however many sequences are cached,
// with no pointer-linked nodes to maintain or to fragment. The same keys name
// blocks in the host and disk tiers, so the walk continues there (KeysAfter,
// cache/prefix_load.h) and promoted blocks join the index like computed ones.
//
// Salts. Every lookup and sequence names its chain by a CacheSalt
// (cache/block_hash.h): the tenant's salt, and how many leading blocks are
// public (keyed without the salt, so shared by every tenant). Nothing past
// the public blocks is ever shared across salts.
//
// Chunks (CacheBlend). A chunk cached on its own is computed as a prompt of
// its own, so its full blocks are ordinary chain blocks of that prompt (same
// keys, shared with any prompt that starts with it); its partial last block
// is registered under ChunkTailKey by CommitChunkTail. FindChunk finds all of
// them. Blend sequences only read these blocks (through a holder sequence
// that references them); the blended K/V a blend step writes is never
// registered, so it cannot be served as exact.
//
// Partial blocks are never shared by prefix. Only full, computed blocks are registered,
// so a cached prefix is a whole number of blocks and every block a sequence
// writes is its own: no copy-on-write, no BlockMove, ever, for sharing. The
// price is that the tail of a prompt past its last full cached block is
// recomputed (under block_size tokens), which costs less than the copy.
//
// The last-token rule. A hit never covers the whole prompt: at least one token
// is left to compute, because sampling needs the logits of the last position
// and those come only from running it. A prompt that is an exact multiple of
// block_size therefore reuses all but its last block and recomputes that one
// (sharing it and computing only the last token would write into a shared
// block). A sequence that recomputes a block already in the index keeps its
// copy unregistered; the first registration wins.
//
// Eviction. A sequence's blocks stay cached after Free and are evicted only
// when an allocation finds no free block: lowest priority first, least
// recently used within a priority (BlockPool). Blocks in use are never
// evicted. Each eviction is reported to the eviction listener before the
// block is handed out again, so the owner (the scheduler) demotes its K/V to
// the host tier by a move at the front of the plan that reuses the block.
//
// Not thread-safe: owned by the engine thread. Programming errors (unknown
// sequence ids, a stale prefix) CHECK-fail; running out of blocks is nullopt.
#ifndef STRATA_CACHE_KV_CACHE_MANAGER_H_
#define STRATA_CACHE_KV_CACHE_MANAGER_H_

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "cache/block_hash.h"
#include "cache/block_pool.h"
#include "common/kv_cache_spec.h"

namespace strata::cache {

using SeqId = int64_t;  // engine::SequenceId
using BlockTable = std::vector<BlockId>;

enum class Tier : uint8_t { kDevice = 0, kHost = 1, kDisk = 2 };
inline constexpr int kNumTiers = 3;

// The longest cached run of full blocks at the start of a token sequence.
struct CachedPrefix {
  std::vector<BlockId> blocks;  // device blocks, in order
  int64_t num_tokens = 0;       // blocks.size() * block_size
};

// Cumulative counters, for strata_prefix_cache_* and strata_kv_* metrics.
struct CacheStats {
  int64_t queries = 0;                          // sequences admitted through the prefix index
  int64_t query_tokens = 0;                     // tokens those sequences asked for
  std::array<int64_t, kNumTiers> hit_tokens{};  // tokens served, by the tier they came from
  int64_t miss_tokens = 0;                      // query tokens left to compute
  int64_t evicted_blocks = 0;                   // device blocks whose cached content was dropped
  int64_t demoted_blocks = 0;                   // moved to a lower tier (RecordTransfer)
  // Of demoted_blocks, those copied down ahead of their eviction
  // (scheduler/write_behind.h): the device keeps its copy.
  int64_t written_behind_blocks = 0;
  int64_t promoted_blocks = 0;                  // moved to a higher tier
  // Bytes moved between tiers, [from][to].
  std::array<std::array<int64_t, kNumTiers>, kNumTiers> bytes_moved{};
};

// Called once per evicted block, during the Allocate that evicts it.
using EvictionListener = std::function<void(const EvictedBlock&)>;

class KvCacheManager {
 public:
  // `spec` gives block_size and the bytes per block (for the counters).
  KvCacheManager(const KvCacheSpec& spec, int64_t num_device_blocks,
                 const ModelFingerprint& model);

  // Looks up the longest cached prefix of `tokens` under `salt`, never all of
  // it (the last-token rule). Takes no references and changes nothing: the
  // result is valid until the next call that allocates or frees.
  CachedPrefix FindCachedPrefix(const CacheSalt& salt, absl::Span<const TokenId> tokens) const;

  // The same lookup from keys the caller computed with ExtendKeys (the
  // caller applies the last-token rule by the number of keys it passes):
  // a waiting request's keys are hashed once, not at every step.
  CachedPrefix FindCachedPrefixByKeys(absl::Span<const BlockKey> keys) const;

  // Appends to `keys` (the chain keys of `tokens`' first keys->size() full
  // blocks under `salt`) the keys of the following full blocks, up to
  // `num_blocks` in all (at most tokens.size() / block_size).
  void ExtendKeys(const CacheSalt& salt, absl::Span<const TokenId> tokens, int64_t num_blocks,
                  std::vector<BlockKey>& keys) const;

  // The keys of the full blocks after `prefix` (from FindCachedPrefix with
  // the same salt and tokens) up to the last-token limit: what a lower tier
  // may hold of the rest of the prompt. Same chain, same keys in every tier.
  std::vector<BlockKey> KeysAfter(const CacheSalt& salt, absl::Span<const TokenId> tokens,
                                  const CachedPrefix& prefix) const;

  // Admits a new sequence `seq` of `num_query_tokens` tokens: it shares
  // `prefix` (straight from FindCachedPrefix with the same salt) and gets
  // blocks to cover `num_tokens` >= prefix.num_tokens positions. Returns its
  // table; nullopt when that does not fit even after eviction, and then
  // nothing changed (no references, no statistics). num_query_tokens == 0
  // admits it without counting a query (a prefetch, or the cache switched
  // off). The salt is copied. CHECK-fails if `seq` exists or the prefix is
  // stale.
  std::optional<BlockTable> AddSequence(SeqId seq, const CacheSalt& salt,
                                        const CachedPrefix& prefix, int64_t num_tokens,
                                        int64_t num_query_tokens);

  // Grows `seq`'s table to cover `num_tokens` positions, evicting cached
  // blocks if needed. Returns the whole table; nullopt, and nothing changed,
  // when the blocks are not there (the scheduler preempts or waits).
  std::optional<BlockTable> Allocate(SeqId seq, int64_t num_tokens);

  // Registers the full blocks among `seq`'s first `num_computed` positions
  // (whose K/V a step has now written) in the prefix index. `tokens` holds at
  // least the sequence's first num_computed token ids. Idempotent.
  void CommitFullBlocks(SeqId seq, absl::Span<const TokenId> tokens, int64_t num_computed);

  // The keys of `chunk`'s blocks cached on its own under `salt`: the chain
  // keys of its full blocks, then its partial tail's ChunkTailKey if its
  // length is not a multiple of block_size. The same keys in every tier.
  std::vector<BlockKey> ChunkKeys(const CacheSalt& salt, absl::Span<const TokenId> chunk) const;

  // The device blocks of ChunkKeys(salt, chunk), in order; nullopt unless
  // every one is indexed. Takes no references (see AddSequence to hold them).
  std::optional<std::vector<BlockId>> FindChunk(const CacheSalt& salt,
                                                absl::Span<const TokenId> chunk) const;
  // The same from keys the caller hashed once with ChunkKeys.
  std::optional<std::vector<BlockId>> FindChunkByKeys(absl::Span<const BlockKey> keys) const;

  // For a sequence that computed a whole chunk as its prompt (`tokens`, all
  // of them computed and CommitFullBlocks'd): registers its partial last
  // block under the chunk's tail key. No-op for a whole number of blocks;
  // the first registration of a key wins.
  void CommitChunkTail(SeqId seq, absl::Span<const TokenId> tokens);

  // Drops `seq` and its references, tail block first; registered blocks stay
  // cached for later hits until evicted. No-op for an unknown id.
  void Free(SeqId seq);

  // Priorities for eviction: of every block `seq` holds now, or of the given
  // blocks (e.g. a CachedPrefix the scheduler wants kept). Last setter wins
  // on a shared block. Kept after Free until the block is evicted.
  void SetPriority(SeqId seq, Priority priority);
  void SetPriority(absl::Span<const BlockId> blocks, Priority priority);

  // Called for every eviction from now on (replacing any earlier listener);
  // the default drops evicted content. The listener must not call back into
  // the manager.
  void set_eviction_listener(EvictionListener listener) { listener_ = std::move(listener); }

  // For the tier integration: counts a block transfer (demotion when `to` is
  // below `from`) and its bytes; and tokens of an admitted sequence served by
  // a lower tier, which AddSequence had counted as misses.
  void RecordTransfer(Tier from, Tier to, int64_t num_blocks);
  void RecordTierHit(Tier tier, int64_t num_tokens);
  // Of the demotions recorded, `num_blocks` were write-behind copies.
  void RecordWriteBehind(int64_t num_blocks);

  // The device block holding `key`'s content, if indexed.
  std::optional<BlockId> IndexedBlock(const BlockKey& key) const;

  // The keys of `seq`'s blocks that are in the prefix index (registered by
  // it or shared from another), in table order; empty for an unknown id.
  std::vector<BlockKey> IndexedKeys(SeqId seq) const;

  bool HasSequence(SeqId seq) const { return sequences_.contains(seq); }
  int64_t num_sequences() const { return static_cast<int64_t>(sequences_.size()); }
  const BlockTable& block_table(SeqId seq) const;
  const CacheStats& stats() const { return stats_; }
  const BlockPool& pool() const { return pool_; }
  int64_t block_size() const { return block_size_; }
  int64_t bytes_per_block() const { return bytes_per_block_; }
  int64_t num_blocks() const { return pool_.num_blocks(); }
  // Blocks an allocation can take: free, or cached and unreferenced.
  int64_t num_available_blocks() const { return pool_.num_available(); }
  // Blocks an allocation can take without evicting anything.
  int64_t num_free_blocks() const { return pool_.num_free(); }
  // Blocks an allocation can take without evicting any block of `priority`
  // or above: free ones plus cached ones of lower priority (the pool evicts
  // lowest first). O(num_blocks): for occasional decisions such as a
  // prefetch, not for every step.
  int64_t CountAvailableBelow(Priority priority) const;
  int64_t num_cached_blocks() const { return pool_.num_cached(); }
  int64_t num_indexed_blocks() const { return static_cast<int64_t>(index_.size()); }

  // Test hooks: prefix-index probes (one per key) and prefix lookups (one
  // per FindCachedPrefix or FindCachedPrefixByKeys call) made so far.
  int64_t num_index_lookups() const { return num_index_lookups_; }
  int64_t num_prefix_lookups() const { return num_prefix_lookups_; }

  // Checks that the pool is consistent, that every index entry points at a
  // block holding that key and every keyed block is indexed, and that each
  // block's reference count equals the number of tables holding it. O(blocks
  // + table entries); for tests and debugging.
  absl::Status Validate() const;

 private:
  struct Sequence {
    BlockTable blocks;
    int64_t num_committed = 0;  // leading blocks hashed (registered or duplicate)
    BlockKey last_key;          // key of block num_committed - 1 (unset before any)
    std::string tenant;         // the CacheSalt, owned
    int64_t public_blocks = 0;
    CacheSalt salt() const { return CacheSalt(tenant, public_blocks); }
  };

  Sequence& GetSequence(SeqId seq);
  // Allocates `count` blocks into `table`, reporting evictions; false if short.
  bool AllocateInto(BlockTable& table, int64_t count);

  int64_t block_size_;
  int64_t bytes_per_block_;
  ModelFingerprint model_;
  BlockPool pool_;
  absl::flat_hash_map<BlockKey, BlockId> index_;
  absl::flat_hash_map<SeqId, Sequence> sequences_;
  EvictionListener listener_;
  std::vector<EvictedBlock> evicted_scratch_;
  CacheStats stats_;
  mutable int64_t num_index_lookups_ = 0;
  mutable int64_t num_prefix_lookups_ = 0;
};

}  // namespace strata::cache

#endif  // STRATA_CACHE_KV_CACHE_MANAGER_H_
