#include "cache/kv_cache_manager.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::cache {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

constexpr int64_t kBlockSize = 4;
const ModelFingerprint kModel{0x1234, 0x5678};

KvCacheSpec Spec() {
  return KvCacheSpec{.num_layers = 2,
                             .num_kv_heads = 2,
                             .head_dim = 8,
                             .block_size = kBlockSize,
                             .dtype = DType::kBF16};
}

std::vector<TokenId> Tokens(int n, TokenId first) {
  std::vector<TokenId> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(first + i);
  return tokens;
}

// Admits `seq` with its cached prefix, gives it blocks for all of `tokens`,
// and commits them as if a step had computed them. Returns the table.
BlockTable RunToEnd(KvCacheManager& cache, SeqId seq, const std::vector<TokenId>& tokens,
                    const CacheSalt& salt = CacheSalt()) {
  CachedPrefix prefix = cache.FindCachedPrefix(salt, tokens);
  int64_t n = static_cast<int64_t>(tokens.size());
  std::optional<BlockTable> table = cache.AddSequence(seq, salt, prefix, n, n);
  EXPECT_TRUE(table.has_value());
  if (!table) return {};
  cache.CommitFullBlocks(seq, tokens, n);
  return *table;
}

TEST(KvCacheManagerTest, IndexedKeysAreTheSequencesRegisteredBlocksInOrder) {
  KvCacheManager cache(Spec(), 16, kModel);
  const std::vector<TokenId> tokens = Tokens(10, 1);
  const BlockTable table = RunToEnd(cache, 1, tokens);
  const std::vector<BlockKey> keys = cache.IndexedKeys(1);
  ASSERT_EQ(keys.size(), 2u);  // the partial third block is not registered
  EXPECT_EQ(cache.IndexedBlock(keys[0]), table[0]);
  EXPECT_EQ(cache.IndexedBlock(keys[1]), table[1]);
  // A second sequence that recomputes the same blocks keeps its copies
  // unregistered: they are not its indexed keys.
  std::optional<BlockTable> copy = cache.AddSequence(2, "", CachedPrefix{}, 10, 10);
  ASSERT_TRUE(copy.has_value());
  cache.CommitFullBlocks(2, tokens, 10);
  EXPECT_TRUE(cache.IndexedKeys(2).empty());
  EXPECT_TRUE(cache.IndexedKeys(99).empty());
}

TEST(KvCacheManagerTest, SequencesSharingAPrefixShareItsBlocks) {
  KvCacheManager cache(Spec(), 16, kModel);
  std::vector<TokenId> first = Tokens(10, 1);
  BlockTable a = RunToEnd(cache, 1, first);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(cache.num_indexed_blocks(), 2);  // the partial third block is not shared

  std::vector<TokenId> second = Tokens(8, 1);  // same two blocks, then another tail
  second.insert(second.end(), {90, 91, 92, 93, 94});
  CachedPrefix prefix = cache.FindCachedPrefix("", second);
  EXPECT_THAT(prefix.blocks, ElementsAre(a[0], a[1]));
  EXPECT_EQ(prefix.num_tokens, 8);
  std::optional<BlockTable> b = cache.AddSequence(2, "", prefix, 13, 13);
  ASSERT_TRUE(b.has_value());
  ASSERT_EQ(b->size(), 4u);
  EXPECT_EQ((*b)[0], a[0]);
  EXPECT_EQ((*b)[1], a[1]);
  EXPECT_NE((*b)[2], a[2]);
  EXPECT_EQ(cache.pool().ref_count(a[0]), 2);
  EXPECT_EQ(cache.pool().ref_count(a[2]), 1);
  EXPECT_TRUE(cache.Validate().ok()) << cache.Validate();
}

TEST(KvCacheManagerTest, FreedBlocksStayCachedAndAreFoundAgain) {
  KvCacheManager cache(Spec(), 16, kModel);
  std::vector<TokenId> tokens = Tokens(13, 1);
  BlockTable table = RunToEnd(cache, 1, tokens);
  cache.Free(1);
  EXPECT_FALSE(cache.HasSequence(1));
  EXPECT_EQ(cache.num_cached_blocks(), 3);
  EXPECT_EQ(cache.num_available_blocks(), 16);
  CachedPrefix prefix = cache.FindCachedPrefix("", tokens);
  EXPECT_THAT(prefix.blocks, ElementsAre(table[0], table[1], table[2]));
  std::optional<BlockTable> again = cache.AddSequence(2, "", prefix, 13, 13);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(cache.pool().state(table[0]), BlockState::kInUse);
  EXPECT_EQ(cache.num_cached_blocks(), 0);
  EXPECT_TRUE(cache.Validate().ok()) << cache.Validate();
}

TEST(KvCacheManagerTest, DivergenceMidBlockKeepsOnlyTheWholeBlocksBefore) {
  KvCacheManager cache(Spec(), 16, kModel);
  BlockTable table = RunToEnd(cache, 1, Tokens(12, 1));
  std::vector<TokenId> query = Tokens(14, 1);
  query[6] = 99;  // inside block 1
  CachedPrefix prefix = cache.FindCachedPrefix("", query);
  EXPECT_THAT(prefix.blocks, ElementsAre(table[0]));
  EXPECT_EQ(prefix.num_tokens, 4);
}

TEST(KvCacheManagerTest, AtLeastTheLastTokenIsLeftToCompute) {
  KvCacheManager cache(Spec(), 16, kModel);
  BlockTable table = RunToEnd(cache, 1, Tokens(12, 1));  // three full blocks cached
  // An exact match of whole blocks reuses all but the last block.
  EXPECT_EQ(cache.FindCachedPrefix("", Tokens(12, 1)).num_tokens, 8);
  EXPECT_EQ(cache.FindCachedPrefix("", Tokens(8, 1)).num_tokens, 4);
  EXPECT_EQ(cache.FindCachedPrefix("", Tokens(13, 1)).num_tokens, 12);
  EXPECT_EQ(cache.FindCachedPrefix("", Tokens(4, 1)).num_tokens, 0);
  EXPECT_EQ(cache.FindCachedPrefix("", {}).num_tokens, 0);
}

TEST(KvCacheManagerTest, RecomputedDuplicateBlockStaysUnregistered) {
  KvCacheManager cache(Spec(), 16, kModel);
  std::vector<TokenId> tokens = Tokens(8, 1);
  BlockTable a = RunToEnd(cache, 1, tokens);
  BlockTable b = RunToEnd(cache, 2, tokens);  // reuses block 0, recomputes block 1
  EXPECT_EQ(b[0], a[0]);
  ASSERT_NE(b[1], a[1]);
  EXPECT_FALSE(cache.pool().key(b[1]).has_value());
  cache.Free(2);
  EXPECT_EQ(cache.pool().state(b[1]), BlockState::kFree);
  EXPECT_TRUE(cache.Validate().ok()) << cache.Validate();
}

TEST(KvCacheManagerTest, SaltsAndModelsDoNotShare) {
  KvCacheManager cache(Spec(), 16, kModel);
  std::vector<TokenId> tokens = Tokens(9, 1);
  RunToEnd(cache, 1, tokens, "tenant-a");
  EXPECT_EQ(cache.FindCachedPrefix("tenant-a", tokens).num_tokens, 8);
  EXPECT_EQ(cache.FindCachedPrefix("tenant-b", tokens).num_tokens, 0);
  EXPECT_EQ(cache.FindCachedPrefix("", tokens).num_tokens, 0);
  KvCacheManager other_model(Spec(), 16, ModelFingerprint{0x1234, 0x5679});
  RunToEnd(other_model, 1, tokens, "tenant-a");
  // Same salt, same tokens, another model: other keys.
  EXPECT_NE(cache.pool().key(cache.block_table(1)[0]),
            other_model.pool().key(other_model.block_table(1)[0]));
}

TEST(KvCacheManagerTest, PublicBlocksAreSharedAcrossSaltsAndNothingAfterThem) {
  KvCacheManager cache(Spec(), 32, kModel);
  const std::vector<TokenId> tokens = Tokens(17, 1);  // four full blocks before the last token
  RunToEnd(cache, 1, tokens, CacheSalt("tenant-a", 2));
  // Another tenant declaring the same two public blocks shares them, and
  // only them.
  EXPECT_EQ(cache.FindCachedPrefix(CacheSalt("tenant-b", 2), tokens).num_tokens, 8);
  EXPECT_EQ(cache.FindCachedPrefix(CacheSalt("tenant-a", 2), tokens).num_tokens, 16);
  // The public chain is the unsalted one.
  EXPECT_EQ(cache.FindCachedPrefix("", tokens).num_tokens, 8);
  // Declaring fewer public blocks keys the salt in earlier: a different chain
  // from there on; declaring none is the plain salted chain.
  EXPECT_EQ(cache.FindCachedPrefix(CacheSalt("tenant-b", 1), tokens).num_tokens, 4);
  EXPECT_EQ(cache.FindCachedPrefix(CacheSalt("tenant-a", 1), tokens).num_tokens, 4);
  EXPECT_EQ(cache.FindCachedPrefix("tenant-a", tokens).num_tokens, 0);
  // Tenant b's own blocks after the public ones differ from a's.
  RunToEnd(cache, 2, tokens, CacheSalt("tenant-b", 2));
  const BlockTable& a = cache.block_table(1);
  const BlockTable& b = cache.block_table(2);
  EXPECT_EQ(b[0], a[0]);
  EXPECT_EQ(b[1], a[1]);
  EXPECT_NE(cache.pool().key(b[2]), std::nullopt);
  EXPECT_NE(cache.pool().key(b[2]), cache.pool().key(a[2]));
  EXPECT_NE(cache.pool().key(b[3]), cache.pool().key(a[3]));
  // The keys continue the same chain in the lower tiers (KeysAfter), and a
  // chain without a tenant salt ignores public_blocks.
  CachedPrefix public_only = cache.FindCachedPrefix("", tokens);
  std::vector<BlockKey> after = cache.KeysAfter(CacheSalt("tenant-a", 2), tokens, public_only);
  ASSERT_EQ(after.size(), 2u);
  EXPECT_EQ(after[0], *cache.pool().key(a[2]));
  EXPECT_EQ(after[1], *cache.pool().key(a[3]));
  std::vector<BlockKey> plain;
  std::vector<BlockKey> with_public;
  cache.ExtendKeys("", tokens, 4, plain);
  cache.ExtendKeys(CacheSalt("", 3), tokens, 4, with_public);
  EXPECT_EQ(plain, with_public);
  EXPECT_TRUE(cache.Validate().ok()) << cache.Validate();
}

TEST(KvCacheManagerTest, KeysHashedOnceFindTheSamePrefixAsTokens) {
  KvCacheManager cache(Spec(), 32, kModel);
  const std::vector<TokenId> tokens = Tokens(13, 1);
  RunToEnd(cache, 1, tokens, CacheSalt("t", 1));
  std::vector<BlockKey> keys;
  cache.ExtendKeys(CacheSalt("t", 1), tokens, 2, keys);  // two blocks first...
  ASSERT_EQ(keys.size(), 2u);
  cache.ExtendKeys(CacheSalt("t", 1), tokens, 10, keys);  // ...then as many as there are
  ASSERT_EQ(keys.size(), 3u);
  const int64_t lookups = cache.num_index_lookups();
  CachedPrefix by_keys = cache.FindCachedPrefixByKeys(keys);
  EXPECT_EQ(by_keys.blocks, cache.FindCachedPrefix(CacheSalt("t", 1), Tokens(14, 1)).blocks);
  EXPECT_EQ(by_keys.num_tokens, 12);
  EXPECT_GT(cache.num_index_lookups(), lookups);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(cache.IndexedBlock(keys[i]), std::optional<BlockId>(cache.block_table(1)[i]));
  }
  EXPECT_EQ(cache.IndexedBlock(BlockKey{5, 5}), std::nullopt);
}

TEST(KvCacheManagerTest, SequenceAdmittedWithoutAQueryCountsNoStatistics) {
  KvCacheManager cache(Spec(), 16, kModel);
  const std::vector<TokenId> tokens = Tokens(9, 1);
  RunToEnd(cache, 1, tokens);
  const CacheStats before = cache.stats();
  CachedPrefix prefix = cache.FindCachedPrefix("", tokens);
  ASSERT_EQ(prefix.num_tokens, 8);
  ASSERT_TRUE(cache.AddSequence(2, "", prefix, 12, /*num_query_tokens=*/0).has_value());
  EXPECT_EQ(cache.stats().queries, before.queries);
  EXPECT_EQ(cache.stats().hit_tokens, before.hit_tokens);
  EXPECT_EQ(cache.stats().miss_tokens, before.miss_tokens);
  cache.Free(2);
  EXPECT_TRUE(cache.Validate().ok()) << cache.Validate();
}

TEST(KvCacheManagerTest, CountAvailableBelowLeavesOutHeldBlocks) {
  KvCacheManager cache(Spec(), 16, kModel);
  RunToEnd(cache, 1, Tokens(9, 1));  // two full blocks, one partial
  RunToEnd(cache, 2, Tokens(9, 50));
  cache.SetPriority(2, Priority::kSessionPinned);
  EXPECT_EQ(cache.num_free_blocks(), 10);
  cache.Free(1);
  cache.Free(2);
  // 12 free (the partial blocks came back), 2 plain cached, 2 pinned cached.
  EXPECT_EQ(cache.num_free_blocks(), 12);
  EXPECT_EQ(cache.CountAvailableBelow(Priority::kWorkflowSoon), 14);
  EXPECT_EQ(cache.CountAvailableBelow(Priority::kNormal), 12);
  EXPECT_EQ(cache.CountAvailableBelow(Priority::kSessionPinned), 14);
  EXPECT_EQ(cache.num_available_blocks(), 16);
}

TEST(KvCacheManagerTest, AllocateFailsWithoutSideEffectsWhenAllBlocksAreInUse) {
  KvCacheManager cache(Spec(), 4, kModel);
  std::vector<TokenId> tokens = Tokens(16, 1);
  RunToEnd(cache, 1, tokens);
  EXPECT_FALSE(cache.Allocate(1, 17).has_value());
  EXPECT_EQ(cache.block_table(1).size(), 4u);
  EXPECT_FALSE(cache.AddSequence(2, "", CachedPrefix{}, 1, 1).has_value());
  EXPECT_FALSE(cache.HasSequence(2));
  // Even a prefix hit needs a block of its own for the tail.
  CachedPrefix prefix = cache.FindCachedPrefix("", tokens);
  EXPECT_EQ(prefix.num_tokens, 12);
  EXPECT_FALSE(cache.AddSequence(3, "", prefix, 16, 16).has_value());
  EXPECT_EQ(cache.pool().ref_count(prefix.blocks[0]), 1);
  EXPECT_EQ(cache.stats().queries, 1);  // refused admissions are not counted
  EXPECT_EQ(cache.stats().evicted_blocks, 0);
  EXPECT_TRUE(cache.Validate().ok()) << cache.Validate();
}

TEST(KvCacheManagerTest, EvictionMakesRoomAndIsReportedTailFirst) {
  KvCacheManager cache(Spec(), 4, kModel);
  std::vector<EvictedBlock> evicted;
  cache.set_eviction_listener([&](const EvictedBlock& block) { evicted.push_back(block); });
  std::vector<TokenId> tokens = Tokens(16, 1);
  BlockTable old_table = RunToEnd(cache, 1, tokens);
  std::vector<BlockKey> keys;
  for (BlockId id : old_table) keys.push_back(*cache.pool().key(id));
  cache.Free(1);
  ASSERT_TRUE(cache.AddSequence(2, "", CachedPrefix{}, 6, 6).has_value());
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(evicted[0].id, old_table[3]);  // the chain's tail goes first
  EXPECT_EQ(evicted[0].key, keys[3]);
  EXPECT_EQ(evicted[1].id, old_table[2]);
  EXPECT_EQ(cache.stats().evicted_blocks, 2);
  // The surviving head of the chain still hits.
  EXPECT_EQ(cache.FindCachedPrefix("", tokens).num_tokens, 8);
  EXPECT_TRUE(cache.Validate().ok()) << cache.Validate();
}

TEST(KvCacheManagerTest, PinnedPrefixOutlivesLessRecentlyUsedUnpinnedOnes) {
  KvCacheManager cache(Spec(), 6, kModel);
  std::vector<TokenId> pinned = Tokens(9, 1);
  std::vector<TokenId> other = Tokens(9, 100);
  RunToEnd(cache, 1, pinned);
  cache.SetPriority(SeqId{1}, Priority::kSessionPinned);
  cache.Free(1);
  RunToEnd(cache, 2, other);
  cache.Free(2);  // `other` is now the most recently used
  ASSERT_TRUE(cache.AddSequence(3, "", CachedPrefix{}, 16, 16).has_value());  // evicts two
  EXPECT_EQ(cache.FindCachedPrefix("", pinned).num_tokens, 8);
  EXPECT_EQ(cache.FindCachedPrefix("", other).num_tokens, 0);
}

TEST(KvCacheManagerTest, CountsQueriesHitsTransfersAndBytes) {
  KvCacheManager cache(Spec(), 16, kModel);
  RunToEnd(cache, 1, Tokens(10, 1));
  RunToEnd(cache, 2, Tokens(11, 1));
  const CacheStats& stats = cache.stats();
  EXPECT_EQ(stats.queries, 2);
  EXPECT_EQ(stats.query_tokens, 21);
  EXPECT_EQ(stats.hit_tokens[static_cast<int>(Tier::kDevice)], 8);
  EXPECT_EQ(stats.miss_tokens, 13);
  cache.RecordTransfer(Tier::kDevice, Tier::kHost, 3);
  cache.RecordTransfer(Tier::kHost, Tier::kDevice, 1);
  cache.RecordTierHit(Tier::kHost, 4);
  EXPECT_EQ(cache.bytes_per_block(), 2 * 2 * 2 * kBlockSize * 8 * 2);
  EXPECT_EQ(stats.demoted_blocks, 3);
  EXPECT_EQ(stats.promoted_blocks, 1);
  EXPECT_EQ(stats.bytes_moved[0][1], 3 * cache.bytes_per_block());
  EXPECT_EQ(stats.bytes_moved[1][0], cache.bytes_per_block());
  EXPECT_EQ(stats.hit_tokens[static_cast<int>(Tier::kHost)], 4);
  EXPECT_EQ(stats.miss_tokens, 9);
}

// Longest-prefix match is a walk of at most prompt_blocks lookups, however
// many sequences are cached (the index is a hash map, not a scan).
TEST(KvCacheManagerTest, LookupCostIsBoundedByPromptBlocksNotCacheSize) {
  constexpr int kSequences = 3000;
  KvCacheManager cache(Spec(), kSequences * 4, kModel);
  std::mt19937 rng(7);
  std::vector<std::vector<TokenId>> prompts;
  for (int s = 0; s < kSequences; ++s) {
    std::vector<TokenId> tokens = Tokens(8, 1);  // a shared system prompt, 2 blocks
    for (int i = 0; i < 8; ++i) tokens.push_back(static_cast<TokenId>(rng() % 1000));
    RunToEnd(cache, s, tokens);
    cache.Free(s);
    prompts.push_back(std::move(tokens));
  }
  EXPECT_GT(cache.num_indexed_blocks(), kSequences);
  for (int s = 0; s < kSequences; s += 97) {
    std::vector<TokenId> query = prompts[s];
    query.push_back(5);  // 17 tokens: 4 full blocks may hit
    int64_t before = cache.num_index_lookups();
    EXPECT_EQ(cache.FindCachedPrefix("", query).num_tokens, 16);
    EXPECT_EQ(cache.num_index_lookups() - before, 4);
    query[9] = 5000;  // miss in block 2: the walk stops there
    before = cache.num_index_lookups();
    EXPECT_EQ(cache.FindCachedPrefix("", query).num_tokens, 8);
    EXPECT_EQ(cache.num_index_lookups() - before, 3);
  }
}

// Random request streams that share prefixes in different ways (same
// document, other salt, divergence mid-block, decode growth, preemption).
// A simulated arena records what each block holds: the salt and every token
// up to the block's end, since K/V depend on the whole prefix. Checks after
// every operation: the manager's own Validate (free/cached/in-use lists,
// index keys, references = holders), the test's independent count of
// holders, that a hit returns blocks holding exactly the queried prefix, and
// that no sequence ever writes a block another sequence holds.
class KvCacheManagerPropertyTest : public ::testing::Test {
 protected:
  struct Live {
    std::string salt;
    std::vector<TokenId> tokens;
    int64_t computed = 0;
    BlockTable table;
  };
  using Content = std::pair<std::string, std::vector<TokenId>>;

  KvCacheManagerPropertyTest() : cache_(Spec(), kBlocks, kModel), arena_(kBlocks), rng_(2024) {
    for (auto& doc : docs_) {
      for (int i = 0; i < 40; ++i) doc.push_back(static_cast<TokenId>(Uniform(0, 20)));
    }
  }

  int64_t Uniform(int64_t lo, int64_t hi) {  // inclusive
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  // Writes positions [computed, computed + n) of `seq` into its blocks.
  void Compute(SeqId id, Live& seq, int64_t n) {
    for (int64_t pos = seq.computed; pos < seq.computed + n; ++pos) {
      BlockId block = seq.table[pos / kBlockSize];
      ASSERT_EQ(cache_.pool().ref_count(block), 1) << "writes a shared block " << block;
      arena_[block] =
          Content(seq.salt, std::vector<TokenId>(seq.tokens.begin(), seq.tokens.begin() + pos + 1));
    }
    seq.computed += n;
    cache_.CommitFullBlocks(id, seq.tokens, seq.computed);
  }

  void Admit() {
    Live seq;
    seq.salt = Uniform(0, 3) == 0 ? "tenant" : "";
    const std::vector<TokenId>& doc = docs_[Uniform(0, 2)];
    seq.tokens.assign(doc.begin(), doc.begin() + Uniform(1, 40));
    for (int64_t i = Uniform(0, 6); i > 0; --i)
      seq.tokens.push_back(static_cast<TokenId>(Uniform(0, 20)));
    CachedPrefix prefix = cache_.FindCachedPrefix(seq.salt, seq.tokens);
    ASSERT_LT(prefix.num_tokens, static_cast<int64_t>(seq.tokens.size()));
    for (size_t i = 0; i < prefix.blocks.size(); ++i) {
      Content expected(seq.salt, std::vector<TokenId>(seq.tokens.begin(),
                                                      seq.tokens.begin() + (i + 1) * kBlockSize));
      ASSERT_EQ(arena_[prefix.blocks[i]], expected) << "hit on block " << prefix.blocks[i];
    }
    hit_tokens_ += prefix.num_tokens;
    int64_t chunk = Uniform(1, static_cast<int64_t>(seq.tokens.size()) - prefix.num_tokens);
    int64_t n = static_cast<int64_t>(seq.tokens.size());
    std::optional<BlockTable> table =
        cache_.AddSequence(next_id_, seq.salt, prefix, prefix.num_tokens + chunk, n);
    if (!table) return PreemptOne();
    seq.table = *table;
    seq.computed = prefix.num_tokens;
    SeqId id = next_id_++;
    Compute(id, live_[id] = std::move(seq), chunk);
  }

  void Step() {
    auto it = std::next(live_.begin(), Uniform(0, static_cast<int64_t>(live_.size()) - 1));
    Live& seq = it->second;
    int64_t pending = static_cast<int64_t>(seq.tokens.size()) - seq.computed;
    if (pending == 0) {  // decode: the sampled token joins the sequence
      seq.tokens.push_back(static_cast<TokenId>(Uniform(0, 20)));
      pending = 1;
    }
    int64_t n = Uniform(1, std::min<int64_t>(pending, 8));
    std::optional<BlockTable> table = cache_.Allocate(it->first, seq.computed + n);
    if (!table) return PreemptOne();
    seq.table = *table;
    Compute(it->first, seq, n);
  }

  void PreemptOne() {
    if (live_.empty()) return;
    auto it = std::next(live_.begin(), Uniform(0, static_cast<int64_t>(live_.size()) - 1));
    cache_.Free(it->first);
    live_.erase(it);
  }

  void CheckInvariants() {
    ASSERT_TRUE(cache_.Validate().ok()) << cache_.Validate();
    std::vector<int32_t> holders(kBlocks, 0);
    for (const auto& [id, seq] : live_) {
      ASSERT_EQ(cache_.block_table(id), seq.table);
      for (BlockId block : seq.table) ++holders[block];
    }
    for (BlockId block = 0; block < kBlocks; ++block) {
      ASSERT_EQ(cache_.pool().ref_count(block), holders[block]) << "block " << block;
      ASSERT_EQ(holders[block] == 0, cache_.pool().state(block) != BlockState::kInUse);
    }
  }

  static constexpr int64_t kBlocks = 48;
  KvCacheManager cache_;
  std::vector<std::optional<Content>> arena_;
  std::mt19937 rng_;
  std::vector<TokenId> docs_[3];
  std::map<SeqId, Live> live_;
  SeqId next_id_ = 0;
  int64_t hit_tokens_ = 0;
};

TEST_F(KvCacheManagerPropertyTest, RandomStreamsKeepEveryInvariant) {
  for (int op = 0; op < 20000; ++op) {
    int64_t choice = Uniform(0, 9);
    if (choice < 3 && live_.size() < 8) {
      Admit();
    } else if (choice < 9 && !live_.empty()) {
      Step();
    } else {
      PreemptOne();
    }
    if (HasFatalFailure()) return;
    CheckInvariants();
    if (HasFatalFailure()) return;
  }
  EXPECT_GT(hit_tokens_, 1000);
  EXPECT_GT(cache_.stats().evicted_blocks, 100);
  while (!live_.empty()) PreemptOne();
  CheckInvariants();
  EXPECT_EQ(cache_.num_available_blocks(), kBlocks);
}

}  // namespace
}  // namespace strata::cache
