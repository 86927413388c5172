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

namespace strata {
namespace {

namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout, plus stderr when requested
};

std::string ShellQuote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  quoted += '\'';
  return quoted;
}

CommandResult RunStrata(const std::vector<std::string>& args, bool capture_stderr = false) {
  std::string command = ShellQuote(STRATA_BINARY);
  for (const std::string& arg : args) absl::StrAppend(&command, " ", ShellQuote(arg));
  command += capture_stderr ? " 2>&1" : " 2>/dev/null";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0)
    result.output.append(buffer.data(), n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

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
    CommandResult result = RunStrata(args);
    ASSERT_EQ(result.exit_code, 0) << result.output;
    auto expected = tokenizer->Encode(text, special);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(nlohmann::json::parse(result.output), (nlohmann::json{{"ids", *expected}}));
    EXPECT_EQ(expected->front() == 1, special);  // BOS only with --special
  }
}

TEST(TokenizeCommandTest, UsesTheModelDirectory) {
  fs::path dir = fs::path(STRATA_FETCHED_DATA_DIR) / "tokenizers/llama3";
  ASSERT_TRUE(fs::exists(dir / "tokenizer.json")) << "run scripts/fetch_test_data.sh first";
  CommandResult result = RunStrata({"tokenize", "--model", dir.string(), "--text", "Hello world"});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.output)["ids"], (nlohmann::json{9906, 1917}));
}

TEST(DetokenizeCommandTest, RoundTripsTextWithCharactersJsonMustEscape) {
  auto tokenizer = Aidreams();
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "She said \"hi\"\\ then\tleft.\nZ\xC3\xBCrich";
  auto ids = tokenizer->Encode(text, /*add_special_tokens=*/true);
  ASSERT_TRUE(ids.ok());
  CommandResult result = RunStrata({"detokenize", "--ids", IdList(*ids), "--skip-special"});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.output)["text"], text);
  // Without --skip-special the BOS piece is part of the text.
  result = RunStrata({"detokenize", "--ids", IdList(*ids)});
  ASSERT_EQ(result.exit_code, 0);
  auto expected = tokenizer->Decode(*ids, false);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(nlohmann::json::parse(result.output)["text"], *expected);
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
  CommandResult result = RunStrata({"detokenize", "--ids", IdList({*a, *byte_token})});
  ASSERT_EQ(result.exit_code, 0);
  nlohmann::json out = nlohmann::json::parse(result.output);  // throws if not valid JSON
  EXPECT_EQ(out["text"], "a\xEF\xBF\xBD");
}

TEST(DetokenizeCommandTest, EmptyIdListIsEmptyText) {
  CommandResult result = RunStrata({"detokenize", "--ids", ""});
  ASSERT_EQ(result.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(result.output), (nlohmann::json{{"text", ""}}));
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
    CommandResult result = RunStrata(args, /*capture_stderr=*/true);
    EXPECT_EQ(result.exit_code, 2) << args.back() << ": " << result.output;
    EXPECT_NE(result.output.find(absl::StrCat("usage: strata ", args[0])), std::string::npos)
        << result.output;
  }
}

TEST(CommandErrorsTest, LoadAndDecodeErrorsExitOne) {
  CommandResult result =
      RunStrata({"tokenize", "--model", "/nonexistent/model", "--text", "hi"}, true);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("/nonexistent/model/tokenizer.json"), std::string::npos)
      << result.output;
  result = RunStrata({"detokenize", "--model", "/nonexistent/model", "--ids", "1"}, true);
  EXPECT_EQ(result.exit_code, 1);
  result = RunStrata({"detokenize", "--ids", "100000"}, true);  // outside the 512-token vocab
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("outside the vocabulary"), std::string::npos) << result.output;
  result = RunStrata({"tokenize", "--text", "bad \xff utf-8"}, true);
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("UTF-8"), std::string::npos) << result.output;
}

}  // namespace
}  // namespace strata
