#include "engine/sampling/stop_checker.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::engine {
namespace {

constexpr TokenId kText = 100;  // an ordinary token
constexpr TokenId kEos = 2;

SamplingParams WithStops(std::vector<std::string> stops, int32_t max_tokens = 100) {
  SamplingParams params;
  params.stop_strings = std::move(stops);
  params.max_tokens = max_tokens;
  return params;
}

struct RunResult {
  std::string text;  // everything emitted, Flush included
  std::optional<FinishReason> finish;
  int tokens_pushed = 0;
};

// Pushes ordinary tokens with the given texts until the checker finishes.
RunResult Feed(StopChecker& checker, const std::vector<std::string>& pieces) {
  RunResult result;
  for (const std::string& piece : pieces) {
    StopUpdate update = checker.Push(kText, piece);
    ++result.tokens_pushed;
    result.text += update.text_to_emit;
    if (update.finish) {
      result.finish = std::move(update.finish);
      break;
    }
  }
  result.text += checker.Flush();
  return result;
}

RunResult Feed(const SamplingParams& params, const std::vector<std::string>& pieces) {
  StopChecker checker(params, {kEos});
  return Feed(checker, pieces);
}

TEST(StopCheckerTest, NoStopsEmitsEverythingImmediately) {
  StopChecker checker(WithStops({}), {kEos});
  EXPECT_EQ(checker.Push(kText, "Hello").text_to_emit, "Hello");
  EXPECT_EQ(checker.Push(kText, " world").text_to_emit, " world");
  EXPECT_EQ(checker.held_back_bytes(), 0u);
  EXPECT_FALSE(checker.finished());
  EXPECT_EQ(checker.num_tokens(), 2);
}

TEST(StopCheckerTest, StopStringInsideOneToken) {
  const RunResult result = Feed(WithStops({"STOP"}), {"Hello ", "saySTOPnow", "never"});
  EXPECT_EQ(result.text, "Hello say");
  ASSERT_TRUE(result.finish.has_value());
  EXPECT_EQ(result.finish->kind, FinishKind::kStop);
  EXPECT_EQ(result.finish->Name(), "stop");
  EXPECT_EQ(result.finish->stop_string, "STOP");
  EXPECT_FALSE(result.finish->stop_token_id.has_value());
  EXPECT_EQ(result.tokens_pushed, 2);
}

TEST(StopCheckerTest, StopStringSplitOverTwoTokens) {
  StopChecker checker(WithStops({"bc"}), {kEos});
  const StopUpdate first = checker.Push(kText, "ab");
  EXPECT_EQ(first.text_to_emit, "a");  // "b" may start "bc"
  EXPECT_FALSE(first.finish);
  EXPECT_EQ(checker.held_back_bytes(), 1u);
  const StopUpdate second = checker.Push(kText, "cd");
  EXPECT_EQ(second.text_to_emit, "");
  ASSERT_TRUE(second.finish);
  EXPECT_EQ(second.finish->stop_string, "bc");
  EXPECT_EQ(checker.Flush(), "");
}

TEST(StopCheckerTest, StopStringSplitOverThreeTokens) {
  StopChecker checker(WithStops({"<|end|>"}), {kEos});
  EXPECT_EQ(checker.Push(kText, "x<|").text_to_emit, "x");
  EXPECT_EQ(checker.Push(kText, "en").text_to_emit, "");
  const StopUpdate last = checker.Push(kText, "d|>tail");
  EXPECT_EQ(last.text_to_emit, "");
  ASSERT_TRUE(last.finish);
  EXPECT_EQ(last.finish->stop_string, "<|end|>");
}

TEST(StopCheckerTest, HeldTextIsReleasedWhenTheMatchFails) {
  StopChecker checker(WithStops({"<|end|>"}), {kEos});
  EXPECT_EQ(checker.Push(kText, "a<|e").text_to_emit, "a");
  EXPECT_EQ(checker.Push(kText, "x").text_to_emit, "<|ex");
  EXPECT_EQ(checker.held_back_bytes(), 0u);
}

TEST(StopCheckerTest, OverlappingPrefixes) {
  // "ababc": after "aba" only the last "a" can still start "abc".
  StopChecker checker(WithStops({"abc"}), {kEos});
  EXPECT_EQ(checker.Push(kText, "a").text_to_emit, "");
  EXPECT_EQ(checker.Push(kText, "b").text_to_emit, "");
  EXPECT_EQ(checker.Push(kText, "a").text_to_emit, "ab");
  EXPECT_EQ(checker.Push(kText, "b").text_to_emit, "");
  const StopUpdate last = checker.Push(kText, "c");
  EXPECT_EQ(last.text_to_emit, "");
  ASSERT_TRUE(last.finish);
  EXPECT_EQ(last.finish->stop_string, "abc");
  // In one piece the result is the same.
  EXPECT_EQ(Feed(WithStops({"abc"}), {"ababc"}).text, "ab");
  EXPECT_EQ(Feed(WithStops({"aab"}), {"a", "a", "a", "b"}).text, "a");
}

TEST(StopCheckerTest, MultipleStopStrings) {
  const RunResult result = Feed(WithStops({"foo", "bar"}), {"xxb", "arfoo"});
  EXPECT_EQ(result.text, "xx");
  EXPECT_EQ(result.finish->stop_string, "bar");
  // The stop string that ends first wins, even if another started earlier.
  const RunResult earliest = Feed(WithStops({"abcd", "bc"}), {"abcd"});
  EXPECT_EQ(earliest.text, "a");
  EXPECT_EQ(earliest.finish->stop_string, "bc");
  // On the same end, the longer one wins, so none of it is shown.
  const RunResult longest = Feed(WithStops({"bc", "abc"}), {"xabc"});
  EXPECT_EQ(longest.text, "x");
  EXPECT_EQ(longest.finish->stop_string, "abc");
}

TEST(StopCheckerTest, ResultDoesNotDependOnTokenization) {
  const std::string text = "The answer is 42.\nUser: thanks\nAssistant: ok";
  const SamplingParams params = WithStops({"\nUser:", "User", "42.\nX", "ok"});
  const RunResult whole = Feed(params, {text});
  // "User" ends before "\nUser:" does, so it wins; "42.\nX" never completes.
  EXPECT_EQ(whole.text, "The answer is 42.\n");
  EXPECT_EQ(whole.finish->stop_string, "User");
  for (size_t width = 1; width <= 7; ++width) {
    std::vector<std::string> pieces;
    for (size_t i = 0; i < text.size(); i += width) pieces.push_back(text.substr(i, width));
    const RunResult split = Feed(params, pieces);
    EXPECT_EQ(split.text, whole.text) << width;
    EXPECT_EQ(split.finish->stop_string, whole.finish->stop_string) << width;
  }
}

TEST(StopCheckerTest, HoldsBackLessThanTheLongestStopString) {
  StopChecker checker(WithStops({"abcdef", "xyz"}), {kEos});
  std::string emitted;
  for (char c : std::string("abcdeabcdxyabcde")) {
    emitted += checker.Push(kText, std::string(1, c)).text_to_emit;
    EXPECT_LT(checker.held_back_bytes(), 6u);
  }
  EXPECT_EQ(emitted, "abcdeabcdxy");
  EXPECT_EQ(checker.Flush(), "abcde");
}

TEST(StopCheckerTest, HeldBackTextIsEmittedAtLengthStop) {
  StopChecker checker(WithStops({"abc"}, /*max_tokens=*/2), {kEos});
  EXPECT_EQ(checker.Push(kText, "xa").text_to_emit, "x");
  const StopUpdate last = checker.Push(kText, "b");
  EXPECT_EQ(last.text_to_emit, "ab");
  ASSERT_TRUE(last.finish);
  EXPECT_EQ(last.finish->kind, FinishKind::kLength);
  EXPECT_EQ(last.finish->Name(), "length");
  EXPECT_FALSE(last.finish->stop_string.has_value());
  EXPECT_FALSE(last.finish->stop_token_id.has_value());
  EXPECT_TRUE(checker.finished());
  EXPECT_EQ(checker.Flush(), "");
}

TEST(StopCheckerTest, StopStringOnTheLastTokenIsStopNotLength) {
  const RunResult result = Feed(WithStops({"end"}, /*max_tokens=*/2), {"the e", "nd"});
  EXPECT_EQ(result.text, "the ");
  EXPECT_EQ(result.finish->kind, FinishKind::kStop);
}

TEST(StopCheckerTest, MaxTokensCountsEveryToken) {
  StopChecker checker(WithStops({}, /*max_tokens=*/3), {kEos});
  EXPECT_FALSE(checker.Push(kText, "").finish);  // a token with no text yet still counts
  EXPECT_FALSE(checker.Push(kText, "a").finish);
  const StopUpdate last = checker.Push(kText, "b");
  EXPECT_EQ(last.text_to_emit, "b");
  ASSERT_TRUE(last.finish);
  EXPECT_EQ(last.finish->kind, FinishKind::kLength);
  EXPECT_EQ(checker.num_tokens(), 3);
}

TEST(StopCheckerTest, FlushReturnsHeldTextWhenEndedFromOutside) {
  StopChecker checker(WithStops({"abc"}), {kEos});
  EXPECT_EQ(checker.Push(kText, "xab").text_to_emit, "x");
  EXPECT_EQ(checker.held_back_bytes(), 2u);
  EXPECT_EQ(checker.Flush(), "ab");
  EXPECT_TRUE(checker.finished());
  EXPECT_EQ(checker.Flush(), "");
}

TEST(StopCheckerTest, EosStopsAndReleasesHeldText) {
  StopChecker checker(WithStops({"abc"}), {kEos, 7});
  EXPECT_EQ(checker.Push(kText, "xa").text_to_emit, "x");
  const StopUpdate update = checker.Push(7, "</s>");
  EXPECT_EQ(update.text_to_emit, "a");  // the EOS token's own text is dropped
  ASSERT_TRUE(update.finish);
  EXPECT_EQ(update.finish->Name(), "stop");
  EXPECT_EQ(update.finish->stop_token_id, 7);
  EXPECT_TRUE(update.finish->eos);
  EXPECT_EQ(checker.Flush(), "");
}

TEST(StopCheckerTest, IgnoreEosKeepsGoingUntilLength) {
  SamplingParams params = WithStops({}, /*max_tokens=*/3);
  params.ignore_eos = true;
  StopChecker checker(params, {kEos});
  EXPECT_FALSE(checker.Push(kText, "a").finish);
  const StopUpdate eos = checker.Push(kEos, "</s>");
  EXPECT_FALSE(eos.finish);
  EXPECT_EQ(eos.text_to_emit, "</s>");
  const StopUpdate last = checker.Push(kEos, "");
  ASSERT_TRUE(last.finish);
  EXPECT_EQ(last.finish->kind, FinishKind::kLength);
}

TEST(StopCheckerTest, StopTokenIdsStopEvenWithIgnoreEos) {
  SamplingParams params = WithStops({});
  params.stop_token_ids = {42};
  params.ignore_eos = true;
  StopChecker checker(params, {kEos});
  EXPECT_FALSE(checker.Push(kEos, "").finish);
  const StopUpdate update = checker.Push(42, "\n\n");
  ASSERT_TRUE(update.finish);
  EXPECT_EQ(update.finish->kind, FinishKind::kStop);
  EXPECT_EQ(update.finish->stop_token_id, 42);
  EXPECT_FALSE(update.finish->eos);
  EXPECT_EQ(update.text_to_emit, "");  // a stop token's text is not output
}

TEST(StopCheckerTest, StopTokenBeatsLengthOnTheLastToken) {
  StopChecker checker(WithStops({}, /*max_tokens=*/1), {kEos});
  const StopUpdate update = checker.Push(kEos, "");
  ASSERT_TRUE(update.finish);
  EXPECT_EQ(update.finish->kind, FinishKind::kStop);
}

TEST(StopCheckerTest, MultiByteStopString) {
  const RunResult result = Feed(WithStops({"终止"}), {"好", "终", "止了"});
  EXPECT_EQ(result.text, "好");
  EXPECT_EQ(result.finish->stop_string, "终止");
}

TEST(StopCheckerTest, EmptyAndDuplicateStopStringsAreHarmless) {
  const RunResult result = Feed(WithStops({"", "ab", "ab"}), {"xyz", "cab"});
  EXPECT_EQ(result.text, "xyzc");
  EXPECT_EQ(result.finish->stop_string, "ab");
}

TEST(StopCheckerTest, CopiesAreIndependent) {
  StopChecker checker(WithStops({"abc"}), {kEos});
  EXPECT_EQ(checker.Push(kText, "ab").text_to_emit, "");
  StopChecker copy = checker;
  EXPECT_TRUE(checker.Push(kText, "c").finish);
  const StopUpdate other = copy.Push(kText, "d");
  EXPECT_FALSE(other.finish);
  EXPECT_EQ(other.text_to_emit, "abd");
}

TEST(StopCheckerDeathTest, PushAfterFinishIsABug) {
  StopChecker checker(WithStops({}, /*max_tokens=*/1), {kEos});
  EXPECT_TRUE(checker.Push(kText, "a").finish);
  EXPECT_DEATH(checker.Push(kText, "b"), "CHECK failed");
}

}  // namespace
}  // namespace strata::engine
