#include "engine/tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace strata::engine::jinja {
namespace {

enum class RawKind { kText, kOutput, kStatement, kComment };

// A tag or text before whitespace control.
struct Raw {
  RawKind kind = RawKind::kText;
  int line = 1;
  std::string_view body;      // the text, or what is between the delimiters
  bool strip_before = false;  // {%- {{- {#-
  bool keep_before = false;   // {%+ : no lstrip_blocks
  bool strip_after = false;   // -%} -}} -#}
};

absl::Status LexError(int line, std::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", std::string(message)));
}

int LinesIn(std::string_view text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

// Where the tag opened at `start` (just past its delimiter) closes: the index
// of `close`, skipping string literals; npos if it never does.
size_t FindClose(std::string_view source, size_t start, std::string_view close) {
  char quote = 0;
  for (size_t i = start; i < source.size(); ++i) {
    const char c = source[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
    } else if (close != "#}" && (c == '\'' || c == '"')) {
      quote = c;
    } else if (source.compare(i, close.size(), close) == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

absl::StatusOr<std::vector<Raw>> Split(std::string_view source) {
  std::vector<Raw> raws;
  size_t pos = 0;
  int line = 1;
  while (pos < source.size()) {
    size_t open = source.find('{', pos);
    while (open != std::string_view::npos && open + 1 < source.size() && source[open + 1] != '{' &&
           source[open + 1] != '%' && source[open + 1] != '#') {
      open = source.find('{', open + 1);
    }
    if (open == std::string_view::npos || open + 1 >= source.size()) open = source.size();
    if (open > pos) {
      raws.push_back(
          {.kind = RawKind::kText, .line = line, .body = source.substr(pos, open - pos)});
      line += LinesIn(raws.back().body);
    }
    if (open == source.size()) break;
    const char kind = source[open + 1];
    Raw raw{.kind = kind == '{'   ? RawKind::kOutput
                    : kind == '%' ? RawKind::kStatement
                                  : RawKind::kComment,
            .line = line};
    const std::string_view close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
    size_t start = open + 2;
    if (start < source.size() && (source[start] == '-' || source[start] == '+')) {
      (source[start] == '-' ? raw.strip_before : raw.keep_before) = true;
      ++start;
    }
    const size_t end = FindClose(source, start, close);
    if (end == std::string_view::npos) {
      return LexError(line, absl::StrCat("unclosed '", std::string(source.substr(open, 2)), "'"));
    }
    size_t body_end = end;
    if (body_end > start && source[body_end - 1] == '-') {
      raw.strip_after = true;
      --body_end;
    }
    raw.body = source.substr(start, body_end - start);
    line += LinesIn(source.substr(open, end + 2 - open));
    raws.push_back(raw);
    pos = end + 2;
  }
  return raws;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Applies the whitespace rules to text `i` given its neighbours.
std::string ControlWhitespace(const std::vector<Raw>& raws, size_t i) {
  std::string_view text = raws[i].body;
  const bool first = i == 0;
  const Raw* prev = first ? nullptr : &raws[i - 1];
  const Raw* next = i + 1 < raws.size() ? &raws[i + 1] : nullptr;
  if (prev != nullptr && prev->strip_after) {
    while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  } else if (prev != nullptr && prev->kind != RawKind::kOutput) {
    // trim_blocks: the first newline after a block or comment tag goes.
    if (text.starts_with("\r\n")) {
      text.remove_prefix(2);
    } else if (text.starts_with("\n")) {
      text.remove_prefix(1);
    }
  }
  if (next != nullptr && next->strip_before) {
    while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  } else if (next != nullptr && next->kind != RawKind::kOutput && !next->keep_before) {
    // lstrip_blocks: spaces and tabs between a line's start and a block tag.
    size_t cut = text.size();
    while (cut > 0 && (text[cut - 1] == ' ' || text[cut - 1] == '\t')) --cut;
    const bool line_start = cut > 0 ? text[cut - 1] == '\n' : first;
    if (line_start) text = text.substr(0, cut);
  }
  return std::string(text);
}

// Decodes one string literal's escapes (Python's, as Jinja reads them).
absl::Status AppendEscape(std::string_view body, size_t& i, int line, std::string& out) {
  const char c = body[i];
  switch (c) {
    case 'n':
      out += '\n';
      return absl::OkStatus();
    case 't':
      out += '\t';
      return absl::OkStatus();
    case 'r':
      out += '\r';
      return absl::OkStatus();
    case '0':
      out += '\0';
      return absl::OkStatus();
    case '\\':
    case '\'':
    case '"':
      out += c;
      return absl::OkStatus();
    case '\n':
      return absl::OkStatus();
    case 'u': {
      if (i + 4 >= body.size()) {
        return LexError(line, "truncated \\u escape");
      }
      uint32_t code = 0;
      for (int k = 1; k <= 4; ++k) {
        const char h = body[i + k];
        code <<= 4;
        if (h >= '0' && h <= '9')
          code |= h - '0';
        else if (h >= 'a' && h <= 'f')
          code |= h - 'a' + 10;
        else if (h >= 'A' && h <= 'F')
          code |= h - 'A' + 10;
        else
          return LexError(line, "bad \\u escape");
      }
      i += 4;
      if (code < 0x80) {
        out += static_cast<char>(code);
      } else if (code < 0x800) {
        out += static_cast<char>(0xC0 | (code >> 6));
        out += static_cast<char>(0x80 | (code & 0x3F));
      } else {
        out += static_cast<char>(0xE0 | (code >> 12));
        out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (code & 0x3F));
      }
      return absl::OkStatus();
    }
    default:
      // Python keeps unknown escapes as written.
      out += '\\';
      out += c;
      return absl::OkStatus();
  }
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view body, int line) {
  static constexpr std::string_view kTwoCharOps[] = {"//", "**", "==", "!=", "<=", ">="};
  static constexpr std::string_view kOneCharOps = "+-*/%~|.,:()[]{}<>=";
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < body.size()) {
    const char c = body[i];
    if (IsSpace(c)) {
      if (c == '\n') ++line;
      ++i;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t end = i;
      while (end < body.size() &&
             (std::isalnum(static_cast<unsigned char>(body[end])) || body[end] == '_'))
        ++end;
      tokens.push_back({Token::Type::kName, std::string(body.substr(i, end - i))});
      i = end;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t end = i;
      while (end < body.size() && std::isdigit(static_cast<unsigned char>(body[end]))) ++end;
      bool is_float = false;
      if (end + 1 < body.size() && body[end] == '.' &&
          std::isdigit(static_cast<unsigned char>(body[end + 1]))) {
        is_float = true;
        ++end;
        while (end < body.size() && std::isdigit(static_cast<unsigned char>(body[end]))) ++end;
      }
      tokens.push_back({is_float ? Token::Type::kFloat : Token::Type::kInt,
                        std::string(body.substr(i, end - i))});
      i = end;
    } else if (c == '\'' || c == '"') {
      std::string value;
      size_t j = i + 1;
      for (; j < body.size() && body[j] != c; ++j) {
        if (body[j] == '\\' && j + 1 < body.size()) {
          ++j;
          if (absl::Status s = AppendEscape(body, j, line, value); !s.ok()) return s;
        } else {
          if (body[j] == '\n') ++line;
          value += body[j];
        }
      }
      if (j >= body.size()) return LexError(line, "unterminated string literal");
      tokens.push_back({Token::Type::kString, std::move(value)});
      i = j + 1;
    } else {
      std::string_view op;
      for (std::string_view two : kTwoCharOps) {
        if (body.compare(i, 2, two) == 0) op = two;
      }
      if (op.empty() && kOneCharOps.find(c) != std::string_view::npos) op = body.substr(i, 1);
      if (op.empty())
        return LexError(line, absl::StrCat("unexpected character '", std::string(1, c), "'"));
      tokens.push_back({Token::Type::kOperator, std::string(op)});
      i += op.size();
    }
  }
  return tokens;
}

}  // namespace

absl::StatusOr<std::vector<Segment>> Lex(std::string_view source) {
  // keep_trailing_newline=False: one final newline is not part of the output.
  if (source.ends_with("\r\n")) {
    source.remove_suffix(2);
  } else if (source.ends_with("\n")) {
    source.remove_suffix(1);
  }
  absl::StatusOr<std::vector<Raw>> raws = Split(source);
  if (!raws.ok()) return raws.status();
  std::vector<Segment> segments;
  for (size_t i = 0; i < raws->size(); ++i) {
    const Raw& raw = (*raws)[i];
    switch (raw.kind) {
      case RawKind::kComment:
        break;
      case RawKind::kText: {
        std::string text = ControlWhitespace(*raws, i);
        if (!text.empty()) {
          segments.push_back(
              {.type = Segment::Type::kText, .line = raw.line, .text = std::move(text)});
        }
        break;
      }
      case RawKind::kOutput:
      case RawKind::kStatement: {
        absl::StatusOr<std::vector<Token>> tokens = Tokenize(raw.body, raw.line);
        if (!tokens.ok()) return tokens.status();
        if (tokens->empty()) return LexError(raw.line, "empty tag");
        segments.push_back({.type = raw.kind == RawKind::kOutput ? Segment::Type::kOutput
                                                                 : Segment::Type::kStatement,
                            .line = raw.line,
                            .tokens = *std::move(tokens)});
        break;
      }
    }
  }
  return segments;
}

}  // namespace strata::engine::jinja
