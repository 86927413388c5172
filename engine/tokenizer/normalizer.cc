#include "engine/tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/unicode_regex.h"
#include "engine/tokenizer/unicode_text.h"

namespace strata::engine {
namespace {

bool IsAscii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}

  absl::Status Normalize(std::string& text) const override {
    // ASCII is invariant under every normalization form: skip the copy.
    if (IsAscii(text)) return absl::OkStatus();
    utf8proc_uint8_t* out = nullptr;
    utf8proc_ssize_t length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                           static_cast<utf8proc_ssize_t>(text.size()), &out,
                                           static_cast<utf8proc_option_t>(options_));
    if (length < 0) {
      return absl::InternalError(
          absl::StrCat("unicode normalization failed: ", utf8proc_errmsg(length)));
    }
    text.assign(reinterpret_cast<const char*>(out), static_cast<size_t>(length));
    std::free(out);
    return absl::OkStatus();
  }

 private:
  int options_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}

  absl::Status Normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);  // the library leaves "" alone
    return absl::OkStatus();
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::unique_ptr<UnicodeRegex> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}

  absl::Status Normalize(std::string& text) const override {
    std::vector<RegexMatch> matches;
    if (auto status = pattern_->FindAll(text, matches); !status.ok()) return status;
    if (matches.empty()) return absl::OkStatus();
    std::string out;
    out.reserve(text.size() + matches.size() * content_.size());
    size_t last = 0;
    for (const RegexMatch& match : matches) {
      out.append(text, last, match.begin - last);
      out.append(content_);
      last = match.end;
    }
    out.append(text, last, std::string::npos);
    text = std::move(out);
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<UnicodeRegex> pattern_;
  std::string content_;
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}

  absl::Status Normalize(std::string& text) const override {
    if (right_) {
      while (!text.empty()) {
        size_t start;
        if (!IsUnicodeWhitespace(LastCodePoint(text, start))) break;
        text.resize(start);
      }
    }
    if (left_) {
      size_t pos = 0;
      while (pos < text.size()) {
        size_t next = pos;
        if (!IsUnicodeWhitespace(NextCodePoint(text, next))) break;
        pos = next;
      }
      text.erase(0, pos);
    }
    return absl::OkStatus();
  }

 private:
  bool left_;
  bool right_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}

  absl::Status Normalize(std::string& text) const override {
    for (const auto& step : steps_) {
      if (auto status = step->Normalize(text); !status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

absl::StatusOr<std::unique_ptr<Normalizer>> SequenceFromJson(const nlohmann::json& json,
                                                             std::string_view key) {
  auto list = RequiredArray(json, "normalizers", key);
  if (!list.ok()) return list.status();
  std::vector<std::unique_ptr<Normalizer>> steps;
  std::string list_key = JoinKey(key, "normalizers");
  for (size_t i = 0; i < (*list)->size(); ++i) {
    auto step = Normalizer::FromJson((**list)[i], IndexKey(list_key, i));
    if (!step.ok()) return step.status();
    if (*step != nullptr) steps.push_back(std::move(*step));
  }
  return std::make_unique<SequenceNormalizer>(std::move(steps));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> Normalizer::FromJson(const nlohmann::json& json,
                                                                 std::string_view key) {
  if (json.is_null()) return nullptr;
  auto type = ComponentType(json, key);
  if (!type.ok()) return type.status();
  constexpr int kStable = UTF8PROC_STABLE;
  if (*type == "NFC") return std::make_unique<UnicodeNormalizer>(kStable | UTF8PROC_COMPOSE);
  if (*type == "NFD") return std::make_unique<UnicodeNormalizer>(kStable | UTF8PROC_DECOMPOSE);
  if (*type == "NFKC") {
    return std::make_unique<UnicodeNormalizer>(kStable | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  }
  if (*type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(kStable | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  if (*type == "Prepend") {
    auto prefix = RequiredString(json, "prepend", key);
    if (!prefix.ok()) return prefix.status();
    return std::make_unique<PrependNormalizer>(std::move(*prefix));
  }
  if (*type == "Replace") {
    auto content = RequiredString(json, "content", key);
    if (!content.ok()) return content.status();
    if (!json.contains("pattern")) return KeyError(JoinKey(key, "pattern"), "missing");
    auto pattern = PatternFromJson(json["pattern"], JoinKey(key, "pattern"));
    if (!pattern.ok()) return pattern.status();
    return std::make_unique<ReplaceNormalizer>(std::move(*pattern), std::move(*content));
  }
  if (*type == "Strip") {
    auto left = OptionalBool(json, "strip_left", key, true);
    if (!left.ok()) return left.status();
    auto right = OptionalBool(json, "strip_right", key, true);
    if (!right.ok()) return right.status();
    return std::make_unique<StripNormalizer>(*left, *right);
  }
  if (*type == "Sequence") return SequenceFromJson(json, key);
  return UnsupportedType(JoinKey(key, "type"), "normalizer", *type);
}

}  // namespace strata::engine
