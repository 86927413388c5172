// End-to-end tests of Tokenizer against the reference fixtures (ids and
// decoded text produced by the Hugging Face-compatible transformers.js) and
// the embedded aidreams260K model.
#include "engine/tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return nlohmann::json::parse(in);
}

fs::path FetchedTokenizerDir(const std::string& name) {
  return fs::path(STRATA_FETCHED_DATA_DIR) / "tokenizers" / name;
}

fs::path CasesFile(const std::string& name) {
  return fs::path(STRATA_TEST_DATA_DIR) / "tokenizers" / (name + "-cases.json");
}

const fs::path kAidreamsDir = fs::path(STRATA_SOURCE_DIR) / "models/aidreams260K";

// Loads the fetched tokenizer once per name for the whole test binary.
const Tokenizer* FetchedTokenizer(const std::string& name) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Tokenizer>>();
  auto it = cache->find(name);
  if (it != cache->end()) return it->second.get();
  if (!fs::exists(FetchedTokenizerDir(name) / "tokenizer.json")) return nullptr;
  auto loaded = Tokenizer::Load(FetchedTokenizerDir(name));
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  if (!loaded.ok()) return nullptr;
  return (*cache)[name] = std::move(*loaded), (*cache)[name].get();
}

#define REQUIRE_FETCHED(name, var)                                                      \
  const Tokenizer* var = FetchedTokenizer(name);                                        \
  if (var == nullptr) {                                                                 \
    FAIL() << "missing test data: run scripts/fetch_test_data.sh " STRATA_FETCHED_DATA_DIR; \
  }

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, EncodesEveryCaseToTheReferenceIds) {
  REQUIRE_FETCHED(GetParam(), tokenizer);
  nlohmann::json cases = ReadJson(CasesFile(GetParam()));
  ASSERT_GE(cases["cases"].size(), 40u);
  for (const auto& test_case : cases["cases"]) {
    std::string text = test_case["text"];
    auto ids = tokenizer->Encode(text, /*add_special_tokens=*/false);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, test_case["ids"].get<std::vector<TokenId>>()) << "text: " << text;
  }
}

TEST_P(FixtureTest, DecodesEveryCaseToTheReferenceText) {
  REQUIRE_FETCHED(GetParam(), tokenizer);
  nlohmann::json cases = ReadJson(CasesFile(GetParam()));
  for (const auto& test_case : cases["cases"]) {
    // The reference `decoded` keeps special tokens (e.g. "<s> [INST]...").
    auto text = tokenizer->Decode(test_case["ids"].get<std::vector<TokenId>>(),
                                  /*skip_special_tokens=*/false);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, test_case["decoded"].get<std::string>());
  }
}

TEST_P(FixtureTest, AppliesThePostProcessorWithSpecialTokens) {
  REQUIRE_FETCHED(GetParam(), tokenizer);
  nlohmann::json cases = ReadJson(CasesFile(GetParam()));
  ASSERT_FALSE(cases["with_special_tokens"].empty());
  for (const auto& test_case : cases["with_special_tokens"]) {
    std::string text = test_case["text"];
    auto ids = tokenizer->Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    EXPECT_EQ(*ids, test_case["ids"].get<std::vector<TokenId>>()) << "text: " << text;
  }
}

TEST_P(FixtureTest, RejectsInvalidUtf8) {
  REQUIRE_FETCHED(GetParam(), tokenizer);
  for (std::string bad : {std::string("abc\xff"), std::string("\xc3"), std::string("\xed\xa0\x80"),
                          std::string("\xc0\xaf"), std::string("\xf4\x90\x80\x80")}) {
    auto ids = tokenizer->Encode(bad, false);
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_P(FixtureTest, RejectsIdsOutsideTheVocabulary) {
  REQUIRE_FETCHED(GetParam(), tokenizer);
  std::vector<TokenId> ids = {static_cast<TokenId>(tokenizer->vocab_size())};
  EXPECT_EQ(tokenizer->Decode(ids, false).status().code(), absl::StatusCode::kInvalidArgument);
  ids = {-1};
  EXPECT_EQ(tokenizer->Decode(ids, false).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(FixtureTest, ConcurrentEncodesAgree) {
  REQUIRE_FETCHED(GetParam(), tokenizer);
  const std::string text = "Concurrent tokenization: 中文 ünïcödé 12345 <|im_start|> done.";
  auto expected = tokenizer->Encode(text, true);
  ASSERT_TRUE(expected.ok());
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        auto ids = tokenizer->Encode(text, true);
        if (!ids.ok() || *ids != *expected) ++mismatches[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureTest, ::testing::Values("llama3", "qwen3", "mistral-spm"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(Llama3Test, VocabularyAndSpecialTokens) {
  REQUIRE_FETCHED("llama3", tokenizer);
  EXPECT_EQ(tokenizer->vocab_size(), 128256);
  EXPECT_EQ(tokenizer->bos_id(), 128000);
  EXPECT_EQ(tokenizer->eos_id(), 128001);
  EXPECT_EQ(tokenizer->TokenToId("<|eot_id|>"), 128009);
  EXPECT_EQ(tokenizer->IdToToken(128009), "<|eot_id|>");
  EXPECT_EQ(tokenizer->TokenToId("Hello"), 9906);
  EXPECT_EQ(tokenizer->IdToToken(1917), "Ġworld");
  EXPECT_TRUE(tokenizer->IsSpecial(128000));
  EXPECT_FALSE(tokenizer->IsSpecial(9906));
  EXPECT_EQ(tokenizer->TokenToId("no such token"), std::nullopt);
  EXPECT_EQ(tokenizer->IdToToken(200000), std::nullopt);
  // Special tokens are skipped on request.
  auto text = tokenizer->Decode(std::vector<TokenId>{128000, 6151, 128009}, true);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(*text, "hi");
}

TEST(Qwen3Test, VocabularyAndSpecialTokens) {
  REQUIRE_FETCHED("qwen3", tokenizer);
  EXPECT_EQ(tokenizer->vocab_size(), 151669);
  EXPECT_EQ(tokenizer->bos_id(), std::nullopt);  // bos_token is null
  EXPECT_EQ(tokenizer->eos_id(), 151645);        // <|im_end|>
  EXPECT_TRUE(tokenizer->IsSpecial(151644));
}

TEST(Qwen3Test, NormalizesToNfc) {
  REQUIRE_FETCHED("qwen3", tokenizer);
  // "café" spelt with a combining acute accent encodes as the composed form.
  auto decomposed = tokenizer->Encode("cafe\xcc\x81", false);
  auto composed = tokenizer->Encode("caf\xc3\xa9", false);
  ASSERT_TRUE(decomposed.ok() && composed.ok());
  EXPECT_EQ(*decomposed, *composed);
}

TEST(MistralSpmTest, VocabularyAndSpecialTokens) {
  REQUIRE_FETCHED("mistral-spm", tokenizer);
  EXPECT_EQ(tokenizer->vocab_size(), 32000);
  EXPECT_EQ(tokenizer->bos_id(), 1);
  EXPECT_EQ(tokenizer->eos_id(), 2);
  EXPECT_EQ(tokenizer->IdToToken(13), "<0x0A>");
}

// A megabyte of mixed text with a 100 KB word and 100 KB of spaces: long
// pre-tokens must encode and decode exactly (speed is for benchmarks).
TEST(LongTextTest, MegabyteWithHugeWordsRoundTrips) {
  REQUIRE_FETCHED("llama3", tokenizer);
  std::string text;
  nlohmann::json cases = ReadJson(CasesFile("llama3"));
  while (text.size() < (1 << 20)) {
    for (const auto& test_case : cases["cases"]) text += test_case["text"].get<std::string>() + " ";
  }
  text += std::string(100000, 'a') + std::string(100000, ' ') + "end";  // long words
  auto ids = tokenizer->Encode(text, false);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_LT(ids->size(), text.size() / 2);  // merges happened: not one id per byte
  auto decoded = tokenizer->Decode(*ids, false);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, text);
}

TEST(AidreamsTest, RoundTripsEnglishText) {
  auto tokenizer = Tokenizer::Load(kAidreamsDir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->vocab_size(), 512);
  EXPECT_EQ((*tokenizer)->bos_id(), 1);
  EXPECT_EQ((*tokenizer)->eos_id(), 2);
  for (std::string text : {"Echoes of vectors unfold, a gentle hum of precision.",
                           "The quick brown fox jumps over the lazy dog!",
                           "  Two leading spaces, tabs\tand\nnewlines.", "Zürich ☃ 42"}) {
    auto ids = (*tokenizer)->Encode(text, /*add_special_tokens=*/true);
    ASSERT_TRUE(ids.ok()) << ids.status();
    ASSERT_FALSE(ids->empty());
    EXPECT_EQ(ids->front(), 1);  // the template's <s>
    auto decoded = (*tokenizer)->Decode(*ids, /*skip_special_tokens=*/true);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    EXPECT_EQ(*decoded, text);
  }
}

TEST(AidreamsTest, DecodesTheReferenceGreedyContinuation) {
  auto tokenizer = Tokenizer::Load(kAidreamsDir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  nlohmann::json reference =
      ReadJson(fs::path(STRATA_TEST_DATA_DIR) / "models/aidreams260K/reference_greedy.json");
  std::vector<TokenId> ids = reference["prompt_ids"].get<std::vector<TokenId>>();
  for (TokenId id : reference["greedy_new_ids_60"].get<std::vector<TokenId>>()) ids.push_back(id);
  auto text = (*tokenizer)->Decode(ids, /*skip_special_tokens=*/true);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, reference["text"].get<std::string>());
  // Re-encoding the text gives back BOS plus the greedy ids.
  auto encoded = (*tokenizer)->Encode(reference["text"].get<std::string>(), true);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(*encoded, ids);
}

}  // namespace
}  // namespace strata::engine
