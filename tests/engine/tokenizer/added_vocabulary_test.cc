#include "engine/tokenizer/added_vocabulary.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace strata::engine {
namespace {

// One segment as "text" or "[id:text]" for compact expectations.
std::vector<std::string> Segments(const AddedVocabulary& vocabulary, std::string_view text,
                                  bool normalized_pass = false) {
  std::vector<TextSegment> segments;
  vocabulary.Split(text, normalized_pass, segments);
  std::vector<std::string> out;
  for (const TextSegment& segment : segments) {
    std::string text(segment.text);
    // GCC 12 warns falsely (-Wrestrict) on chained operator+ here; StrCat avoids it.
    out.push_back(segment.id ? absl::StrCat("[", *segment.id, ":", text, "]") : text);
  }
  return out;
}

nlohmann::json Token(int id, const std::string& content,
                     nlohmann::json flags = nlohmann::json::object()) {
  nlohmann::json token = {{"id", id},           {"content", content}, {"special", false},
                          {"lstrip", false},    {"rstrip", false},    {"single_word", false},
                          {"normalized", false}};
  token.update(flags);
  return token;
}

std::unique_ptr<AddedVocabulary> Vocabulary(const nlohmann::json& tokens,
                                            const Normalizer* normalizer = nullptr) {
  auto vocabulary = AddedVocabulary::FromJson(tokens, "added_tokens", normalizer);
  EXPECT_TRUE(vocabulary.ok()) << vocabulary.status();
  if (!vocabulary.ok()) std::abort();  // the test's own JSON is wrong
  return std::move(*vocabulary);
}

using Strings = std::vector<std::string>;

TEST(AddedVocabularyTest, LongestMatchFirst) {
  auto vocabulary = Vocabulary(nlohmann::json::array({Token(1, "<a>"), Token(2, "<a><b>")}));
  EXPECT_EQ(Segments(*vocabulary, "x<a><b>y<a>"), (Strings{"x", "[2:<a><b>]", "y", "[1:<a>]"}));
  EXPECT_EQ(Segments(*vocabulary, "<a>"), (Strings{"[1:<a>]"}));
  EXPECT_EQ(Segments(*vocabulary, "plain"), (Strings{"plain"}));
  EXPECT_EQ(Segments(*vocabulary, ""), Strings{});
}

TEST(AddedVocabularyTest, LstripAndRstripSwallowWhitespace) {
  auto vocabulary = Vocabulary(nlohmann::json::array(
      {Token(1, "<l>", {{"lstrip", true}}), Token(2, "<r>", {{"rstrip", true}})}));
  EXPECT_EQ(Segments(*vocabulary, "a \t<l> b"), (Strings{"a", "[1: \t<l>]", " b"}));
  EXPECT_EQ(Segments(*vocabulary, "a <r> \n b"), (Strings{"a ", "[2:<r> \n ]", "b"}));
  // lstrip never reaches back into the previous match.
  EXPECT_EQ(Segments(*vocabulary, "<r>  <l>"), (Strings{"[2:<r>  ]", "[1:<l>]"}));
}

TEST(AddedVocabularyTest, SingleWordRejectsMatchesInsideWords) {
  auto vocabulary = Vocabulary(nlohmann::json::array({Token(1, "ab", {{"single_word", true}})}));
  EXPECT_EQ(Segments(*vocabulary, "xab ab abx ab."),
            (Strings{"xab ", "[1:ab]", " abx ", "[1:ab]", "."}));
}

TEST(AddedVocabularyTest, NormalizedTokensMatchOnlyInTheNormalizedPass) {
  auto normalizer = Normalizer::FromJson({{"type", "NFC"}}, "normalizer");
  ASSERT_TRUE(normalizer.ok());
  // The content is given decomposed; the normalized pass matches its NFC form.
  auto vocabulary = Vocabulary(
      nlohmann::json::array({Token(1, "cafe\xCC\x81", {{"normalized", true}}), Token(2, "<s>")}),
      normalizer->get());
  EXPECT_EQ(Segments(*vocabulary, "<s>caf\xC3\xA9", false), (Strings{"[2:<s>]", "caf\xC3\xA9"}));
  EXPECT_EQ(Segments(*vocabulary, "<s>caf\xC3\xA9", true), (Strings{"<s>", "[1:caf\xC3\xA9]"}));
}

TEST(AddedVocabularyTest, NormalizedDefaultsToNotSpecial) {
  nlohmann::json special = Token(1, "<s>", {{"special", true}});
  special.erase("normalized");
  nlohmann::json plain = Token(2, "word");
  plain.erase("normalized");
  auto vocabulary = Vocabulary(nlohmann::json::array({special, plain}));
  ASSERT_EQ(vocabulary->tokens().size(), 2u);
  EXPECT_FALSE(vocabulary->tokens()[0].normalized);
  EXPECT_TRUE(vocabulary->tokens()[1].normalized);
}

TEST(AddedVocabularyTest, MalformedEntry) {
  auto vocabulary =
      AddedVocabulary::FromJson(nlohmann::json::array({{{"id", 1}}}), "added_tokens", nullptr);
  EXPECT_EQ(vocabulary.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(vocabulary.status().message(), "key 'added_tokens[0].content': missing");
}

}  // namespace
}  // namespace strata::engine
