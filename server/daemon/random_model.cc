#include "server/daemon/random_model.h"

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cache/block_hash.h"
#include "engine/cpu/random_weights.h"
#include "engine/model_config.h"
#include "nlohmann/json.hpp"

namespace strata::server {

absl::StatusOr<std::vector<engine::TokenId>> NumberTokenizer::Encode(std::string_view text,
                                                                     bool) const {
  std::vector<engine::TokenId> ids;
  const absl::string_view view(text.data(), text.size());
  for (absl::string_view word : absl::StrSplit(view, absl::ByAnyChar(" \t\n"), absl::SkipEmpty())) {
    std::optional<engine::TokenId> id = TokenToId(std::string_view(word.data(), word.size()));
    if (!id) {
      return absl::InvalidArgumentError(
          absl::StrCat("text: \"", std::string(word), "\" is not a token id in [0, ", vocab_size_,
                       ") (a random-weight model reads its prompt as ids)"));
    }
    ids.push_back(*id);
  }
  return ids;
}

absl::StatusOr<std::string> NumberTokenizer::Decode(absl::Span<const engine::TokenId> ids,
                                                    bool) const {
  std::string text;
  for (engine::TokenId id : ids) absl::StrAppend(&text, " ", id);
  return text;
}

std::optional<engine::TokenId> NumberTokenizer::TokenToId(std::string_view token) const {
  int64_t id = 0;
  if (!absl::SimpleAtoi(absl::string_view(token.data(), token.size()), &id) || id < 0 ||
      id >= vocab_size_)
    return std::nullopt;
  return static_cast<engine::TokenId>(id);
}

std::optional<std::string> NumberTokenizer::IdToToken(engine::TokenId id) const {
  if (id < 0 || id >= vocab_size_) return std::nullopt;
  return absl::StrCat(id);
}

absl::StatusOr<ServingEngine> LoadRandomServingEngine(const std::filesystem::path& config_path,
                                                      uint64_t seed,
                                                      const ServingOptions& options) {
  std::ifstream in(config_path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read model config ", config_path.string()));
  }
  nlohmann::json json = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path.string(), ": not JSON"));
  }
  absl::StatusOr<engine::ModelConfig> config = engine::ParseModelConfig(json, config_path.string());
  if (!config.ok()) return config.status();
  absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(*config, seed);
  if (!model.ok()) return model.status();
  cache::ModelFingerprintBuilder builder;
  builder.AddConfig(engine::ModelConfigToJson(*config).dump());
  builder.AddConfig(absl::StrCat("random weights, seed ", seed));
  const cache::ModelFingerprint fingerprint =
      std::move(builder).Finish(options.backend_options.kv_dtype, options.cache.block_size);
  return MakeServingEngine(*model, std::make_unique<NumberTokenizer>(config->vocab_size),
                           fingerprint, options);
}

}  // namespace strata::server
