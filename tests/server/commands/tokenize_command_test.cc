// Runs `strata tokenize` and `strata detokenize` as a user would and checks
// their JSON output and exit codes against the library.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/server/commands/strata_runner.h"

namespace strata {
namespace {

namespace fs = std::filesystem;

using strata::testing::RunStrata;
using strata::testing::StrataResult;

// stdout and stderr together, for messages that may land on either.
std::string AllOutput(const StrataResult& result) { return result.out + result.err; }

const fs::path kAidreamsDir = fs::path(STRATA_SOURCE_DIR) / "models/aidreams260K";

std::unique_ptr<engine::Tokenizer> Aidreams() {
  auto tokenizer = engine::Tokenizer::Load(kAidreamsDir);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

std::string IdList(const std::vector<engine::TokenId>& ids) {
  std::string list;
  for (size_t i = 0; i < ids.size(); ++i) absl::StrAppend(&list, i ? "," : "", ids[i]);
  return list;
}

TEST(TokenizeCommandTest, PrintsIdsOfTheDefaultModel) {
  auto tokenizer = Aidreams();
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "Echoes of vectors unfold.";
  for (bool special : {false, true}) {
    std::vector<std::string> args = {"tokenize", "--text", text};
    if (special) args.push_back("--special");
    StrataResult result = RunStrata(args);
    ASSERT_EQ(result.exit_code, 0) << AllOutput(result);
    auto expected = tokenizer->Encode(text, special);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(nlohmann::json::parse(result.out), (nlohmann::json{{"ids", *expected}}));
    EXPECT_EQ(expected->front() == 1, special);  // BOS only with --special
  }
}

TEST(TokenizeCommandTest, UsesTheModelDirectory) {
  fs::path dir = fs::path(STRATA_FETCHED_DATA_DIR) / "tokenizers/llama3";
  ASSERT_TRUE(fs::exists(dir / "tokenizer.json")) << "run scripts/fetch_test_data.sh first";
  StrataResult result = RunStrata({"tokenize", "--model", dir.string(), "--text", "Hello world"});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.out)["ids"], (nlohmann::json{9906, 1917}));
}

TEST(DetokenizeCommandTest, RoundTripsTextWithCharactersJsonMustEscape) {
  auto tokenizer = Aidreams();
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "She said \"hi\"\\ then\tleft.\nZ\xC3\xBCrich";
  auto ids = tokenizer->Encode(text, /*add_special_tokens=*/true);
  ASSERT_TRUE(ids.ok());
  StrataResult result = RunStrata({"detokenize", "--ids", IdList(*ids), "--skip-special"});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.out)["text"], text);
  // Without --skip-special the BOS piece is part of the text.
  result = RunStrata({"detokenize", "--ids", IdList(*ids)});
  ASSERT_EQ(result.exit_code, 0);
  auto expected = tokenizer->Decode(*ids, false);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(nlohmann::json::parse(result.out)["text"], *expected);
  EXPECT_NE(*expected, text);
}

TEST(DetokenizeCommandTest, BrokenUtf8StillGivesValidJson) {
  auto tokenizer = Aidreams();
  ASSERT_NE(tokenizer, nullptr);
  // The first byte of "☃" (E2 98 83) alone, via its byte-fallback token.
  auto byte_token = tokenizer->TokenToId("<0xE2>");
  ASSERT_TRUE(byte_token.has_value());
  auto a = tokenizer->TokenToId("a");
  ASSERT_TRUE(a.has_value());
  StrataResult result = RunStrata({"detokenize", "--ids", IdList({*a, *byte_token})});
  ASSERT_EQ(result.exit_code, 0);
  nlohmann::json out = nlohmann::json::parse(result.out);  // throws if not valid JSON
  EXPECT_EQ(out["text"], "a\xEF\xBF\xBD");
}

TEST(DetokenizeCommandTest, EmptyIdListIsEmptyText) {
  StrataResult result = RunStrata({"detokenize", "--ids", ""});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.out), (nlohmann::json{{"text", ""}}));
}

TEST(CommandErrorsTest, BadArgumentsAreUsageErrors) {
  const std::vector<std::vector<std::string>> cases = {
      {"tokenize"},
      {"tokenize", "--text", "hi", "--bogus"},
      {"tokenize", "--text"},
      {"tokenize", "--text", "hi", "--special=yes"},
      {"detokenize"},
      {"detokenize", "--ids", "1,x,3"},
      {"detokenize", "--ids", "1,,3"},
      {"detokenize", "--ids", "99999999999"},
      {"detokenize", "--ids", "1", "extra"},
  };
  for (const auto& args : cases) {
    StrataResult result = RunStrata(args);
    EXPECT_EQ(result.exit_code, 2) << args.back() << ": " << AllOutput(result);
    EXPECT_NE(AllOutput(result).find(absl::StrCat("usage: strata ", args[0])), std::string::npos)
        << AllOutput(result);
  }
}

TEST(CommandErrorsTest, LoadAndDecodeErrorsExitOne) {
  StrataResult result =
      RunStrata({"tokenize", "--model", "/nonexistent/model", "--text", "hi"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(AllOutput(result).find("/nonexistent/model/tokenizer.json"), std::string::npos)
      << AllOutput(result);
  result = RunStrata({"detokenize", "--model", "/nonexistent/model", "--ids", "1"});
  EXPECT_EQ(result.exit_code, 1);
  result = RunStrata({"detokenize", "--ids", "100000"});  // outside the 512-token vocab
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(AllOutput(result).find("outside the vocabulary"), std::string::npos) << AllOutput(result);
  result = RunStrata({"tokenize", "--text", "bad \xff utf-8"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(AllOutput(result).find("UTF-8"), std::string::npos) << AllOutput(result);
}

}  // namespace
}  // namespace strata
