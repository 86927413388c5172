// A model with random weights built from a config.json alone, for serving
// benchmarks (`strata serve --random-weights --model-config FILE.json`) where
// a checkpoint of the wanted shape does not exist. Such a model has no
// tokenizer: NumberTokenizer stands in, writing ids as numbers.
#ifndef STRATA_SERVER_DAEMON_RANDOM_MODEL_H_
#define STRATA_SERVER_DAEMON_RANDOM_MODEL_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "server/engine_setup.h"

namespace strata::server {

// Decodes each id as " <id>" and encodes whitespace-separated decimal ids
// back, so text round-trips and clients may send "12 7 99" as a prompt.
// Immutable; thread-safe.
class NumberTokenizer final : public engine::Tokenizer {
 public:
  explicit NumberTokenizer(int64_t vocab_size) : vocab_size_(vocab_size) {}
  // INVALID_ARGUMENT naming the word that is not an id in [0, vocab).
  absl::StatusOr<std::vector<engine::TokenId>> Encode(std::string_view text,
                                                      bool add_special_tokens) const override;
  absl::StatusOr<std::string> Decode(absl::Span<const engine::TokenId> ids,
                                     bool skip_special_tokens) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  std::optional<engine::TokenId> TokenToId(std::string_view token) const override;
  std::optional<std::string> IdToToken(engine::TokenId id) const override;
  bool IsSpecial(engine::TokenId) const override { return false; }
  std::optional<engine::TokenId> bos_id() const override { return std::nullopt; }
  std::optional<engine::TokenId> eos_id() const override { return std::nullopt; }

 private:
  int64_t vocab_size_;
};

// Reads a model config (config.json format) from `config_path`, builds
// random weights from `seed` and wires them like LoadServingEngine. The
// fingerprint covers the config and the seed, so a disk tier is shared only
// between runs of the same random model. Errors: NOT_FOUND / INVALID_ARGUMENT
// naming the file, and MakeServingEngine's.
absl::StatusOr<ServingEngine> LoadRandomServingEngine(const std::filesystem::path& config_path,
                                                      uint64_t seed, const ServingOptions& options);

}  // namespace strata::server

#endif  // STRATA_SERVER_DAEMON_RANDOM_MODEL_H_
