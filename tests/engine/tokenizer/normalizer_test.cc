#include "engine/tokenizer/normalizer.h"

#include <gtest/gtest.h>

#include <string>

namespace strata::engine {
namespace {

std::string Normalized(const nlohmann::json& json, std::string text) {
  auto normalizer = Normalizer::FromJson(json, "normalizer");
  EXPECT_TRUE(normalizer.ok()) << normalizer.status();
  if (!normalizer.ok()) return "<error>";
  EXPECT_TRUE((*normalizer)->Normalize(text).ok());
  return text;
}

TEST(NormalizerTest, UnicodeForms) {
  const std::string decomposed = "cafe\xCC\x81";  // e + combining acute
  const std::string composed = "caf\xC3\xA9";
  EXPECT_EQ(Normalized({{"type", "NFC"}}, decomposed), composed);
  EXPECT_EQ(Normalized({{"type", "NFD"}}, composed), decomposed);
  EXPECT_EQ(Normalized({{"type", "NFKC"}}, "\xEF\xAC\x81"), "fi");  // the ligature U+FB01
  EXPECT_EQ(Normalized({{"type", "NFC"}}, "\xEF\xAC\x81"), "\xEF\xAC\x81");
  EXPECT_EQ(Normalized({{"type", "NFKD"}}, "\xC2\xB2"), "2");  // superscript two
}

TEST(NormalizerTest, PrependLeavesEmptyTextAlone) {
  nlohmann::json json = {{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}};
  EXPECT_EQ(Normalized(json, "hi"), "\xE2\x96\x81hi");
  EXPECT_EQ(Normalized(json, ""), "");
}

TEST(NormalizerTest, ReplaceStringAndRegex) {
  EXPECT_EQ(
      Normalized({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "_"}}, " a  b"),
      "_a__b");
  EXPECT_EQ(
      Normalized({{"type", "Replace"}, {"pattern", {{"Regex", " +"}}}, {"content", "_"}}, " a  b"),
      "_a_b");
}

TEST(NormalizerTest, StripUnicodeWhitespace) {
  EXPECT_EQ(Normalized({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
                       "\xE3\x80\x80 a b\t\n"),
            "a b");
  EXPECT_EQ(Normalized({{"type", "Strip"}, {"strip_left", false}, {"strip_right", true}}, "  a  "),
            "  a");
}

TEST(NormalizerTest, SequenceAppliesInOrder) {
  // The SentencePiece-style pair of Mistral and Llama 2.
  nlohmann::json json = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}};
  EXPECT_EQ(Normalized(json, "a b"),
            "\xE2\x96\x81"
            "a\xE2\x96\x81"
            "b");
}

TEST(NormalizerTest, Errors) {
  auto unknown = Normalizer::FromJson({{"type", "Lowercase2"}}, "normalizer");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kUnimplemented);
  auto missing = Normalizer::FromJson({{"type", "Replace"}, {"content", "x"}}, "normalizer");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(missing.status().message(), "key 'normalizer.pattern': missing");
  auto untyped = Normalizer::FromJson({{"prepend", "x"}}, "normalizer");
  EXPECT_EQ(untyped.status().message(), "key 'normalizer.type': missing");
}

}  // namespace
}  // namespace strata::engine
