// A mock of engine::Tokenizer (engine/tokenizer/tokenizer.h) for tests: a
// real tokenizer, counting the Encode calls (the tokenizer work). Not
// thread-safe.
#ifndef STRATA_TESTS_MOCKS_COUNTING_TOKENIZER_H_
#define STRATA_TESTS_MOCKS_COUNTING_TOKENIZER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/tokenizer.h"

namespace strata::testing {

class CountingTokenizer final : public engine::Tokenizer {
 public:
  explicit CountingTokenizer(const engine::Tokenizer& real) : real_(real) {}
  absl::StatusOr<std::vector<engine::TokenId>> Encode(std::string_view text,
                                                      bool add_special_tokens) const override {
    ++encodes_;
    return real_.Encode(text, add_special_tokens);
  }
  absl::StatusOr<std::string> Decode(absl::Span<const engine::TokenId> ids,
                                     bool skip_special_tokens) const override {
    return real_.Decode(ids, skip_special_tokens);
  }
  int64_t vocab_size() const override { return real_.vocab_size(); }
  std::optional<engine::TokenId> TokenToId(std::string_view token) const override {
    return real_.TokenToId(token);
  }
  std::optional<std::string> IdToToken(engine::TokenId id) const override {
    return real_.IdToToken(id);
  }
  bool IsSpecial(engine::TokenId id) const override { return real_.IsSpecial(id); }
  std::optional<engine::TokenId> bos_id() const override { return real_.bos_id(); }
  std::optional<engine::TokenId> eos_id() const override { return real_.eos_id(); }
  int encodes() const { return encodes_; }

 private:
  const engine::Tokenizer& real_;
  mutable int encodes_ = 0;
};

}  // namespace strata::testing

#endif  // STRATA_TESTS_MOCKS_COUNTING_TOKENIZER_H_
