#include "engine/tokenizer/added_vocabulary.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/unicode_text.h"

namespace strata::engine {
namespace {

absl::StatusOr<AddedToken> TokenFromJson(const nlohmann::json& json, std::string_view key) {
  AddedToken token;
  auto content = RequiredString(json, "content", key);
  if (!content.ok()) return content.status();
  token.content = std::move(*content);
  if (!json.contains("id") || !json["id"].is_number_integer() || json["id"].get<int64_t>() < 0 ||
      json["id"].get<int64_t>() > INT32_MAX) {
    return KeyError(JoinKey(key, "id"), "expected a non-negative integer id");
  }
  token.id = static_cast<TokenId>(json["id"].get<int64_t>());
  struct {
    const char* name;
    bool* field;
    bool fallback;
  } flags[] = {{"special", &token.special, false},
               {"lstrip", &token.lstrip, false},
               {"rstrip", &token.rstrip, false},
               {"single_word", &token.single_word, false},
               {"normalized", &token.normalized, true}};
  for (const auto& flag : flags) {
    auto value = OptionalBool(json, flag.name, key, flag.fallback);
    if (!value.ok()) return value.status();
    *flag.field = *value;
  }
  // The library never normalizes special tokens' content when it is absent.
  if (!json.contains("normalized")) token.normalized = !token.special;
  return token;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AddedVocabulary>> AddedVocabulary::FromJson(
    const nlohmann::json& json, std::string_view key, const Normalizer* normalizer) {
  auto vocabulary = std::unique_ptr<AddedVocabulary>(new AddedVocabulary());
  if (json.is_null()) return vocabulary;
  if (!json.is_array()) {
    return KeyError(key, absl::StrCat("expected an array, got ", json.type_name()));
  }
  for (size_t i = 0; i < json.size(); ++i) {
    auto token = TokenFromJson(json[i], IndexKey(key, i));
    if (!token.ok()) return token.status();
    vocabulary->tokens_.push_back(std::move(*token));
  }
  vocabulary->BuildMatchers(normalizer);
  return vocabulary;
}

void AddedVocabulary::BuildMatchers(const Normalizer* normalizer) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const AddedToken& token = tokens_[i];
    std::string text = token.content;
    Matcher& matcher = token.normalized ? normalized_ : raw_;
    if (token.normalized && normalizer != nullptr) {
      // A normalizer failure here can only be a regex resource limit on a
      // short token; matching the unnormalized content is the safe fallback.
      std::string normalized_text = text;
      if (normalizer->Normalize(normalized_text).ok()) text = std::move(normalized_text);
    }
    if (text.empty()) continue;
    matcher.by_first_byte[static_cast<uint8_t>(text[0])].push_back({std::move(text), i});
    matcher.empty = false;
  }
  for (Matcher* matcher : {&raw_, &normalized_}) {
    for (auto& patterns : matcher->by_first_byte) {
      // Longest first; for equal text the earlier token wins, as in the library.
      std::stable_sort(patterns.begin(), patterns.end(),
                       [](const Matcher::Pattern& a, const Matcher::Pattern& b) {
                         return a.text.size() > b.text.size();
                       });
    }
  }
}

bool AddedVocabulary::AdjustMatch(const AddedToken& token, std::string_view text,
                                  size_t segment_start, size_t& begin, size_t& end) const {
  if (token.single_word) {
    size_t unused;
    bool word_before =
        begin > 0 && IsUnicodeAlphanumeric(LastCodePoint(text.substr(0, begin), unused));
    size_t next = end;
    bool word_after = end < text.size() && IsUnicodeAlphanumeric(NextCodePoint(text, next));
    if (word_before || word_after) return false;
  }
  if (token.lstrip) {
    size_t new_begin = begin;
    while (new_begin > segment_start) {
      size_t previous;
      if (!IsUnicodeWhitespace(LastCodePoint(text.substr(0, new_begin), previous))) break;
      new_begin = previous;
    }
    begin = new_begin;  // never before the previous match: bounded by segment_start
  }
  if (token.rstrip) {
    while (end < text.size()) {
      size_t next = end;
      if (!IsUnicodeWhitespace(NextCodePoint(text, next))) break;
      end = next;
    }
  }
  return true;
}

void AddedVocabulary::Split(std::string_view text, bool normalized_pass,
                            std::vector<TextSegment>& out) const {
  const Matcher& matcher = normalized_pass ? normalized_ : raw_;
  size_t segment_start = 0;  // end of the previous accepted match
  size_t pos = 0;
  while (!matcher.empty && pos < text.size()) {
    const Matcher::Pattern* hit = nullptr;
    for (const auto& pattern : matcher.by_first_byte[static_cast<uint8_t>(text[pos])]) {
      if (text.compare(pos, pattern.text.size(), pattern.text) == 0) {
        hit = &pattern;
        break;
      }
    }
    if (hit == nullptr) {
      ++pos;
      continue;
    }
    size_t begin = pos;
    size_t end = pos + hit->text.size();
    // A rejected match still consumes its text, as the library's
    // non-overlapping automaton search does.
    pos = end;
    const AddedToken& token = tokens_[hit->token_index];
    if (!AdjustMatch(token, text, segment_start, begin, end)) continue;
    if (segment_start < begin)
      out.push_back({text.substr(segment_start, begin - segment_start), {}});
    out.push_back({text.substr(begin, end - begin), token.id});
    segment_start = end;
    pos = end;
  }
  if (segment_start < text.size()) out.push_back({text.substr(segment_start), {}});
}

}  // namespace strata::engine
