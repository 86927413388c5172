// UTF-8 and Unicode-property helpers shared by the encode pipeline. All
// functions are pure and thread-safe.
#ifndef STRATA_ENGINE_TOKENIZER_UNICODE_TEXT_H_
#define STRATA_ENGINE_TOKENIZER_UNICODE_TEXT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace strata::engine {

// True if `text` is well-formed UTF-8 (no overlong forms, surrogates or code
// points above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Decodes the code point at `text[pos]` of valid UTF-8 and advances `pos`.
char32_t NextCodePoint(std::string_view text, size_t& pos);

// Decodes the last code point of non-empty valid UTF-8 `text`; `start` gets
// its byte offset.
char32_t LastCodePoint(std::string_view text, size_t& start);

void AppendUtf8(char32_t code_point, std::string& out);

// Rust's char::is_whitespace (the Unicode White_Space property), which the
// reference library uses for added tokens' lstrip/rstrip.
bool IsUnicodeWhitespace(char32_t code_point);

// Rust's char::is_alphanumeric, approximated by the general categories L* and
// N* (the reference library uses it for single_word added tokens).
bool IsUnicodeAlphanumeric(char32_t code_point);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_UNICODE_TEXT_H_
