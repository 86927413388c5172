// Splits a Jinja template into text and tags, applying transformers'
// whitespace rules (trim_blocks, lstrip_blocks, `-` and `+` markers, the
// trailing newline dropped), and tokenizes each tag's contents. Used by
// jinja_parser.cc only. Pure functions, thread-safe.
#ifndef STRATA_ENGINE_TOKENIZER_JINJA_LEXER_H_
#define STRATA_ENGINE_TOKENIZER_JINJA_LEXER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace strata::engine::jinja {

struct Token {
  enum class Type { kName, kInt, kFloat, kString, kOperator };
  Type type = Type::kName;
  std::string text;  // name, operator, the unescaped string, or the number's digits
};

struct Segment {
  enum class Type { kText, kOutput, kStatement };  // comments are dropped
  Type type = Type::kText;
  int line = 1;               // where the segment starts in the source
  std::string text;           // kText, after whitespace control
  std::vector<Token> tokens;  // kOutput, kStatement
};

// INVALID_ARGUMENT "line N: ..." for an unclosed tag, comment or string, or
// a character no token starts with.
absl::StatusOr<std::vector<Segment>> Lex(std::string_view source);

}  // namespace strata::engine::jinja

#endif  // STRATA_ENGINE_TOKENIZER_JINJA_LEXER_H_
