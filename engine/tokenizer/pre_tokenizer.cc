#include "engine/tokenizer/pre_tokenizer.h"

#include <utility>

#include "engine/tokenizer/byte_level.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/unicode_regex.h"

namespace strata::engine {
namespace {

// The GPT-2 split the ByteLevel pre-tokenizer applies when use_regex is set.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct Span {
  size_t begin;
  size_t end;
  bool is_match;
};

// The text cut into matched and unmatched spans that cover all of it, as the
// library's Pattern::find_matches does.
absl::Status CoveringSpans(const UnicodeRegex& regex, std::string_view text, bool invert,
                           std::vector<Span>& spans) {
  std::vector<RegexMatch> matches;
  if (auto status = regex.FindAll(text, matches); !status.ok()) return status;
  size_t previous = 0;
  for (const RegexMatch& match : matches) {
    if (match.begin != previous) spans.push_back({previous, match.begin, invert});
    spans.push_back({match.begin, match.end, !invert});
    previous = match.end;
  }
  if (previous != text.size()) spans.push_back({previous, text.size(), invert});
  return absl::OkStatus();
}

// Applies `behavior` to `spans`: the result's is_match flags are meaningless.
std::vector<Span> ApplyBehavior(std::vector<Span> spans, SplitBehavior behavior) {
  std::vector<Span> out;
  out.reserve(spans.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      return spans;
    case SplitBehavior::kRemoved:
      for (const Span& span : spans) {
        if (!span.is_match) out.push_back(span);
      }
      return out;
    case SplitBehavior::kMergedWithPrevious:
      for (const Span& span : spans) {
        if (span.is_match && !previous_match && !out.empty()) {
          out.back().end = span.end;
        } else {
          out.push_back(span);
        }
        previous_match = span.is_match;
      }
      return out;
    case SplitBehavior::kMergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back(*it);
        }
        previous_match = it->is_match;
      }
      return {out.rbegin(), out.rend()};
    case SplitBehavior::kContiguous:
      for (const Span& span : spans) {
        if (span.is_match == previous_match && !out.empty()) {
          out.back().end = span.end;
        } else {
          out.push_back(span);
        }
        previous_match = span.is_match;
      }
      return out;
  }
  return spans;
}

absl::Status SplitPieces(const UnicodeRegex& regex, SplitBehavior behavior, bool invert,
                         std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  out.reserve(pieces.size());
  std::vector<Span> spans;
  for (std::string& piece : pieces) {
    spans.clear();
    if (auto status = CoveringSpans(regex, piece, invert, spans); !status.ok()) return status;
    for (const Span& span : ApplyBehavior(std::move(spans), behavior)) {
      if (span.end > span.begin) out.emplace_back(piece, span.begin, span.end - span.begin);
    }
    spans = {};
  }
  pieces = std::move(out);
  return absl::OkStatus();
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::unique_ptr<UnicodeRegex> regex, SplitBehavior behavior, bool invert)
      : regex_(std::move(regex)), behavior_(behavior), invert_(invert) {}

  absl::Status PreTokenize(std::vector<std::string>& pieces) const override {
    return SplitPieces(*regex_, behavior_, invert_, pieces);
  }

 private:
  std::unique_ptr<UnicodeRegex> regex_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::unique_ptr<UnicodeRegex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}

  absl::Status PreTokenize(std::vector<std::string>& pieces) const override {
    if (add_prefix_space_) {
      // The library adds the space to every piece that lacks one, not only
      // to the first.
      for (std::string& piece : pieces) {
        if (!piece.empty() && piece[0] != ' ') piece.insert(0, 1, ' ');
      }
    }
    if (regex_ != nullptr) {
      if (auto status = SplitPieces(*regex_, SplitBehavior::kIsolated, false, pieces);
          !status.ok()) {
        return status;
      }
    }
    for (std::string& piece : pieces) piece = BytesToByteLevel(piece);
    return absl::OkStatus();
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<UnicodeRegex> regex_;  // null when use_regex is false
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps)
      : steps_(std::move(steps)) {}

  absl::Status PreTokenize(std::vector<std::string>& pieces) const override {
    for (const auto& step : steps_) {
      if (auto status = step->PreTokenize(pieces); !status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

absl::StatusOr<SplitBehavior> ParseBehavior(const nlohmann::json& json, std::string_view key) {
  auto name = RequiredString(json, "behavior", key);
  if (!name.ok()) return name.status();
  if (*name == "Removed") return SplitBehavior::kRemoved;
  if (*name == "Isolated") return SplitBehavior::kIsolated;
  if (*name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (*name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (*name == "Contiguous") return SplitBehavior::kContiguous;
  return KeyError(JoinKey(key, "behavior"), "unknown split behavior '" + *name + "'");
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> SplitFromJson(const nlohmann::json& json,
                                                            std::string_view key) {
  if (!json.contains("pattern")) return KeyError(JoinKey(key, "pattern"), "missing");
  auto regex = PatternFromJson(json["pattern"], JoinKey(key, "pattern"));
  if (!regex.ok()) return regex.status();
  auto behavior = ParseBehavior(json, key);
  if (!behavior.ok()) return behavior.status();
  auto invert = OptionalBool(json, "invert", key, false);
  if (!invert.ok()) return invert.status();
  return std::make_unique<SplitPreTokenizer>(std::move(*regex), *behavior, *invert);
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> ByteLevelFromJson(const nlohmann::json& json,
                                                                std::string_view key) {
  // The library's defaults when a field is absent.
  auto add_prefix_space = OptionalBool(json, "add_prefix_space", key, true);
  if (!add_prefix_space.ok()) return add_prefix_space.status();
  auto use_regex = OptionalBool(json, "use_regex", key, true);
  if (!use_regex.ok()) return use_regex.status();
  std::unique_ptr<UnicodeRegex> regex;
  if (*use_regex) {
    auto compiled = UnicodeRegex::Compile(kGpt2Pattern, /*literal=*/false);
    if (!compiled.ok()) return compiled.status();
    regex = std::move(*compiled);
  }
  return std::make_unique<ByteLevelPreTokenizer>(*add_prefix_space, std::move(regex));
}

absl::StatusOr<std::unique_ptr<PreTokenizer>> SequenceFromJson(const nlohmann::json& json,
                                                               std::string_view key) {
  auto list = RequiredArray(json, "pretokenizers", key);
  if (!list.ok()) return list.status();
  std::string list_key = JoinKey(key, "pretokenizers");
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  for (size_t i = 0; i < (*list)->size(); ++i) {
    auto step = PreTokenizer::FromJson((**list)[i], IndexKey(list_key, i));
    if (!step.ok()) return step.status();
    if (*step != nullptr) steps.push_back(std::move(*step));
  }
  return std::make_unique<SequencePreTokenizer>(std::move(steps));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreTokenizer>> PreTokenizer::FromJson(const nlohmann::json& json,
                                                                     std::string_view key) {
  if (json.is_null()) return nullptr;
  auto type = ComponentType(json, key);
  if (!type.ok()) return type.status();
  if (*type == "Split") return SplitFromJson(json, key);
  if (*type == "ByteLevel") return ByteLevelFromJson(json, key);
  if (*type == "Sequence") return SequenceFromJson(json, key);
  return UnsupportedType(JoinKey(key, "type"), "pre-tokenizer", *type);
}

}  // namespace strata::engine
