#include "engine/tokenizer/pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace strata::engine {
namespace {

using Pieces = std::vector<std::string>;

Pieces PreTokenized(const nlohmann::json& json, Pieces pieces) {
  auto pre_tokenizer = PreTokenizer::FromJson(json, "pre_tokenizer");
  EXPECT_TRUE(pre_tokenizer.ok()) << pre_tokenizer.status();
  if (!pre_tokenizer.ok()) return {};
  EXPECT_TRUE((*pre_tokenizer)->PreTokenize(pieces).ok());
  return pieces;
}

nlohmann::json Split(const std::string& kind, const std::string& pattern,
                     const std::string& behavior, bool invert = false) {
  return {{"type", "Split"},
          {"pattern", {{kind, pattern}}},
          {"behavior", behavior},
          {"invert", invert}};
}

// The examples of the library's SplitDelimiterBehavior documentation.
TEST(SplitTest, EveryBehavior) {
  const Pieces text = {"the-final--countdown"};
  EXPECT_EQ(PreTokenized(Split("String", "-", "Removed"), text),
            (Pieces{"the", "final", "countdown"}));
  EXPECT_EQ(PreTokenized(Split("String", "-", "Isolated"), text),
            (Pieces{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(PreTokenized(Split("String", "-", "MergedWithPrevious"), text),
            (Pieces{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(PreTokenized(Split("String", "-", "MergedWithNext"), text),
            (Pieces{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(PreTokenized(Split("String", "-", "Contiguous"), text),
            (Pieces{"the", "-", "final", "--", "countdown"}));
}

TEST(SplitTest, InvertKeepsTheMatches) {
  EXPECT_EQ(
      PreTokenized(Split("String", "-", "Removed", /*invert=*/true), {"the-final--countdown"}),
      (Pieces{"-", "-", "-"}));
  EXPECT_EQ(PreTokenized(Split("Regex", "\\p{L}+", "Removed", /*invert=*/true), {"ab, cd!"}),
            (Pieces{"ab", "cd"}));
}

TEST(SplitTest, StringPatternIsLiteral) {
  EXPECT_EQ(PreTokenized(Split("String", ".*", "Isolated"), {"a.*b"}), (Pieces{"a", ".*", "b"}));
}

TEST(SplitTest, Llama3PatternWithUnicodeClassesAndLookahead) {
  const std::string pattern =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  EXPECT_EQ(PreTokenized(Split("Regex", pattern, "Isolated"), {"I'M  fine\n\n  ok 12345 été"}),
            (Pieces{"I", "'M", " ", " fine", "\n\n", " ", " ok", " ", "123", "45", " été"}));
}

TEST(ByteLevelTest, PrefixSpaceRegexAndByteMapping) {
  nlohmann::json json = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(PreTokenized(json, {"Hello world"}), (Pieces{"\xC4\xA0Hello", "\xC4\xA0world"}));
  // The prefix goes on every piece that lacks one, as in the library.
  EXPECT_EQ(PreTokenized(json, {"a", " b"}), (Pieces{"\xC4\xA0"
                                                     "a",
                                                     "\xC4\xA0"
                                                     "b"}));
}

TEST(ByteLevelTest, WithoutRegexOnlyMapsBytes) {
  nlohmann::json json = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
  // "é" is two bytes, each mapped to its own code point.
  EXPECT_EQ(PreTokenized(json, {"a b\n\xC3\xA9"}), (Pieces{"a\xC4\xA0"
                                                           "b\xC4\x8A\xC3\x83\xC2\xA9"}));
}

TEST(SequenceTest, RunsStepsInOrderAndDropsEmptyPieces) {
  nlohmann::json json = {
      {"type", "Sequence"},
      {"pretokenizers", {Split("String", " ", "Removed"), Split("String", "b", "Isolated")}}};
  EXPECT_EQ(PreTokenized(json, {"ab  cb"}), (Pieces{"a", "b", "c", "b"}));
}

TEST(PreTokenizerTest, NullMeansNone) {
  auto pre_tokenizer = PreTokenizer::FromJson(nullptr, "pre_tokenizer");
  ASSERT_TRUE(pre_tokenizer.ok());
  EXPECT_EQ(*pre_tokenizer, nullptr);
}

TEST(PreTokenizerTest, UnknownTypeIsUnimplemented) {
  auto pre_tokenizer = PreTokenizer::FromJson({{"type", "Whitespace"}}, "pre_tokenizer");
  EXPECT_EQ(pre_tokenizer.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(pre_tokenizer.status().message(),
            "key 'pre_tokenizer.type': unsupported pre-tokenizer type 'Whitespace'");
}

}  // namespace
}  // namespace strata::engine
