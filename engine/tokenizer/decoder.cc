#include "engine/tokenizer/decoder.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_join.h"
#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/unicode_text.h"

namespace strata::engine {
namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

using Tokens = std::vector<std::string>;

// One UTF-8 sequence starting at some offset, classified the way Rust's
// Utf8Chunks does it (the basis of from_utf8_lossy).
enum class SeqKind { kValid, kInvalid, kTruncated };
struct Utf8Seq {
  SeqKind kind;
  size_t length;  // bytes covered: the character, the ill-formed subpart, or the cut-off prefix
};

Utf8Seq ScanUtf8(std::string_view s, size_t pos) {
  const auto lead = static_cast<uint8_t>(s[pos]);
  if (lead < 0x80) return {SeqKind::kValid, 1};
  size_t width;
  uint8_t second_min = 0x80, second_max = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    width = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    width = 3;
    if (lead == 0xE0) second_min = 0xA0;  // overlong
    if (lead == 0xED) second_max = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    width = 4;
    if (lead == 0xF0) second_min = 0x90;  // overlong
    if (lead == 0xF4) second_max = 0x8F;  // above U+10FFFF
  } else {
    return {SeqKind::kInvalid, 1};
  }
  for (size_t k = 1; k < width; ++k) {
    if (pos + k >= s.size()) return {SeqKind::kTruncated, k};
    const auto byte = static_cast<uint8_t>(s[pos + k]);
    const uint8_t min = k == 1 ? second_min : 0x80;
    const uint8_t max = k == 1 ? second_max : 0xBF;
    // The bad byte is not consumed: it may start the next sequence.
    if (byte < min || byte > max) return {SeqKind::kInvalid, k};
  }
  return {SeqKind::kValid, width};
}

// A decode step: the reference library's decode_chain, tokens to tokens.
// Steps matter individually because Strip and Metaspace act per token.
class ChainDecoder : public Decoder {
 public:
  virtual Tokens DecodeChain(Tokens tokens) const = 0;

  std::string Decode(std::vector<std::string> tokens) const final {
    return absl::StrJoin(DecodeChain(std::move(tokens)), "");
  }
};

// No decoder in tokenizer.json: the pieces are the text.
class ConcatDecoder : public ChainDecoder {
 public:
  Tokens DecodeChain(Tokens tokens) const override { return tokens; }
};

// Pieces are GPT-2 byte-level strings. All bytes are joined before the lossy
// UTF-8 conversion, so a character split across pieces survives.
class ByteLevelDecoder : public ChainDecoder {
 public:
  Tokens DecodeChain(Tokens tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      // A piece with a character outside the table (an added token such as
      // "<|eot_id|>" is fine, CJK is not) is used as its own UTF-8 bytes.
      std::optional<std::string> mapped = ByteLevelToBytes(token);
      bytes += mapped.has_value() ? *mapped : token;
    }
    return {Utf8Lossy(bytes, /*keep_incomplete_tail=*/true)};
  }
};

class ReplaceDecoder : public ChainDecoder {
 public:
  ReplaceDecoder(std::string pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}

  Tokens DecodeChain(Tokens tokens) const override {
    for (std::string& token : tokens) absl::StrReplaceAll({{pattern_, content_}}, &token);
    return tokens;
  }

 private:
  std::string pattern_;  // non-empty
  std::string content_;
};

// "<0xHH>" as its byte. Rust's u8::from_str_radix, which the reference uses,
// also accepts a leading '+' ("<0x+A>").
std::optional<uint8_t> ParseByteToken(std::string_view token) {
  if (token.size() != 6 || !token.starts_with("<0x") || token.back() != '>') return std::nullopt;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  const int high = token[3] == '+' ? 0 : hex(token[3]);
  const int low = hex(token[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<uint8_t>(high * 16 + low);
}

// Runs of byte pieces become one string if valid UTF-8, else one U+FFFD per
// byte of the run (not per ill-formed subpart: that is the reference's rule).
class ByteFallbackDecoder : public ChainDecoder {
 public:
  Tokens DecodeChain(Tokens tokens) const override {
    Tokens out;
    out.reserve(tokens.size());
    std::string run;
    for (std::string& token : tokens) {
      if (std::optional<uint8_t> byte = ParseByteToken(token)) {
        run.push_back(static_cast<char>(*byte));
        continue;
      }
      FlushRun(run, /*at_end=*/false, out);
      out.push_back(std::move(token));
    }
    FlushRun(run, /*at_end=*/true, out);
    return out;
  }

 private:
  // A run that ends the input and is only cut short (valid so far) is kept
  // as raw bytes, so that streaming can wait for the rest of the character;
  // Decoder::Decode documents that its output may end mid-character.
  static void FlushRun(std::string& run, bool at_end, Tokens& out) {
    if (run.empty()) return;
    const size_t tail = at_end ? IncompleteUtf8TailLength(run) : 0;
    if (IsValidUtf8(std::string_view(run).substr(0, run.size() - tail))) {
      out.push_back(std::move(run));
    } else {
      std::string replaced;
      for (size_t i = 0; i < run.size(); ++i) replaced += kReplacementChar;
      out.push_back(std::move(replaced));
    }
    run.clear();
  }
};

class FuseDecoder : public ChainDecoder {
 public:
  Tokens DecodeChain(Tokens tokens) const override { return {absl::StrJoin(tokens, "")}; }
};

// Removes up to `start` leading and `stop` trailing `content` characters from
// each token.
class StripDecoder : public ChainDecoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}

  Tokens DecodeChain(Tokens tokens) const override {
    for (std::string& token : tokens) {
      size_t begin = 0;
      for (size_t i = 0; i < start_ && std::string_view(token).substr(begin).starts_with(content_);
           ++i) {
        begin += content_.size();
      }
      size_t end = token.size();
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         std::string_view(token).substr(0, end).ends_with(content_);
           ++i) {
        end -= content_.size();
      }
      token = token.substr(begin, end - begin);
    }
    return tokens;
  }

 private:
  std::string content_;  // one character
  size_t start_;
  size_t stop_;
};

// The replacement character becomes a space, except that in the first token
// it is dropped altogether (all of them, as the reference does) unless the
// prepend scheme is "never".
class MetaspaceDecoder : public ChainDecoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : replacement_(std::move(replacement)), strip_first_(strip_first) {}

  Tokens DecodeChain(Tokens tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      const absl::string_view with = (i == 0 && strip_first_) ? "" : " ";
      absl::StrReplaceAll({{replacement_, with}}, &tokens[i]);
    }
    return tokens;
  }

 private:
  std::string replacement_;  // one character
  bool strip_first_;
};

class SequenceDecoder : public ChainDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<ChainDecoder>> steps)
      : steps_(std::move(steps)) {}

  Tokens DecodeChain(Tokens tokens) const override {
    for (const auto& step : steps_) tokens = step->DecodeChain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<ChainDecoder>> steps_;
};

// A string field holding exactly one character (Rust `char` fields).
absl::StatusOr<std::string> SingleCharField(const nlohmann::json& json, std::string_view name,
                                            std::string_view key,
                                            std::optional<std::string_view> fallback) {
  absl::StatusOr<std::string> value = fallback.has_value()
                                          ? OptionalString(json, name, key, *fallback)
                                          : RequiredString(json, name, key);
  if (!value.ok()) return value.status();
  if (value->empty() || !IsValidUtf8(*value) || ScanUtf8(*value, 0).length != value->size()) {
    return KeyError(JoinKey(key, name), "expected a single character");
  }
  return value;
}

absl::StatusOr<size_t> CountField(const nlohmann::json& json, std::string_view name,
                                  std::string_view key) {
  auto it = json.find(std::string(name));
  if (it == json.end()) return KeyError(JoinKey(key, name), "missing");
  if (!it->is_number_unsigned()) {
    return KeyError(JoinKey(key, name), "expected a non-negative integer");
  }
  return it->get<size_t>();
}

absl::StatusOr<std::unique_ptr<ChainDecoder>> ParseDecoder(const nlohmann::json& json,
                                                           std::string_view key);

absl::StatusOr<std::unique_ptr<ChainDecoder>> ParseReplace(const nlohmann::json& json,
                                                           std::string_view key) {
  const std::string pattern_key = JoinKey(key, "pattern");
  auto pattern = json.find("pattern");
  if (pattern == json.end() || !pattern->is_object()) {
    return KeyError(pattern_key, "expected an object with \"String\" or \"Regex\"");
  }
  if (pattern->contains("Regex")) return UnsupportedType(pattern_key, "Replace pattern", "Regex");
  absl::StatusOr<std::string> literal = RequiredString(*pattern, "String", pattern_key);
  if (!literal.ok()) return literal.status();
  if (literal->empty()) return KeyError(JoinKey(pattern_key, "String"), "must not be empty");
  absl::StatusOr<std::string> content = RequiredString(json, "content", key);
  if (!content.ok()) return content.status();
  return std::make_unique<ReplaceDecoder>(*std::move(literal), *std::move(content));
}

absl::StatusOr<std::unique_ptr<ChainDecoder>> ParseStrip(const nlohmann::json& json,
                                                         std::string_view key) {
  absl::StatusOr<std::string> content = SingleCharField(json, "content", key, std::nullopt);
  if (!content.ok()) return content.status();
  absl::StatusOr<size_t> start = CountField(json, "start", key);
  if (!start.ok()) return start.status();
  absl::StatusOr<size_t> stop = CountField(json, "stop", key);
  if (!stop.ok()) return stop.status();
  return std::make_unique<StripDecoder>(*std::move(content), *start, *stop);
}

absl::StatusOr<std::unique_ptr<ChainDecoder>> ParseMetaspace(const nlohmann::json& json,
                                                             std::string_view key) {
  absl::StatusOr<std::string> replacement =
      SingleCharField(json, "replacement", key, "\xE2\x96\x81");  // U+2581
  if (!replacement.ok()) return replacement.status();
  // Older files carry add_prefix_space instead of prepend_scheme.
  absl::StatusOr<bool> add_prefix_space = OptionalBool(json, "add_prefix_space", key, true);
  if (!add_prefix_space.ok()) return add_prefix_space.status();
  absl::StatusOr<std::string> scheme =
      OptionalString(json, "prepend_scheme", key, *add_prefix_space ? "always" : "never");
  if (!scheme.ok()) return scheme.status();
  if (*scheme != "always" && *scheme != "first" && *scheme != "never") {
    return KeyError(JoinKey(key, "prepend_scheme"),
                    absl::StrCat("expected always, first or never, got '", *scheme, "'"));
  }
  // "split" only matters when pre-tokenizing; validate its type all the same.
  if (absl::StatusOr<bool> split = OptionalBool(json, "split", key, true); !split.ok()) {
    return split.status();
  }
  return std::make_unique<MetaspaceDecoder>(*std::move(replacement), *scheme != "never");
}

absl::StatusOr<std::unique_ptr<ChainDecoder>> ParseSequence(const nlohmann::json& json,
                                                            std::string_view key) {
  absl::StatusOr<const nlohmann::json*> items = RequiredArray(json, "decoders", key);
  if (!items.ok()) return items.status();
  std::vector<std::unique_ptr<ChainDecoder>> steps;
  const std::string items_key = JoinKey(key, "decoders");
  for (size_t i = 0; i < (*items)->size(); ++i) {
    absl::StatusOr<std::unique_ptr<ChainDecoder>> step =
        ParseDecoder((**items)[i], IndexKey(items_key, i));
    if (!step.ok()) return step.status();
    steps.push_back(*std::move(step));
  }
  return std::make_unique<SequenceDecoder>(std::move(steps));
}

absl::StatusOr<std::unique_ptr<ChainDecoder>> ParseDecoder(const nlohmann::json& json,
                                                           std::string_view key) {
  if (json.is_null()) return std::make_unique<ConcatDecoder>();
  absl::StatusOr<std::string> type = ComponentType(json, key);
  if (!type.ok()) return type.status();
  if (*type == "ByteLevel") {
    // add_prefix_space, trim_offsets and use_regex only affect encoding.
    for (std::string_view flag : {"add_prefix_space", "trim_offsets", "use_regex"}) {
      if (absl::StatusOr<bool> value = OptionalBool(json, flag, key, false); !value.ok()) {
        return value.status();
      }
    }
    return std::make_unique<ByteLevelDecoder>();
  }
  if (*type == "Replace") return ParseReplace(json, key);
  if (*type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (*type == "Fuse") return std::make_unique<FuseDecoder>();
  if (*type == "Strip") return ParseStrip(json, key);
  if (*type == "Metaspace") return ParseMetaspace(json, key);
  if (*type == "Sequence") return ParseSequence(json, key);
  return UnsupportedType(JoinKey(key, "type"), "decoder", *type);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::FromJson(const nlohmann::json& json) {
  absl::StatusOr<std::unique_ptr<ChainDecoder>> decoder = ParseDecoder(json, "decoder");
  if (!decoder.ok()) return decoder.status();
  return std::unique_ptr<Decoder>(*std::move(decoder));
}

std::string Utf8Lossy(std::string_view bytes, bool keep_incomplete_tail) {
  std::string out;
  out.reserve(bytes.size());
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Utf8Seq seq = ScanUtf8(bytes, pos);
    if (seq.kind == SeqKind::kValid) {
      out.append(bytes.substr(pos, seq.length));
    } else if (seq.kind == SeqKind::kTruncated && keep_incomplete_tail) {
      out.append(bytes.substr(pos));  // a truncated sequence always reaches the end
    } else {
      out += kReplacementChar;
    }
    pos += seq.length;
  }
  return out;
}

size_t IncompleteUtf8TailLength(std::string_view text) {
  // A cut-off character is at most 3 bytes: a lead byte and continuations.
  for (size_t back = 1; back <= 3 && back <= text.size(); ++back) {
    const size_t pos = text.size() - back;
    const auto byte = static_cast<uint8_t>(text[pos]);
    if (byte >= 0x80 && byte <= 0xBF) continue;  // a continuation byte: look further back
    const Utf8Seq seq = ScanUtf8(text, pos);
    return seq.kind == SeqKind::kTruncated && seq.length == back ? back : 0;
  }
  return 0;
}

}  // namespace strata::engine
