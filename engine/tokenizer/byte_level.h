// The GPT-2 byte <-> unicode table used by byte-level BPE (Llama 3, Qwen):
// every byte maps to a printable code point so that BPE runs on text.
#ifndef STRATA_ENGINE_TOKENIZER_BYTE_LEVEL_H_
#define STRATA_ENGINE_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace strata::engine {

// Each byte of `bytes` as the UTF-8 of its mapped code point.
std::string BytesToByteLevel(std::string_view bytes);

// The inverse: each code point of `text` (UTF-8) that is in the table becomes
// its byte. Returns nullopt if `text` holds a code point outside the table.
std::optional<std::string> ByteLevelToBytes(std::string_view text);

// The mapped code point of one byte.
char32_t ByteToCodePoint(uint8_t byte);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_BYTE_LEVEL_H_
