#include "engine/tokenizer/incremental_detokenizer.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/unicode_text.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/mocks/piece_tokenizer.h"

namespace strata::engine {
namespace {

using strata::testing::PieceTokenizer;

const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD

constexpr std::string_view kSentencePieceChain = R"({"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";
constexpr std::string_view kByteLevel = R"({"type": "ByteLevel"})";
constexpr std::string_view kMetaspace =
    R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"})";

struct Streamed {
  std::vector<std::string> pieces;  // one per Push, then Finish's
  std::string text;
};

Streamed Stream(const Tokenizer& tokenizer, const std::vector<TokenId>& ids, bool skip) {
  IncrementalDetokenizer detokenizer(tokenizer, skip);
  Streamed out;
  for (TokenId id : ids) {
    absl::StatusOr<std::string> piece = detokenizer.Push(id);
    EXPECT_TRUE(piece.ok()) << piece.status();
    out.pieces.push_back(piece.value_or(""));
  }
  absl::StatusOr<std::string> rest = detokenizer.Finish();
  EXPECT_TRUE(rest.ok()) << rest.status();
  out.pieces.push_back(rest.value_or(""));
  for (const std::string& piece : out.pieces) {
    EXPECT_TRUE(IsValidUtf8(piece)) << "broken UTF-8 emitted: " << piece;
    out.text += piece;
  }
  return out;
}

// Streams `ids` and checks the concatenation against Decode(all ids).
void ExpectStreamMatchesDecode(const Tokenizer& tokenizer, const std::vector<TokenId>& ids,
                               bool skip) {
  absl::StatusOr<std::string> whole = tokenizer.Decode(ids, skip);
  ASSERT_TRUE(whole.ok()) << whole.status();
  ASSERT_TRUE(IsValidUtf8(*whole));
  EXPECT_EQ(Stream(tokenizer, ids, skip).text, *whole);
}

std::vector<TokenId> Ids(PieceTokenizer& tokenizer, const std::vector<std::string>& pieces) {
  std::vector<TokenId> ids;
  for (const std::string& piece : pieces) ids.push_back(tokenizer.Id(piece));
  return ids;
}

TEST(IncrementalDetokenizerTest, SentencePieceWordsStreamWithTheirSpaces) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  auto ids = Ids(tokenizer, {"▁Hello", "▁world", "!", "▁How", "▁are", "▁you"});
  Streamed out = Stream(tokenizer, ids, false);
  EXPECT_EQ(out.pieces,
            (std::vector<std::string>{"Hello", " world", "!", " How", " are", " you", ""}));
}

TEST(IncrementalDetokenizerTest, PrimedWithAPromptKeepsTheFirstOutputSpace) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  auto prompt = Ids(tokenizer, {"▁Once", "▁upon", "▁a", "▁time", "▁there", "▁was"});
  auto output = Ids(tokenizer, {"▁a", "▁king", "."});
  IncrementalDetokenizer detokenizer(tokenizer, false, prompt);
  std::string streamed;
  for (TokenId id : output) streamed += detokenizer.Push(id).value_or("<error>");
  streamed += detokenizer.Finish().value_or("<error>");
  EXPECT_EQ(streamed, " a king.");  // unprimed, the leading space would be stripped
  std::vector<TokenId> all = prompt;
  all.insert(all.end(), output.begin(), output.end());
  EXPECT_EQ(*tokenizer.Decode(prompt, false) + streamed, *tokenizer.Decode(all, false));
}

TEST(IncrementalDetokenizerTest, SentencePieceLeadingSpaceTokenIsStrippedOnce) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  auto ids = Ids(tokenizer, {"▁", "▁leading", "▁", "▁", "▁space"});
  Streamed out = Stream(tokenizer, ids, false);
  EXPECT_EQ(out.text, " leading   space");
  ExpectStreamMatchesDecode(tokenizer, ids, false);
}

TEST(IncrementalDetokenizerTest, ByteFallbackEmojiWaitsForTheWholeCharacter) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  auto ids = Ids(tokenizer, {"▁hi", "▁", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "<0xE4>", "<0xBD>",
                             "<0xA0>", "!"});
  Streamed out = Stream(tokenizer, ids, false);
  EXPECT_EQ(out.pieces,
            (std::vector<std::string>{"hi", " ", "", "", "", "😀", "", "", "你", "!", ""}));
}

TEST(IncrementalDetokenizerTest, ByteLevelCharacterSplitAcrossTokens) {
  PieceTokenizer tokenizer(kByteLevel, {});
  // "é" (C3 A9) then "😀" split 1+3, then "日" (E6 97 A5) split 2+1.
  auto ids = Ids(tokenizer, {BytesToByteLevel("a\xC3"), BytesToByteLevel("\xA9\xF0"),
                             BytesToByteLevel("\x9F\x98\x80 "), BytesToByteLevel("\xE6\x97"),
                             BytesToByteLevel("\xA5")});
  Streamed out = Stream(tokenizer, ids, false);
  EXPECT_EQ(out.pieces, (std::vector<std::string>{"a", "é", "😀 ", "", "日", ""}));
}

TEST(IncrementalDetokenizerTest, MetaspaceFirstTokenRuleAppliesOnlyAtTheStart) {
  PieceTokenizer tokenizer(kMetaspace, {});
  auto ids = Ids(tokenizer, {"▁Hey", "▁▁x", "▁", "y"});
  Streamed out = Stream(tokenizer, ids, false);
  EXPECT_EQ(out.text, "Hey  x y");
  ExpectStreamMatchesDecode(tokenizer, ids, false);
}

TEST(IncrementalDetokenizerTest, SkippedSpecialTokensKeepTheSpaces) {
  PieceTokenizer tokenizer(kSentencePieceChain, {"<s>", "</s>"}, {0, 1});
  auto ids = Ids(tokenizer, {"<s>", "▁a", "</s>", "</s>", "▁b", "<s>", "▁c"});
  EXPECT_EQ(Stream(tokenizer, ids, true).text, "a b c");
  ExpectStreamMatchesDecode(tokenizer, ids, true);
  // Kept, they are text like any other piece.
  EXPECT_EQ(Stream(tokenizer, ids, false).text, "<s> a</s></s> b<s> c");
  ExpectStreamMatchesDecode(tokenizer, ids, false);
}

TEST(IncrementalDetokenizerTest, FinishReplacesACutOffCharacter) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  auto ids = Ids(tokenizer, {"▁ok", "<0xF0>", "<0x9F>"});
  Streamed out = Stream(tokenizer, ids, false);
  EXPECT_EQ(out.pieces, (std::vector<std::string>{"ok", "", "", kFffd}));
}

TEST(IncrementalDetokenizerTest, InvalidBytesBecomeReplacementCharacters) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  // A bad run is one U+FFFD per byte; it is held while the run may grow,
  // then released: never more than a few ids late.
  auto ids = Ids(tokenizer, {"▁a", "<0xFF>", "▁b"});
  EXPECT_EQ(Stream(tokenizer, ids, false).pieces,
            (std::vector<std::string>{"a", "", kFffd + " b", ""}));
  std::vector<TokenId> flood(12, tokenizer.Id("<0xFF>"));
  Streamed out = Stream(tokenizer, flood, false);
  std::string twelve;
  for (int i = 0; i < 12; ++i) twelve += kFffd;
  EXPECT_EQ(out.text, twelve);
  EXPECT_EQ(out.pieces[4], kFffd + kFffd + kFffd + kFffd + kFffd);
}

TEST(IncrementalDetokenizerTest, RewrittenTextStillStreamsValidUtf8) {
  // "你" streams once complete, but a further lone byte and a plain piece
  // make the reference turn the whole run into U+FFFDs. What was sent stays
  // sent; the rest resumes on a character boundary.
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  auto ids = Ids(tokenizer, {"<0xE4>", "<0xBD>", "<0xA0>", "<0xE5>", "x"});
  Streamed out = Stream(tokenizer, ids, false);
  EXPECT_EQ(out.pieces[2], "你");
  EXPECT_EQ(out.text, "你" + kFffd + kFffd + kFffd + "x");
}

TEST(IncrementalDetokenizerTest, ErrorsLeaveTheStreamUsable) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  auto ids = Ids(tokenizer, {"▁a", "▁b"});
  IncrementalDetokenizer detokenizer(tokenizer, false);
  EXPECT_EQ(detokenizer.Push(ids[0]).value_or("?"), "a");
  EXPECT_EQ(detokenizer.Push(999).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(detokenizer.Push(ids[1]).value_or("?"), " b");
  EXPECT_EQ(detokenizer.Finish().value_or("?"), "");
  EXPECT_EQ(detokenizer.Push(ids[0]).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(detokenizer.Finish().value_or("?"), "");
}

TEST(IncrementalDetokenizerTest, WindowStaysSmallOnLongStreams) {
  PieceTokenizer tokenizer(kSentencePieceChain, {});
  std::vector<std::string> pieces;
  for (int i = 0; i < 7 * 400; ++i) {
    pieces.push_back(i % 7 == 3 ? "<0xC3>" : i % 7 == 4 ? "<0xA9>" : absl::StrCat("▁w", i % 5));
  }
  auto ids = Ids(tokenizer, pieces);
  ExpectStreamMatchesDecode(tokenizer, ids, false);
  // Decode(all) above asked for everything; reset by checking a fresh fake.
  PieceTokenizer fresh(kSentencePieceChain, {});
  auto fresh_ids = Ids(fresh, pieces);
  Stream(fresh, fresh_ids, false);
  EXPECT_LE(fresh.longest_span(), 4u);
}

// Random streams whose full decode is valid UTF-8: characters of 1-4 bytes
// cut into byte-level pieces at random points, or spelled as byte-fallback
// pieces, with SentencePiece spaces and special tokens in between.
TEST(IncrementalDetokenizerTest, RandomStreamsMatchDecode) {
  const std::vector<std::string> chars = {"a", " ", "é", "ß", "€", "你", "😀", "\n", "👍🏽"};
  std::mt19937 rng(1234);
  for (int round = 0; round < 200; ++round) {
    const bool byte_level = round % 2 == 0;
    PieceTokenizer tokenizer(byte_level ? kByteLevel : kSentencePieceChain, {"<|s|>"}, {0});
    std::vector<TokenId> ids;
    std::string pending;  // byte-level bytes not yet cut into pieces
    auto cut = [&](bool all) {
      while (pending.size() > (all ? 0 : 4)) {
        size_t take = std::min<size_t>(1 + rng() % 4, pending.size());
        ids.push_back(tokenizer.Id(BytesToByteLevel(pending.substr(0, take))));
        pending.erase(0, take);
      }
    };
    for (int i = 0; i < 12; ++i) {
      const std::string& ch = chars[rng() % chars.size()];
      if (byte_level) {
        // Specials may land inside a character here: the whole byte string
        // is decoded lossily, so that is still a prefix-stable decode.
        pending += ch;
        cut(false);
        if (rng() % 6 == 0) ids.push_back(0);
        continue;
      }
      // Between byte-fallback pieces a kept special would end the byte run
      // and retroactively spoil it, so specials go between characters.
      if (rng() % 6 == 0) ids.push_back(0);
      for (char byte : ch) {
        ids.push_back(tokenizer.Id(
            byte == ' ' ? std::string("▁")
                        : absl::StrCat(
                              "<0x", absl::Hex(static_cast<uint8_t>(byte), absl::kZeroPad2), ">")));
      }
    }
    cut(true);
    for (bool skip : {false, true}) {
      SCOPED_TRACE(absl::StrCat("round ", round, " skip ", skip));
      ExpectStreamMatchesDecode(tokenizer, ids, skip);
    }
  }
}

// ---- The real tokenizers, on the reference cases (emoji, CJK, accents) ----

class RealTokenizerStreamTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealTokenizerStreamTest, StreamingEqualsDecodeForEveryCase) {
  const std::filesystem::path dir =
      std::filesystem::path(STRATA_FETCHED_DATA_DIR) / "tokenizers" / GetParam();
  if (!std::filesystem::exists(dir / "tokenizer.json")) {
    FAIL() << "missing test data: run scripts/fetch_test_data.sh " << STRATA_FETCHED_DATA_DIR;
  }
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  std::ifstream in(std::filesystem::path(STRATA_TEST_DATA_DIR) / "tokenizers" /
                   (GetParam() + "-cases.json"));
  const nlohmann::json cases = nlohmann::json::parse(in);
  int checked = 0;
  for (const char* group : {"cases", "with_special_tokens"}) {
    for (const auto& c : cases[group]) {
      const std::vector<TokenId> ids = c["ids"].get<std::vector<TokenId>>();
      for (bool skip : {false, true}) {
        SCOPED_TRACE(absl::StrCat(group, " skip ", skip, ": ", c["text"].get<std::string>()));
        ExpectStreamMatchesDecode(**tokenizer, ids, skip);
        ++checked;
      }
      if (c.contains("decoded")) {
        EXPECT_EQ(Stream(**tokenizer, ids, false).text, c["decoded"].get<std::string>());
      }
    }
  }
  EXPECT_GE(checked, 90);
}

INSTANTIATE_TEST_SUITE_P(Fetched, RealTokenizerStreamTest,
                         ::testing::Values("llama3", "qwen3", "mistral-spm"));

}  // namespace
}  // namespace strata::engine
