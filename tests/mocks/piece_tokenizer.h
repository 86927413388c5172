// A fake of engine::Tokenizer (engine/tokenizer/tokenizer.h) for tests: a
// fixed piece list and a real Decoder (engine/tokenizer/decoder.h), so that
// Decode is what the real one does (look pieces up, drop specials if asked,
// run the decoder); it does not encode. Records the longest id span it was
// asked to decode. Not thread-safe.
#ifndef STRATA_TESTS_MOCKS_PIECE_TOKENIZER_H_
#define STRATA_TESTS_MOCKS_PIECE_TOKENIZER_H_

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/tokenizer/decoder.h"
#include "engine/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace strata::testing {

class PieceTokenizer : public engine::Tokenizer {
 public:
  PieceTokenizer(std::string_view decoder_json, std::vector<std::string> pieces,
                 absl::flat_hash_set<engine::TokenId> special = {})
      : pieces_(std::move(pieces)), special_(std::move(special)) {
    auto decoder = engine::Decoder::FromJson(nlohmann::json::parse(decoder_json));
    ExpectOk(decoder);
    decoder_ = *std::move(decoder);
  }

  absl::StatusOr<std::vector<engine::TokenId>> Encode(std::string_view, bool) const override {
    return absl::UnimplementedError("the fake only decodes");
  }
  absl::StatusOr<std::string> Decode(absl::Span<const engine::TokenId> ids,
                                     bool skip_special_tokens) const override {
    longest_span_ = std::max(longest_span_, ids.size());
    std::vector<std::string> tokens;
    for (engine::TokenId id : ids) {
      if (id < 0 || id >= vocab_size()) return absl::InvalidArgumentError("id out of range");
      if (skip_special_tokens && IsSpecial(id)) continue;
      tokens.push_back(pieces_[id]);
    }
    return decoder_->Decode(std::move(tokens));
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  std::optional<engine::TokenId> TokenToId(std::string_view token) const override {
    auto it = std::find(pieces_.begin(), pieces_.end(), token);
    if (it == pieces_.end()) return std::nullopt;
    return static_cast<engine::TokenId>(it - pieces_.begin());
  }
  std::optional<std::string> IdToToken(engine::TokenId id) const override {
    if (id < 0 || id >= vocab_size()) return std::nullopt;
    return pieces_[id];
  }
  bool IsSpecial(engine::TokenId id) const override { return special_.contains(id); }
  std::optional<engine::TokenId> bos_id() const override { return std::nullopt; }
  std::optional<engine::TokenId> eos_id() const override { return std::nullopt; }

  // The id of `piece`, added to the vocabulary if new.
  engine::TokenId Id(const std::string& piece) {
    if (auto id = TokenToId(piece)) return *id;
    pieces_.push_back(piece);
    return static_cast<engine::TokenId>(pieces_.size() - 1);
  }
  size_t longest_span() const { return longest_span_; }

 private:
  static void ExpectOk(const absl::StatusOr<std::unique_ptr<engine::Decoder>>& decoder) {
    ASSERT_TRUE(decoder.ok()) << decoder.status();
  }

  std::vector<std::string> pieces_;
  absl::flat_hash_set<engine::TokenId> special_;
  std::unique_ptr<engine::Decoder> decoder_;
  mutable size_t longest_span_ = 0;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_MOCKS_PIECE_TOKENIZER_H_
