#include "engine/tokenizer/byte_level.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

// The GPT-2 rule restated: printable Latin-1 bytes map to themselves.
bool IsPrintable(int byte) {
  return (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
         (byte >= 0xAE && byte <= 0xFF);
}

TEST(ByteLevelTest, PrintableBytesMapToThemselves) {
  int printable = 0;
  for (int byte = 0; byte < 256; ++byte) {
    if (!IsPrintable(byte)) continue;
    ++printable;
    EXPECT_EQ(ByteToCodePoint(static_cast<uint8_t>(byte)), static_cast<char32_t>(byte)) << byte;
  }
  EXPECT_EQ(printable, 188);
}

TEST(ByteLevelTest, OtherBytesMapInOrderFrom0x100) {
  // Well-known anchors: space is "Ġ", newline "Ċ", soft hyphen the last, "Ń".
  EXPECT_EQ(ByteToCodePoint(0x00), U'\u0100');
  EXPECT_EQ(ByteToCodePoint(' '), U'\u0120');
  EXPECT_EQ(ByteToCodePoint('\n'), U'\u010A');
  EXPECT_EQ(ByteToCodePoint(0x7F), U'\u0121');
  EXPECT_EQ(ByteToCodePoint(0x80), U'\u0122');
  EXPECT_EQ(ByteToCodePoint(0xA0), U'\u0142');
  EXPECT_EQ(ByteToCodePoint(0xAD), U'\u0143');
  char32_t expected = 0x100;
  std::set<char32_t> seen;
  for (int byte = 0; byte < 256; ++byte) {
    char32_t code_point = ByteToCodePoint(static_cast<uint8_t>(byte));
    EXPECT_TRUE(seen.insert(code_point).second) << "duplicate for byte " << byte;
    if (!IsPrintable(byte)) {
      EXPECT_EQ(code_point, expected++) << byte;
    }
  }
  EXPECT_EQ(expected, 0x144u);  // 68 remapped bytes
}

TEST(ByteLevelTest, BytesToByteLevelIsUtf8OfTheMappedCodePoints) {
  EXPECT_EQ(BytesToByteLevel(""), "");
  EXPECT_EQ(BytesToByteLevel("Hi there\n"), "Hi\xC4\xA0there\xC4\x8A");  // Ġ, Ċ
  EXPECT_EQ(BytesToByteLevel("\xC3\xA9"), "\xC3\x83\xC2\xA9");           // "é" -> "Ã©"
  EXPECT_EQ(BytesToByteLevel(std::string(1, '\0')), "\xC4\x80");
}

TEST(ByteLevelTest, RoundTripsEveryByte) {
  std::string all;
  for (int byte = 0; byte < 256; ++byte) all.push_back(static_cast<char>(byte));
  std::optional<std::string> back = ByteLevelToBytes(BytesToByteLevel(all));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, all);
  for (int byte = 0; byte < 256; ++byte) {
    std::string one(1, static_cast<char>(byte));
    EXPECT_EQ(ByteLevelToBytes(BytesToByteLevel(one)), one) << byte;
  }
}

TEST(ByteLevelTest, CodePointsOutsideTheTableAreRejected) {
  EXPECT_EQ(ByteLevelToBytes("\xC5\x84"), std::nullopt);      // U+0144, just past the table
  EXPECT_EQ(ByteLevelToBytes("ab\xC2\xA0"), std::nullopt);    // U+00A0 is remapped, not itself
  EXPECT_EQ(ByteLevelToBytes("\xC2\xAD"), std::nullopt);      // U+00AD likewise
  EXPECT_EQ(ByteLevelToBytes(" "), std::nullopt);             // space is "Ġ" in the table
  EXPECT_EQ(ByteLevelToBytes("\xD0\x80"), std::nullopt);      // U+0400
  EXPECT_EQ(ByteLevelToBytes("\xE4\xBD\xA0"), std::nullopt);  // 你
  EXPECT_EQ(ByteLevelToBytes("\xF0\x9F\x98\x80"), std::nullopt);
  EXPECT_EQ(ByteLevelToBytes("\xC4"), std::nullopt);  // truncated
  EXPECT_EQ(ByteLevelToBytes(""), std::string());
}

// Malformed UTF-8 must be rejected too, but ByteLevelToBytes reads any byte
// after a 0xC0-0xDF lead as a continuation and accepts overlong forms, so
// these inputs come back as bytes. Enable once byte_level.cc is fixed.
TEST(ByteLevelTest, MalformedUtf8IsRejected) {
  EXPECT_EQ(ByteLevelToBytes("\xC4"
                             "A"),
            std::nullopt);                                    // lead + ASCII: read as U+0101
  EXPECT_EQ(ByteLevelToBytes("\xC0\xA1"), std::nullopt);      // overlong "!"
  EXPECT_EQ(ByteLevelToBytes("\xC1\xA1"), std::nullopt);      // overlong "a"
  EXPECT_EQ(ByteLevelToBytes("\xC4\xC4\xA0"), std::nullopt);  // lead + lead
}

TEST(ByteLevelTest, EveryByteIsALlama3VocabularyPiece) {
  const std::filesystem::path path =
      std::filesystem::path(STRATA_FETCHED_DATA_DIR) / "tokenizers" / "llama3" / "tokenizer.json";
  if (!std::filesystem::exists(path)) {
    FAIL() << "missing test data: run scripts/fetch_test_data.sh " << STRATA_FETCHED_DATA_DIR;
  }
  std::ifstream in(path);
  const nlohmann::json vocab = nlohmann::json::parse(in)["model"]["vocab"];
  for (int byte = 0; byte < 256; ++byte) {
    const std::string piece = BytesToByteLevel(std::string(1, static_cast<char>(byte)));
    EXPECT_TRUE(vocab.contains(piece)) << "byte " << byte;
  }
  // And every vocabulary piece maps back to bytes (none holds a foreign character).
  for (const auto& [piece, id] : vocab.items()) {
    ASSERT_TRUE(ByteLevelToBytes(piece).has_value()) << piece << " " << id;
  }
}

}  // namespace
}  // namespace strata::engine
