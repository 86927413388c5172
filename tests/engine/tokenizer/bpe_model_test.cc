#include "engine/tokenizer/bpe_model.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace strata::engine {
namespace {

using Ids = std::vector<TokenId>;

std::unique_ptr<BpeModel> Model(nlohmann::json json) {
  json["type"] = "BPE";
  auto model = BpeModel::FromJson(json, "model");
  EXPECT_TRUE(model.ok()) << model.status();
  if (!model.ok()) std::abort();  // the test's own JSON is wrong
  return std::move(*model);
}

Ids Tokenize(const BpeModel& model, std::string_view piece) {
  Ids ids;
  model.Tokenize(piece, ids);
  return ids;
}

const nlohmann::json kAbcVocab = {{"a", 0}, {"b", 1}, {"c", 2}, {"ab", 3}, {"bc", 4}};

TEST(BpeModelTest, MergesByRank) {
  auto bc_first = Model({{"vocab", kAbcVocab}, {"merges", {"b c", "a b"}}});
  EXPECT_EQ(Tokenize(*bc_first, "abc"), (Ids{0, 4}));
  auto ab_first = Model({{"vocab", kAbcVocab}, {"merges", {"a b", "b c"}}});
  EXPECT_EQ(Tokenize(*ab_first, "abc"), (Ids{3, 2}));
}

TEST(BpeModelTest, PairMergesAndLeftmostFirstOnTies) {
  auto model = Model({{"vocab", {{"a", 0}, {"aa", 1}}},
                      {"merges", nlohmann::json::array({nlohmann::json::array({"a", "a"})})}});
  EXPECT_EQ(Tokenize(*model, "aaa"), (Ids{1, 0}));
  EXPECT_EQ(Tokenize(*model, "aaaa"), (Ids{1, 1}));
}

TEST(BpeModelTest, MergesChainIntoLongTokens) {
  auto model = Model({{"vocab", {{"a", 0}, {"aa", 1}, {"aaaa", 2}}}, {"merges", {"a a", "aa aa"}}});
  std::string word(100001, 'a');  // long enough that a quadratic merge would crawl
  Ids ids = Tokenize(*model, word);
  ASSERT_EQ(ids.size(), 25001u);
  EXPECT_EQ(ids.front(), 2);
  EXPECT_EQ(ids.back(), 0);
}

TEST(BpeModelTest, IgnoreMergesTakesWholeTokens) {
  nlohmann::json json = {{"vocab", {{"a", 0}, {"b", 1}, {"c", 2}, {"abc", 3}}},
                         {"merges", nlohmann::json::array()}};
  EXPECT_EQ(Tokenize(*Model(json), "abc"), (Ids{0, 1, 2}));
  json["ignore_merges"] = true;
  EXPECT_EQ(Tokenize(*Model(json), "abc"), (Ids{3}));
}

TEST(BpeModelTest, ByteFallbackForUnknownCharacters) {
  auto model = Model({{"vocab", {{"<unk>", 0}, {"<0xC3>", 1}, {"<0xA9>", 2}, {"a", 3}}},
                      {"merges", nlohmann::json::array()},
                      {"unk_token", "<unk>"},
                      {"byte_fallback", true}});
  EXPECT_EQ(Tokenize(*model, "a\xC3\xA9"), (Ids{3, 1, 2}));
  // U+00E8 needs <0xA8>, which is missing: the character becomes <unk>.
  EXPECT_EQ(Tokenize(*model,
                     "\xC3\xA8"
                     "a"),
            (Ids{0, 3}));
}

TEST(BpeModelTest, UnknownCharactersFuseOnlyWithFuseUnk) {
  nlohmann::json json = {{"vocab", {{"<unk>", 0}, {"a", 1}}},
                         {"merges", nlohmann::json::array()},
                         {"unk_token", "<unk>"}};
  EXPECT_EQ(Tokenize(*Model(json), "xyaz"), (Ids{0, 0, 1, 0}));
  json["fuse_unk"] = true;
  EXPECT_EQ(Tokenize(*Model(json), "xyaz"), (Ids{0, 1, 0}));
  json.erase("unk_token");
  EXPECT_EQ(Tokenize(*Model(json), "xyaz"), (Ids{1}));  // dropped, as in the library
}

TEST(BpeModelTest, ContinuingSubwordPrefixAndEndOfWordSuffix) {
  auto model = Model({{"vocab", {{"a", 0}, {"##b", 1}, {"ab", 2}, {"##c</w>", 3}, {"abc</w>", 4}}},
                      {"merges", {"a ##b", "ab ##c</w>"}},
                      {"continuing_subword_prefix", "##"},
                      {"end_of_word_suffix", "</w>"}});
  EXPECT_EQ(Tokenize(*model, "abc"), (Ids{4}));
}

TEST(BpeModelTest, Lookups) {
  auto model = Model({{"vocab", kAbcVocab}, {"merges", nlohmann::json::array({"a b"})}});
  EXPECT_EQ(model->TokenToId("ab"), 3);
  EXPECT_EQ(model->TokenToId("abc"), std::nullopt);
  ASSERT_NE(model->IdToToken(4), nullptr);
  EXPECT_EQ(*model->IdToToken(4), "bc");
  EXPECT_EQ(model->IdToToken(5), nullptr);
  EXPECT_EQ(model->id_limit(), 5);
}

TEST(BpeModelTest, Errors) {
  auto result = BpeModel::FromJson(
      {{"type", "BPE"}, {"vocab", kAbcVocab}, {"merges", nlohmann::json::array({"a c"})}}, "model");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(result.status().message(),
            "key 'model.merges[0]': merge result 'ac' is not in the vocabulary");
  result = BpeModel::FromJson(
      {{"type", "BPE"}, {"vocab", kAbcVocab}, {"merges", nlohmann::json::array({"a d"})}}, "model");
  EXPECT_EQ(result.status().message(),
            "key 'model.merges[0]': merge part 'd' is not in the vocabulary");
  result = BpeModel::FromJson({{"type", "Unigram"}, {"vocab", {}}}, "model");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnimplemented);
  result = BpeModel::FromJson({{"type", "BPE"},
                               {"vocab", kAbcVocab},
                               {"merges", nlohmann::json::array()},
                               {"dropout", 0.1}},
                              "model");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnimplemented);
  result = BpeModel::FromJson({{"type", "BPE"}, {"merges", nlohmann::json::array()}}, "model");
  EXPECT_EQ(result.status().message(), "key 'model.vocab': missing");
}

}  // namespace
}  // namespace strata::engine
