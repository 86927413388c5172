#include "cache/block_hash.h"

#include <numeric>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace strata::cache {
namespace {

constexpr int64_t kBlockSize = 4;

std::vector<BlockKey> Chain(const BlockKey& root, const std::vector<TokenId>& tokens) {
  std::vector<BlockKey> keys;
  BlockKey parent = root;
  for (size_t i = 0; i + kBlockSize <= tokens.size(); i += kBlockSize) {
    parent = HashBlock(parent, absl::MakeConstSpan(tokens).subspan(i, kBlockSize));
    keys.push_back(parent);
  }
  return keys;
}

std::vector<TokenId> Iota(int n, TokenId first) {
  std::vector<TokenId> tokens(n);
  std::iota(tokens.begin(), tokens.end(), first);
  return tokens;
}

ModelFingerprint SmallModel(std::string_view config, std::vector<std::byte> weight,
                            DType kv_dtype = DType::kBF16,
                            int64_t block_size = 16) {
  ModelFingerprintBuilder builder;
  builder.AddConfig(config);
  std::vector<int64_t> shape = {static_cast<int64_t>(weight.size()) / 2};
  builder.AddTensor("w", DType::kBF16, shape, weight);
  return std::move(builder).Finish(kv_dtype, block_size);
}

// Format-stability check, not a test of XXH3 itself: these values were
// computed once by this code. Stored blocks on disk are keyed by them, so if
// this fails the encoding changed and every persisted cache is orphaned. Bump
// the version tags in block_hash.cc deliberately, then re-pin.
TEST(BlockHashTest, KeysArePinnedAcrossProcessesAndReleases) {
  ModelFingerprint model = SmallModel(R"({"a":1})", std::vector<std::byte>(8, std::byte{7}));
  EXPECT_EQ(model.ToHex(), "20bfdb6b9604cde6b4e5a272c75f5ac3");
  BlockKey root = RootKey(model, "tenant-a");
  EXPECT_EQ(root.ToHex(), "359c4b565e3cbac904dc82bf9ad457ce");
  std::vector<TokenId> tokens = {1, 2, 3, 70000};
  EXPECT_EQ(HashBlock(root, tokens).ToHex(), "de5d993f763f60547e368fffd6198994");
}

TEST(BlockHashTest, ChangingOneTokenChangesThatBlockAndAllAfterOnly) {
  BlockKey root = RootKey(ModelFingerprint{1, 2}, "");
  std::vector<TokenId> tokens = Iota(5 * kBlockSize, 100);
  std::vector<BlockKey> base = Chain(root, tokens);
  for (int changed_block = 0; changed_block < 5; ++changed_block) {
    std::vector<TokenId> edited = tokens;
    edited[changed_block * kBlockSize + 2] += 1;
    std::vector<BlockKey> keys = Chain(root, edited);
    for (int k = 0; k < 5; ++k) {
      if (k < changed_block) {
        EXPECT_EQ(keys[k], base[k]) << "block " << k << " edit in " << changed_block;
      } else {
        EXPECT_NE(keys[k], base[k]) << "block " << k << " edit in " << changed_block;
      }
    }
  }
}

TEST(BlockHashTest, SameTokensUnderAnotherParentGetAnotherKey) {
  BlockKey root = RootKey(ModelFingerprint{1, 2}, "");
  std::vector<TokenId> a = {5, 6, 7, 8, 1, 2, 3, 4};
  std::vector<TokenId> b = {9, 9, 9, 9, 1, 2, 3, 4};
  EXPECT_NE(Chain(root, a)[1], Chain(root, b)[1]);
  // The block's own tokens count as whole ids, not bytes: no re-splitting.
  EXPECT_NE(HashBlock(root, std::vector<TokenId>{1, 2}),
            HashBlock(root, std::vector<TokenId>{2, 1}));
  EXPECT_NE(HashBlock(root, std::vector<TokenId>{0}), HashBlock(root, std::vector<TokenId>{0, 0}));
}

TEST(BlockHashTest, SaltsKeepTenantsApart) {
  ModelFingerprint model{3, 4};
  std::vector<TokenId> tokens = Iota(2 * kBlockSize, 1);
  std::vector<BlockKey> none = Chain(RootKey(model, ""), tokens);
  std::vector<BlockKey> a = Chain(RootKey(model, "tenant-a"), tokens);
  std::vector<BlockKey> a_again = Chain(RootKey(model, "tenant-a"), tokens);
  std::vector<BlockKey> b = Chain(RootKey(model, "tenant-b"), tokens);
  EXPECT_EQ(a, a_again);
  for (int k = 0; k < 2; ++k) {
    EXPECT_NE(a[k], b[k]);
    EXPECT_NE(a[k], none[k]);
  }
}

TEST(BlockHashTest, ModelsKeepTheirCachesApart) {
  std::vector<TokenId> tokens = Iota(kBlockSize, 1);
  std::vector<std::byte> weight(64, std::byte{1});
  ModelFingerprint base = SmallModel("{}", weight);
  EXPECT_EQ(base, SmallModel("{}", weight));
  std::vector<std::byte> other_weight = weight;
  other_weight[10] = std::byte{2};
  std::vector<ModelFingerprint> others = {SmallModel(R"({"x":1})", weight),
                                          SmallModel("{}", other_weight),
                                          SmallModel("{}", weight, DType::kF32),
                                          SmallModel("{}", weight, DType::kBF16, 32)};
  for (const ModelFingerprint& other : others) {
    EXPECT_NE(other, base);
    EXPECT_NE(HashBlock(RootKey(other, ""), tokens), HashBlock(RootKey(base, ""), tokens));
  }
}

TEST(BlockHashTest, KvLayoutsKeepTheirCachesApartAndRowsKeepsOldKeys) {
  const ModelFingerprint base = SmallModel(R"({"a":1})", std::vector<std::byte>(8, std::byte{7}));
  // Token rows were every block's layout before layouts were named: the
  // pinned fingerprint (and every block persisted under it) stays.
  EXPECT_EQ(WithKvLayout(base, "rows"), base);
  const ModelFingerprint chunks = WithKvLayout(base, "chunks16");
  EXPECT_NE(chunks, base);
  EXPECT_EQ(chunks, WithKvLayout(base, "chunks16"));
  EXPECT_EQ(chunks.ToHex(), "c1a3beff763c4fa8e5cd201fc6eb7db6");  // pinned: persisted keys
  const ModelFingerprint other =
      WithKvLayout(SmallModel(R"({"a":2})", std::vector<std::byte>(8, std::byte{7})), "chunks16");
  EXPECT_NE(other, chunks);
}

TEST(BlockHashTest, TensorOrderDoesNotMatterButNamesAndShapesDo) {
  std::vector<std::byte> bytes(32, std::byte{5});
  auto build = [&](bool swapped, std::string_view second_name, int64_t rows) {
    ModelFingerprintBuilder builder;
    std::vector<int64_t> shape_a = {16};
    std::vector<int64_t> shape_b = {rows, 16 / rows};
    if (swapped) builder.AddTensor(second_name, DType::kBF16, shape_b, bytes);
    builder.AddTensor("a", DType::kBF16, shape_a, bytes);
    if (!swapped) builder.AddTensor(second_name, DType::kBF16, shape_b, bytes);
    return std::move(builder).Finish(DType::kBF16, 16);
  };
  EXPECT_EQ(build(false, "b", 2), build(true, "b", 2));
  EXPECT_NE(build(false, "b", 2), build(false, "c", 2));
  EXPECT_NE(build(false, "b", 2), build(false, "b", 4));
}

TEST(BlockHashTest, SampledDigestSeesEditsAtBothEndsOfALargeTensor) {
  std::vector<std::byte> big(3 << 20);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::byte>(i * 31 % 251);
  ModelFingerprint base = SmallModel("{}", big);
  for (size_t at : {size_t{0}, big.size() - 1}) {
    std::vector<std::byte> edited = big;
    edited[at] ^= std::byte{1};
    EXPECT_NE(SmallModel("{}", edited), base) << "edit at " << at;
  }
}

}  // namespace
}  // namespace strata::cache
