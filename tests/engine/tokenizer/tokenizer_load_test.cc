// Tokenizer::Load error reporting: each malformed tokenizer.json gives the
// right status code and a message naming the file and the key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;

// A minimal valid byte-fallback BPE tokenizer.json; tests break one part.
nlohmann::json MinimalTokenizer() {
  return nlohmann::json::parse(R"({
    "added_tokens": [{"id": 0, "content": "<s>", "special": true, "lstrip": false,
                      "rstrip": false, "single_word": false, "normalized": false}],
    "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
    "model": {"type": "BPE", "vocab": {"<s>": 0, "a": 1, "b": 2, "ab": 3}, "merges": ["a b"]}
  })");
}

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("strata_tok_load_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  absl::Status LoadWith(const nlohmann::json& json) {
    Write("tokenizer.json", json.dump());
    return Tokenizer::Load(dir_).status();
  }
  std::string File() const { return (dir_ / "tokenizer.json").string(); }

  fs::path dir_;
};

TEST_F(LoadTest, MinimalTokenizerLoadsAndEncodes) {
  Write("tokenizer.json", MinimalTokenizer().dump());
  auto tokenizer = Tokenizer::Load(dir_);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode("<s>abba", false);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<TokenId>{0, 3, 2, 1}));
  EXPECT_EQ((*tokenizer)->vocab_size(), 4);
  EXPECT_EQ((*tokenizer)->bos_id(), std::nullopt);  // no tokenizer_config.json
}

TEST_F(LoadTest, MissingDirectoryIsNotFound) {
  auto status = Tokenizer::Load(dir_ / "nowhere").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(status.message().find("tokenizer.json"), std::string::npos) << status;
}

TEST_F(LoadTest, NotJsonIsInvalidArgument) {
  Write("tokenizer.json", "{\"model\": ");
  auto status = Tokenizer::Load(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find(File()), std::string::npos) << status;
  EXPECT_NE(status.message().find("not valid JSON"), std::string::npos) << status;
}

TEST_F(LoadTest, MissingModel) {
  nlohmann::json json = MinimalTokenizer();
  json.erase("model");
  auto status = LoadWith(json);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), File() + ": key 'model': missing");
}

TEST_F(LoadTest, UnsupportedModelTypes) {
  for (const char* type : {"Unigram", "WordPiece", "WordLevel"}) {
    nlohmann::json json = MinimalTokenizer();
    json["model"]["type"] = type;
    auto status = LoadWith(json);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
    EXPECT_EQ(status.message(),
              File() + ": key 'model.type': unsupported model type '" + type + "'");
  }
}

TEST_F(LoadTest, UnsupportedPreTokenizerNamesTheNestedKey) {
  nlohmann::json json = MinimalTokenizer();
  json["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Whatever"}}}}};
  auto status = LoadWith(json);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(status.message(), File() +
                                  ": key 'pre_tokenizer.pretokenizers[1].type': unsupported "
                                  "pre-tokenizer type 'Whatever'");
}

TEST_F(LoadTest, UnsupportedNormalizer) {
  nlohmann::json json = MinimalTokenizer();
  json["normalizer"] = {{"type", "Precompiled"}};
  auto status = LoadWith(json);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(status.message(),
            File() + ": key 'normalizer.type': unsupported normalizer type 'Precompiled'");
}

TEST_F(LoadTest, BadFieldsNameTheirKeys) {
  struct Case {
    const char* pointer;
    nlohmann::json value;
    const char* key;
  };
  const Case cases[] = {
      {"/model/merges/0", "a_b", "model.merges[0]"},
      {"/model/merges/0", "a c", "model.merges[0]"},
      {"/model/vocab/a", "one", "model.vocab.a"},
      {"/model/merges", 7, "model.merges"},
      {"/model/unk_token", "<unk>", "model.unk_token"},
      {"/added_tokens/0/id", "zero", "added_tokens[0].id"},
      {"/pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"Regex", "("}}}, {"behavior", "Isolated"}},
       "pre_tokenizer.pattern"},
      {"/pre_tokenizer",
       {{"type", "Split"}, {"pattern", {{"String", "x"}}}, {"behavior", "Odd"}},
       "pre_tokenizer.behavior"},
  };
  for (const Case& c : cases) {
    nlohmann::json json = MinimalTokenizer();
    json[nlohmann::json::json_pointer(c.pointer)] = c.value;
    auto status = LoadWith(json);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.pointer;
    EXPECT_EQ(status.message().find(File() + ": key '" + c.key + "'"), 0u) << status;
  }
}

TEST_F(LoadTest, ConfigTokensMayBeStringsOrObjects) {
  Write("tokenizer.json", MinimalTokenizer().dump());
  Write("tokenizer_config.json",
        R"({"bos_token": {"content": "<s>", "special": true}, "eos_token": "ab"})");
  auto tokenizer = Tokenizer::Load(dir_);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->bos_id(), 0);
  EXPECT_EQ((*tokenizer)->eos_id(), 3);
}

TEST_F(LoadTest, ConfigTokenOutsideTheVocabulary) {
  Write("tokenizer.json", MinimalTokenizer().dump());
  Write("tokenizer_config.json", R"({"eos_token": "</s>"})");
  auto status = Tokenizer::Load(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), (dir_ / "tokenizer_config.json").string() +
                                  ": key 'eos_token': '</s>' is not in the vocabulary");
}

}  // namespace
}  // namespace strata::engine
