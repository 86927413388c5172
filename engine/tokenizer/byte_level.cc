#include "engine/tokenizer/byte_level.h"

#include <array>

namespace strata::engine {
namespace {

struct ByteLevelTable {
  std::array<char32_t, 256> byte_to_code_point{};
  std::array<int16_t, 512> code_point_to_byte{};  // every mapped code point < 512
};

// Printable Latin-1 bytes map to themselves; the other 68 bytes map, in
// order, to U+0100 and up. This is the table byte-level BPE vocabularies use.
ByteLevelTable BuildTable() {
  ByteLevelTable table;
  table.code_point_to_byte.fill(-1);
  char32_t next_extra = 256;
  for (int byte = 0; byte < 256; ++byte) {
    bool printable = (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) ||
                     (byte >= 0xAE && byte <= 0xFF);
    char32_t code_point = printable ? static_cast<char32_t>(byte) : next_extra++;
    table.byte_to_code_point[byte] = code_point;
    table.code_point_to_byte[code_point] = static_cast<int16_t>(byte);
  }
  return table;
}

const ByteLevelTable& Table() {
  static const ByteLevelTable table = BuildTable();
  return table;
}

void AppendUtf8(char32_t code_point, std::string& out) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else {  // the table only holds code points below 0x800
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

}  // namespace

char32_t ByteToCodePoint(uint8_t byte) { return Table().byte_to_code_point[byte]; }

std::string BytesToByteLevel(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) AppendUtf8(ByteToCodePoint(static_cast<uint8_t>(c)), out);
  return out;
}

std::optional<std::string> ByteLevelToBytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    uint8_t lead = static_cast<uint8_t>(text[i]);
    char32_t code_point;
    if (lead < 0x80) {
      code_point = lead;
      i += 1;
    } else if (lead >= 0xC2 && lead <= 0xDF && i + 1 < text.size() &&
               (static_cast<uint8_t>(text[i + 1]) & 0xC0) == 0x80) {
      // 0xC0 and 0xC1 would be overlong encodings; a continuation must follow.
      code_point = (static_cast<char32_t>(lead & 0x1F) << 6) | (text[i + 1] & 0x3F);
      i += 2;
    } else {
      return std::nullopt;  // three- and four-byte code points are not in the table
    }
    if (code_point >= 512 || Table().code_point_to_byte[code_point] < 0) return std::nullopt;
    out.push_back(static_cast<char>(Table().code_point_to_byte[code_point]));
  }
  return out;
}

}  // namespace strata::engine
