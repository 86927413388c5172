#include "engine/tokenizer/post_processor.h"

#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/json_fields.h"

namespace strata::engine {
namespace {

// The single-sequence template as pieces: special ids, and where the
// sequence goes (an empty `ids`).
struct TemplatePiece {
  bool is_sequence = false;
  std::vector<TokenId> ids;
};

class TemplateProcessor : public PostProcessor {
 public:
  explicit TemplateProcessor(std::vector<TemplatePiece> pieces) : pieces_(std::move(pieces)) {}

  void Process(std::vector<TokenId>& ids, bool add_special_tokens) const override {
    if (!add_special_tokens) return;
    std::vector<TokenId> out;
    out.reserve(ids.size() + pieces_.size());
    for (const TemplatePiece& piece : pieces_) {
      if (piece.is_sequence) {
        out.insert(out.end(), ids.begin(), ids.end());
      } else {
        out.insert(out.end(), piece.ids.begin(), piece.ids.end());
      }
    }
    ids = std::move(out);
  }

 private:
  std::vector<TemplatePiece> pieces_;
};

class IdentityProcessor : public PostProcessor {
 public:
  void Process(std::vector<TokenId>&, bool) const override {}
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}

  void Process(std::vector<TokenId>& ids, bool add_special_tokens) const override {
    for (const auto& step : steps_) step->Process(ids, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

using SpecialTokenIds = absl::flat_hash_map<std::string, std::vector<TokenId>>;

absl::StatusOr<SpecialTokenIds> ParseSpecialTokens(const nlohmann::json& json,
                                                   std::string_view key) {
  SpecialTokenIds special;
  std::string map_key = JoinKey(key, "special_tokens");
  if (!json.contains("special_tokens")) return special;
  const nlohmann::json& map = json["special_tokens"];
  if (!map.is_object()) return KeyError(map_key, "expected an object");
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string entry_key = JoinKey(map_key, it.key());
    auto ids = RequiredArray(it.value(), "ids", entry_key);
    if (!ids.ok()) return ids.status();
    std::vector<TokenId>& out = special[it.key()];
    for (const nlohmann::json& id : **ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
        return KeyError(JoinKey(entry_key, "ids"), "expected non-negative integer ids");
      }
      out.push_back(static_cast<TokenId>(id.get<int64_t>()));
    }
  }
  return special;
}

absl::StatusOr<std::unique_ptr<PostProcessor>> TemplateFromJson(const nlohmann::json& json,
                                                                std::string_view key) {
  auto special = ParseSpecialTokens(json, key);
  if (!special.ok()) return special.status();
  auto single = RequiredArray(json, "single", key);
  if (!single.ok()) return single.status();
  std::string single_key = JoinKey(key, "single");
  std::vector<TemplatePiece> pieces;
  for (size_t i = 0; i < (*single)->size(); ++i) {
    const nlohmann::json& piece = (**single)[i];
    std::string piece_key = IndexKey(single_key, i);
    if (piece.is_object() && piece.contains("Sequence")) {
      pieces.push_back({/*is_sequence=*/true, {}});
    } else if (piece.is_object() && piece.contains("SpecialToken")) {
      auto name = RequiredString(piece["SpecialToken"], "id", JoinKey(piece_key, "SpecialToken"));
      if (!name.ok()) return name.status();
      auto it = special->find(*name);
      if (it == special->end()) {
        return KeyError(piece_key, absl::StrCat("special token '", *name, "' is not in ",
                                                JoinKey(key, "special_tokens")));
      }
      pieces.push_back({/*is_sequence=*/false, it->second});
    } else {
      return KeyError(piece_key, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  return std::make_unique<TemplateProcessor>(std::move(pieces));
}

// BertProcessing and RobertaProcessing: "cls" and "sep" are [token, id].
absl::StatusOr<std::unique_ptr<PostProcessor>> ClsSepFromJson(const nlohmann::json& json,
                                                              std::string_view key) {
  TokenId ids[2];
  const char* names[2] = {"cls", "sep"};
  for (int i = 0; i < 2; ++i) {
    const nlohmann::json* pair =
        json.is_object() && json.contains(names[i]) ? &json[names[i]] : nullptr;
    if (pair == nullptr || !pair->is_array() || pair->size() != 2 ||
        !(*pair)[1].is_number_integer()) {
      return KeyError(JoinKey(key, names[i]), "expected [token, id]");
    }
    ids[i] = static_cast<TokenId>((*pair)[1].get<int64_t>());
  }
  std::vector<TemplatePiece> pieces = {{false, {ids[0]}}, {true, {}}, {false, {ids[1]}}};
  return std::make_unique<TemplateProcessor>(std::move(pieces));
}

absl::StatusOr<std::unique_ptr<PostProcessor>> SequenceFromJson(const nlohmann::json& json,
                                                                std::string_view key) {
  auto list = RequiredArray(json, "processors", key);
  if (!list.ok()) return list.status();
  std::string list_key = JoinKey(key, "processors");
  std::vector<std::unique_ptr<PostProcessor>> steps;
  for (size_t i = 0; i < (*list)->size(); ++i) {
    auto step = PostProcessor::FromJson((**list)[i], IndexKey(list_key, i));
    if (!step.ok()) return step.status();
    if (*step != nullptr) steps.push_back(std::move(*step));
  }
  return std::make_unique<SequenceProcessor>(std::move(steps));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> PostProcessor::FromJson(const nlohmann::json& json,
                                                                       std::string_view key) {
  if (json.is_null()) return nullptr;
  auto type = ComponentType(json, key);
  if (!type.ok()) return type.status();
  if (*type == "TemplateProcessing") return TemplateFromJson(json, key);
  if (*type == "BertProcessing" || *type == "RobertaProcessing") return ClsSepFromJson(json, key);
  if (*type == "ByteLevel") return std::make_unique<IdentityProcessor>();
  if (*type == "Sequence") return SequenceFromJson(json, key);
  return UnsupportedType(JoinKey(key, "type"), "post-processor", *type);
}

}  // namespace strata::engine
