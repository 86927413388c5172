// Tokenizer::Load and the Hugging Face tokenizer.json implementation:
// added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor on
// encode, and vocabulary lookup -> decoder pipeline on decode.
#include "engine/tokenizer/tokenizer.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "engine/tokenizer/added_vocabulary.h"
#include "engine/tokenizer/bpe_model.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/json_fields.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/post_processor.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/tokenizer/unicode_text.h"

namespace strata::engine {
namespace {

// The same status with "FILE: " in front of its message.
absl::Status InFile(const std::filesystem::path& file, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(file.string(), ": ", status.message()));
}

absl::StatusOr<nlohmann::json> ReadJsonFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(file.string(), ": cannot open"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(file.string(), ": read failed"));
  try {
    return nlohmann::json::parse(buffer.str());
  } catch (const nlohmann::json::exception& error) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.string(), ": not valid JSON: ", error.what()));
  }
}

const nlohmann::json& FieldOrNull(const nlohmann::json& json, const char* name) {
  static const nlohmann::json* const kNull = new nlohmann::json();
  auto it = json.find(name);
  return it == json.end() ? *kNull : *it;
}

class HfTokenizer : public Tokenizer {
 public:
  struct Parts {
    std::unique_ptr<Normalizer> normalizer;
    std::unique_ptr<PreTokenizer> pre_tokenizer;
    std::unique_ptr<BpeModel> model;
    std::unique_ptr<PostProcessor> post_processor;
    std::unique_ptr<Decoder> decoder;
    std::unique_ptr<AddedVocabulary> added;
  };

  explicit HfTokenizer(Parts parts) : parts_(std::move(parts)) {
    vocab_size_ = parts_.model->id_limit();
    for (const AddedToken& token : parts_.added->tokens()) {
      added_to_id_[token.content] = token.id;
      added_to_token_[token.id] = token.content;
      if (token.special) special_ids_.insert(token.id);
      vocab_size_ = std::max<int64_t>(vocab_size_, int64_t{token.id} + 1);
    }
  }

  void SetSpecialIds(std::optional<TokenId> bos, std::optional<TokenId> eos) {
    bos_id_ = bos;
    eos_id_ = eos;
  }

  absl::StatusOr<std::vector<TokenId>> Encode(std::string_view text,
                                              bool add_special_tokens) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const TokenId> ids,
                                     bool skip_special_tokens) const override;

  int64_t vocab_size() const override { return vocab_size_; }

  std::optional<TokenId> TokenToId(std::string_view token) const override {
    auto it = added_to_id_.find(absl::string_view(token.data(), token.size()));
    if (it != added_to_id_.end()) return it->second;
    return parts_.model->TokenToId(token);
  }

  std::optional<std::string> IdToToken(TokenId id) const override {
    const std::string* token = TokenRef(id);
    if (token == nullptr) return std::nullopt;
    return *token;
  }

  bool IsSpecial(TokenId id) const override { return special_ids_.contains(id); }
  std::optional<TokenId> bos_id() const override { return bos_id_; }
  std::optional<TokenId> eos_id() const override { return eos_id_; }

 private:
  const std::string* TokenRef(TokenId id) const {
    if (auto it = added_to_token_.find(id); it != added_to_token_.end()) return &it->second;
    return parts_.model->IdToToken(id);
  }
  // Normalizes, pre-tokenizes and runs BPE on text between raw added tokens.
  absl::Status EncodeSegment(std::string_view segment, std::vector<TokenId>& ids) const;

  Parts parts_;
  int64_t vocab_size_ = 0;
  absl::flat_hash_map<std::string, TokenId> added_to_id_;
  absl::flat_hash_map<TokenId, std::string> added_to_token_;
  absl::flat_hash_set<TokenId> special_ids_;
  std::optional<TokenId> bos_id_;
  std::optional<TokenId> eos_id_;
};

absl::Status HfTokenizer::EncodeSegment(std::string_view segment, std::vector<TokenId>& ids) const {
  std::string normalized(segment);
  if (parts_.normalizer != nullptr) {
    if (auto status = parts_.normalizer->Normalize(normalized); !status.ok()) return status;
  }
  std::vector<TextSegment> pieces_between_tokens;
  parts_.added->Split(normalized, /*normalized_pass=*/true, pieces_between_tokens);
  std::vector<std::string> pieces;
  for (const TextSegment& part : pieces_between_tokens) {
    if (part.id) {
      ids.push_back(*part.id);
      continue;
    }
    pieces.assign(1, std::string(part.text));
    if (parts_.pre_tokenizer != nullptr) {
      if (auto status = parts_.pre_tokenizer->PreTokenize(pieces); !status.ok()) return status;
    }
    for (const std::string& piece : pieces) parts_.model->Tokenize(piece, ids);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TokenId>> HfTokenizer::Encode(std::string_view text,
                                                         bool add_special_tokens) const {
  if (!IsValidUtf8(text)) return absl::InvalidArgumentError("text is not valid UTF-8");
  std::vector<TextSegment> segments;
  parts_.added->Split(text, /*normalized_pass=*/false, segments);
  std::vector<TokenId> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const TextSegment& segment : segments) {
    if (segment.id) {
      ids.push_back(*segment.id);
    } else if (auto status = EncodeSegment(segment.text, ids); !status.ok()) {
      return status;
    }
  }
  if (parts_.post_processor != nullptr) parts_.post_processor->Process(ids, add_special_tokens);
  return ids;
}

absl::StatusOr<std::string> HfTokenizer::Decode(absl::Span<const TokenId> ids,
                                                bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (TokenId id : ids) {
    const std::string* token = TokenRef(id);
    if (token == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", id, " is outside the vocabulary (size ", vocab_size_, ")"));
    }
    if (skip_special_tokens && IsSpecial(id)) continue;
    tokens.push_back(*token);
  }
  return parts_.decoder->Decode(std::move(tokens));
}

absl::StatusOr<HfTokenizer::Parts> PartsFromJson(const nlohmann::json& json) {
  if (!json.is_object()) return KeyError("<root>", "expected an object");
  if (!json.contains("model")) return KeyError("model", "missing");
  HfTokenizer::Parts parts;
  auto normalizer = Normalizer::FromJson(FieldOrNull(json, "normalizer"), "normalizer");
  if (!normalizer.ok()) return normalizer.status();
  parts.normalizer = std::move(*normalizer);
  auto pre_tokenizer = PreTokenizer::FromJson(FieldOrNull(json, "pre_tokenizer"), "pre_tokenizer");
  if (!pre_tokenizer.ok()) return pre_tokenizer.status();
  parts.pre_tokenizer = std::move(*pre_tokenizer);
  auto model = BpeModel::FromJson(json["model"], "model");
  if (!model.ok()) return model.status();
  parts.model = std::move(*model);
  auto post = PostProcessor::FromJson(FieldOrNull(json, "post_processor"), "post_processor");
  if (!post.ok()) return post.status();
  parts.post_processor = std::move(*post);
  auto decoder = Decoder::FromJson(FieldOrNull(json, "decoder"));
  if (!decoder.ok()) {
    return absl::Status(decoder.status().code(),
                        absl::StrCat("key 'decoder': ", decoder.status().message()));
  }
  parts.decoder = std::move(*decoder);
  auto added = AddedVocabulary::FromJson(FieldOrNull(json, "added_tokens"), "added_tokens",
                                         parts.normalizer.get());
  if (!added.ok()) return added.status();
  parts.added = std::move(*added);
  return parts;
}

// tokenizer_config.json's bos_token/eos_token: a string, {"content": ...} or null.
absl::StatusOr<std::optional<TokenId>> ConfigTokenId(const nlohmann::json& config, const char* name,
                                                     const Tokenizer& tokenizer) {
  const nlohmann::json& value = FieldOrNull(config, name);
  std::string content;
  if (value.is_null()) return std::nullopt;
  if (value.is_string()) {
    content = value.get<std::string>();
  } else {
    auto field = RequiredString(value, "content", name);
    if (!field.ok()) return field.status();
    content = std::move(*field);
  }
  auto id = tokenizer.TokenToId(content);
  if (!id) return KeyError(name, absl::StrCat("'", content, "' is not in the vocabulary"));
  return id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::filesystem::path& dir) {
  const std::filesystem::path tokenizer_file = dir / "tokenizer.json";
  auto json = ReadJsonFile(tokenizer_file);
  if (!json.ok()) return json.status();
  auto parts = PartsFromJson(*json);
  if (!parts.ok()) return InFile(tokenizer_file, parts.status());
  json->clear();  // the vocabulary now lives in the model; free the DOM early
  auto tokenizer = std::make_unique<HfTokenizer>(std::move(*parts));

  const std::filesystem::path config_file = dir / "tokenizer_config.json";
  std::error_code error;
  if (std::filesystem::exists(config_file, error)) {
    auto config = ReadJsonFile(config_file);
    if (!config.ok()) return config.status();
    if (!config->is_object()) return InFile(config_file, KeyError("<root>", "expected an object"));
    auto bos = ConfigTokenId(*config, "bos_token", *tokenizer);
    if (!bos.ok()) return InFile(config_file, bos.status());
    auto eos = ConfigTokenId(*config, "eos_token", *tokenizer);
    if (!eos.ok()) return InFile(config_file, eos.status());
    tokenizer->SetSpecialIds(*bos, *eos);
  }
  return tokenizer;
}

}  // namespace strata::engine
