#include "engine/tokenizer/decoder.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/byte_level.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

using ::testing::HasSubstr;

const std::string kFffd = "\xEF\xBF\xBD";  // U+FFFD

std::unique_ptr<Decoder> MakeDecoder(std::string_view json_text) {
  absl::StatusOr<std::unique_ptr<Decoder>> decoder =
      Decoder::FromJson(nlohmann::json::parse(json_text));
  EXPECT_TRUE(decoder.ok()) << decoder.status();
  return decoder.ok() ? *std::move(decoder) : nullptr;
}

absl::Status FromJsonStatus(std::string_view json_text) {
  return Decoder::FromJson(nlohmann::json::parse(json_text)).status();
}

// The decoder Mistral / Llama 2 / aidreams260K ship.
constexpr std::string_view kSentencePieceChain = R"({"type": "Sequence", "decoders": [
    {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
    {"type": "ByteFallback"}, {"type": "Fuse"},
    {"type": "Strip", "content": " ", "start": 1, "stop": 0}]})";

// ---- Real tokenizer.json files against the reference library's decodes ----

nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

// id -> piece from model.vocab plus added_tokens, independent of the encoder.
std::vector<std::string> PiecesById(const nlohmann::json& tokenizer) {
  std::vector<std::string> pieces;
  auto put = [&pieces](size_t id, const std::string& piece) {
    if (id >= pieces.size()) pieces.resize(id + 1);
    pieces[id] = piece;
  };
  for (const auto& [piece, id] : tokenizer["model"]["vocab"].items()) put(id.get<size_t>(), piece);
  for (const auto& added : tokenizer["added_tokens"]) {
    put(added["id"].get<size_t>(), added["content"].get<std::string>());
  }
  return pieces;
}

std::vector<std::string> Pieces(const std::vector<std::string>& by_id, const nlohmann::json& ids) {
  std::vector<std::string> out;
  for (const auto& id : ids) out.push_back(by_id.at(id.get<size_t>()));
  return out;
}

class RealTokenizerDecodeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RealTokenizerDecodeTest, MatchesReferenceDecodeForEveryCase) {
  const std::filesystem::path dir =
      std::filesystem::path(STRATA_FETCHED_DATA_DIR) / "tokenizers" / GetParam();
  if (!std::filesystem::exists(dir / "tokenizer.json")) {
    FAIL() << "missing test data: run scripts/fetch_test_data.sh " << STRATA_FETCHED_DATA_DIR;
  }
  const nlohmann::json tokenizer = ReadJson(dir / "tokenizer.json");
  const nlohmann::json cases = ReadJson(std::filesystem::path(STRATA_TEST_DATA_DIR) / "tokenizers" /
                                        (GetParam() + "-cases.json"));
  absl::StatusOr<std::unique_ptr<Decoder>> decoder = Decoder::FromJson(tokenizer["decoder"]);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  const std::vector<std::string> by_id = PiecesById(tokenizer);
  ASSERT_GE(cases["cases"].size(), 40u);
  for (const auto& c : cases["cases"]) {
    // The cases were decoded with special tokens kept: "<|im_start|>" and
    // "<s>" typed in the text come back, through the decoder like any piece.
    EXPECT_EQ((*decoder)->Decode(Pieces(by_id, c["ids"])), c["decoded"].get<std::string>())
        << "text: " << c["text"];
  }
}

INSTANTIATE_TEST_SUITE_P(Fetched, RealTokenizerDecodeTest,
                         ::testing::Values("llama3", "qwen3", "mistral-spm"));

TEST(DecoderTest, SentencePieceKeepsSpecialTokensAsText) {
  // Mistral case "<s>[INST] hi [/INST]" decodes with a space after "<s>": the
  // added token is a piece like any other, and Strip only touches the first.
  auto decoder = MakeDecoder(kSentencePieceChain);
  EXPECT_EQ(decoder->Decode({"<s>", "\u2581[", "INST", "]"}), "<s> [INST]");
  EXPECT_EQ(decoder->Decode({"\u2581[", "INST", "]"}), "[INST]");
}

TEST(DecoderTest, Aidreams260KGreedyReference) {
  const std::filesystem::path model =
      std::filesystem::path(STRATA_SOURCE_DIR) / "models" / "aidreams260K" / "tokenizer.json";
  const nlohmann::json tokenizer = ReadJson(model);
  const nlohmann::json reference = ReadJson(std::filesystem::path(STRATA_TEST_DATA_DIR) / "models" /
                                            "aidreams260K" / "reference_greedy.json");
  absl::StatusOr<std::unique_ptr<Decoder>> decoder = Decoder::FromJson(tokenizer["decoder"]);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  const std::vector<std::string> by_id = PiecesById(tokenizer);
  EXPECT_EQ((*decoder)->Decode(Pieces(by_id, reference["greedy_new_ids_60"])),
            reference["text"].get<std::string>());
  // Its vocabulary is byte-fallback: ids 3..258 are <0x00>..<0xFF>.
  EXPECT_EQ((*decoder)->Decode({by_id[3 + 0xE4], by_id[3 + 0xBD], by_id[3 + 0xA0]}), "你");
}

// ---- Individual decoders, with the reference library's semantics ----

TEST(DecoderTest, NullDecoderConcatenates) {
  auto decoder = MakeDecoder("null");
  EXPECT_EQ(decoder->Decode({"ab", " c", ""}), "ab c");
  EXPECT_EQ(decoder->Decode({}), "");
}

TEST(DecoderTest, ByteLevelMapsPiecesToBytes) {
  auto decoder = MakeDecoder(R"({"type": "ByteLevel", "add_prefix_space": true,
                                 "trim_offsets": true, "use_regex": true})");
  EXPECT_EQ(decoder->Decode({"Hello", "\u0120world", "\u010A"}), "Hello world\n");
  // "你" is E4 BD A0; split across three pieces it still comes back whole.
  EXPECT_EQ(decoder->Decode(
                {BytesToByteLevel("\xE4"), BytesToByteLevel("\xBD"), BytesToByteLevel("\xA0")}),
            "你");
  // A piece with a character outside the byte table is taken as its UTF-8.
  EXPECT_EQ(decoder->Decode({"<|eot_id|>", "\u0120", "你", "!"}), "<|eot_id|> 你!");
}

TEST(DecoderTest, ByteLevelIsLossyOverTheWholeByteString) {
  auto decoder = MakeDecoder(R"({"type": "ByteLevel"})");
  // E4 BD then 'a': one U+FFFD for the maximal ill-formed subpart E4 BD,
  // not one per piece or per byte.
  EXPECT_EQ(decoder->Decode({BytesToByteLevel("\xE4"), BytesToByteLevel("\xBD"), "a"}),
            kFffd + "a");
  // 0xFF is never valid; E0 80 is an overlong start: two subparts.
  EXPECT_EQ(decoder->Decode({BytesToByteLevel("x\xFF\xE0\x80y")}),
            "x" + kFffd + kFffd + kFffd + "y");
  // A character cut off at the very end stays raw for streaming.
  EXPECT_EQ(decoder->Decode({"a", BytesToByteLevel("\xF0\x9F\x98")}), "a\xF0\x9F\x98");
}

TEST(DecoderTest, ByteFallbackJoinsValidRuns) {
  auto decoder = MakeDecoder(R"({"type": "ByteFallback"})");
  EXPECT_EQ(decoder->Decode({"a", "<0xE4>", "<0xBD>", "<0xA0>", "b"}), "a你b");
  EXPECT_EQ(decoder->Decode({"<0x0a>", "<0x0A>"}), "\n\n");  // either hex case
  EXPECT_EQ(decoder->Decode({"<0x+A>"}), "\n");              // Rust's from_str_radix takes a '+'
  EXPECT_EQ(decoder->Decode({"<0xGG>", "<0x0A", "<0x0AA>"}), "<0xGG><0x0A<0x0AA>");
}

TEST(DecoderTest, ByteFallbackInvalidRunIsOneReplacementPerByte) {
  auto decoder = MakeDecoder(R"({"type": "ByteFallback"})");
  // Unlike from_utf8_lossy, every byte of a bad run becomes U+FFFD, even the
  // ones that formed a valid character.
  EXPECT_EQ(decoder->Decode({"<0xE4>", "<0xBD>", "<0xA0>", "<0xFF>", "x"}),
            kFffd + kFffd + kFffd + kFffd + "x");
  EXPECT_EQ(decoder->Decode({"<0xE4>", "<0xBD>", "x"}), kFffd + kFffd + "x");
  // Cut off at the end of the input: kept raw so that streaming can wait.
  EXPECT_EQ(decoder->Decode({"x", "<0x41>", "<0xE4>", "<0xBD>"}), "xA\xE4\xBD");
  // ... but an invalid byte in the final run still spoils all of it.
  EXPECT_EQ(decoder->Decode({"<0xFF>", "<0xE4>"}), kFffd + kFffd);
}

TEST(DecoderTest, ReplaceAllOccurrencesPerToken) {
  auto decoder = MakeDecoder(R"({"type": "Replace", "pattern": {"String": "ab"}, "content": "-"})");
  EXPECT_EQ(decoder->Decode({"abcab", "aab", "a", "b"}), "-c-a-ab");
}

TEST(DecoderTest, StripCountsPerToken) {
  auto decoder = MakeDecoder(R"({"type": "Strip", "content": "x", "start": 2, "stop": 1})");
  // Without Fuse, Strip acts on every token.
  EXPECT_EQ(decoder->Decode({"xxxaxx", "xa", "ax", "x", "xx", "xxx"}), "xaxaa");
  auto multibyte = MakeDecoder(R"({"type": "Strip", "content": "▁", "start": 1, "stop": 2})");
  EXPECT_EQ(multibyte->Decode({"▁▁a▁▁▁"}), "▁a▁");
}

TEST(DecoderTest, FuseThenStripTouchesOnlyTheStart) {
  auto decoder = MakeDecoder(kSentencePieceChain);
  EXPECT_EQ(decoder->Decode({"\u2581Hello", "\u2581world"}), "Hello world");
  EXPECT_EQ(decoder->Decode({"\u2581", "\u2581leading", "\u2581space"}), " leading space");
  EXPECT_EQ(decoder->Decode({"\u2581", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "!"}), "😀!");
}

TEST(DecoderTest, MetaspacePrependSchemes) {
  auto always = MakeDecoder(R"({"type": "Metaspace", "replacement": "▁",
                                "prepend_scheme": "always", "split": true})");
  EXPECT_EQ(always->Decode({"▁Hey", "▁friend", "▁"}), "Hey friend ");
  // The reference drops every replacement in the first token, not just one.
  EXPECT_EQ(always->Decode({"▁▁a▁b", "▁c"}), "ab c");
  auto first =
      MakeDecoder(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"})");
  EXPECT_EQ(first->Decode({"▁Hey", "▁friend"}), "Hey friend");
  auto never =
      MakeDecoder(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"})");
  EXPECT_EQ(never->Decode({"▁Hey", "▁friend"}), " Hey friend");
  // Older files: add_prefix_space false means "never".
  auto legacy =
      MakeDecoder(R"({"type": "Metaspace", "replacement": "_", "add_prefix_space": false})");
  EXPECT_EQ(legacy->Decode({"_a", "_b"}), " a b");
}

TEST(DecoderTest, SequenceRunsStepsInOrder) {
  auto decoder = MakeDecoder(R"({"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "a"}, "content": "b"},
      {"type": "Replace", "pattern": {"String": "b"}, "content": "c"}]})");
  EXPECT_EQ(decoder->Decode({"ab", "x"}), "ccx");
  auto empty = MakeDecoder(R"({"type": "Sequence", "decoders": []})");
  EXPECT_EQ(empty->Decode({"a", "b"}), "ab");
}

TEST(DecoderTest, UnsupportedTypesAreUnimplemented) {
  absl::Status status = FromJsonStatus(R"({"type": "WordPiece", "prefix": "##"})");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.message(), HasSubstr("WordPiece"));
  status =
      FromJsonStatus(R"({"type": "Sequence", "decoders": [{"type": "Fuse"}, {"type": "CTC"}]})");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.message(), HasSubstr("decoder.decoders[1]"));
  EXPECT_THAT(status.message(), HasSubstr("CTC"));
  status = FromJsonStatus(R"({"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "})");
  EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(status.message(), HasSubstr("Regex"));
}

TEST(DecoderTest, MalformedFieldsNameTheKey) {
  struct Case {
    std::string_view json;
    std::string_view key;
  };
  const Case cases[] = {
      {R"([1, 2])", "decoder"},
      {R"({"kind": "Fuse"})", "decoder.type"},
      {R"({"type": 7})", "decoder.type"},
      {R"({"type": "Strip", "content": " ", "stop": 0})", "decoder.start"},
      {R"({"type": "Strip", "content": " ", "start": -1, "stop": 0})", "decoder.start"},
      {R"({"type": "Strip", "content": "ab", "start": 1, "stop": 0})", "decoder.content"},
      {R"({"type": "Replace", "content": " "})", "decoder.pattern"},
      {R"({"type": "Replace", "pattern": {"String": 3}, "content": " "})",
       "decoder.pattern.String"},
      {R"({"type": "Replace", "pattern": {"String": ""}, "content": " "})",
       "decoder.pattern.String"},
      {R"({"type": "Replace", "pattern": {"String": "a"}})", "decoder.content"},
      {R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "sometimes"})",
       "decoder.prepend_scheme"},
      {R"({"type": "Metaspace", "replacement": ""})", "decoder.replacement"},
      {R"({"type": "ByteLevel", "add_prefix_space": "yes"})", "decoder.add_prefix_space"},
      {R"({"type": "Sequence"})", "decoder.decoders"},
      {R"({"type": "Sequence", "decoders": [{"type": "Strip"}]})", "decoder.decoders[0].content"},
  };
  for (const Case& c : cases) {
    absl::Status status = FromJsonStatus(c.json);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.json << ": " << status;
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("'", std::string(c.key), "'"))) << c.json;
  }
}

// ---- UTF-8 helpers ----

TEST(Utf8LossyTest, MatchesRustFromUtf8Lossy) {
  EXPECT_EQ(Utf8Lossy("plain ☃ 😀", false), "plain ☃ 😀");
  EXPECT_EQ(Utf8Lossy("\xFF", false), kFffd);
  EXPECT_EQ(Utf8Lossy("\xC0\xAF", false), kFffd + kFffd);              // overlong lead
  EXPECT_EQ(Utf8Lossy("\xE0\x80\xAF", false), kFffd + kFffd + kFffd);  // overlong 3-byte
  EXPECT_EQ(Utf8Lossy("\xED\xA0\x80", false), kFffd + kFffd + kFffd);  // surrogate
  EXPECT_EQ(Utf8Lossy("\xF4\x90\x80\x80", false), kFffd + kFffd + kFffd + kFffd);  // > U+10FFFF
  EXPECT_EQ(Utf8Lossy("\xF0\x9F\x98x", false), kFffd + "x");  // one maximal subpart
  EXPECT_EQ(Utf8Lossy("\xE2\x98", false), kFffd);
  EXPECT_EQ(Utf8Lossy("a\xE2\x98", true), "a\xE2\x98");
  EXPECT_EQ(Utf8Lossy("\xE0\x80", true), kFffd + kFffd);  // never completable: replaced
}

TEST(Utf8LossyTest, IncompleteTailLength) {
  EXPECT_EQ(IncompleteUtf8TailLength(""), 0u);
  EXPECT_EQ(IncompleteUtf8TailLength("abc"), 0u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\xE2"), 1u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\xE2\x98"), 2u);
  EXPECT_EQ(IncompleteUtf8TailLength("a\xE2\x98\x83"), 0u);
  EXPECT_EQ(IncompleteUtf8TailLength("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(IncompleteUtf8TailLength("\xF0\x9F\x98\x80"), 0u);
  EXPECT_EQ(IncompleteUtf8TailLength("\xE0\x80"), 0u);  // invalid, not incomplete
  EXPECT_EQ(IncompleteUtf8TailLength("\x98\x80"), 0u);  // stray continuation bytes
  EXPECT_EQ(IncompleteUtf8TailLength("\xFF"), 0u);
}

}  // namespace
}  // namespace strata::engine
