// The BPE model of tokenizer.json ("model" key, type "BPE"): vocabulary,
// ranked merges, and the options Llama 3 / Qwen (byte-level, ignore_merges)
// and Mistral / Llama 2 (byte_fallback, unk_token, fuse_unk) rely on.
// continuing_subword_prefix and end_of_word_suffix are honoured; dropout must
// be null or 0 (serving is deterministic).
#ifndef STRATA_ENGINE_TOKENIZER_BPE_MODEL_H_
#define STRATA_ENGINE_TOKENIZER_BPE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

class BpeModel {
 public:
  // `json` is the model object found at `key`. UNIMPLEMENTED if its type is
  // not BPE; INVALID_ARGUMENT naming the key for a malformed vocab or merge
  // (including a merge whose parts or result are not in the vocabulary).
  static absl::StatusOr<std::unique_ptr<BpeModel>> FromJson(const nlohmann::json& json,
                                                            std::string_view key);

  // Appends the ids of one pre-tokenized piece (valid UTF-8) to `ids`.
  // Characters with no token, no byte fallback and no unk_token are dropped,
  // as in the library. Thread-safe; O(n log n) in the piece's length.
  void Tokenize(std::string_view piece, std::vector<TokenId>& ids) const;

  std::optional<TokenId> TokenToId(std::string_view token) const;
  // Borrowed from the model; null for an id with no token.
  const std::string* IdToToken(TokenId id) const;
  // One past the largest id.
  int64_t id_limit() const { return static_cast<int64_t>(id_to_token_.size()); }

 private:
  struct Merge {
    int32_t rank;
    TokenId result;
  };
  struct Options {
    std::optional<std::string> unk_token;
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
    bool fuse_unk = false;
    bool byte_fallback = false;
    bool ignore_merges = false;
  };
  struct Symbol;

  BpeModel() = default;
  absl::Status LoadVocab(const nlohmann::json& vocab, std::string_view key);
  absl::Status LoadMerges(const nlohmann::json& merges, std::string_view key);
  // The symbols of `piece` before any merge (chars, byte-fallback bytes, unk).
  void InitialSymbols(std::string_view piece, std::vector<Symbol>& symbols) const;
  void MergeAll(std::vector<Symbol>& symbols) const;
  const Merge* FindMerge(TokenId left, TokenId right) const;

  Options options_;
  std::optional<TokenId> unk_id_;
  absl::flat_hash_map<std::string, TokenId> token_to_id_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_token_;
  absl::flat_hash_map<uint64_t, Merge> merges_;  // key: left id << 32 | right id
  std::array<TokenId, 256> byte_tokens_{};       // "<0xAB>" ids, -1 where absent
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_BPE_MODEL_H_
