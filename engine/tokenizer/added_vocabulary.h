// The "added_tokens" of tokenizer.json: tokens matched in the text before the
// model sees it (special tokens such as <s> or <|im_start|>, and others).
// Matching follows the Hugging Face tokenizers library: leftmost-longest,
// non-overlapping; tokens with normalized=false are matched in the raw text,
// those with normalized=true in the normalized text; lstrip/rstrip swallow
// adjacent whitespace; single_word rejects a match inside a word.
#ifndef STRATA_ENGINE_TOKENIZER_ADDED_VOCABULARY_H_
#define STRATA_ENGINE_TOKENIZER_ADDED_VOCABULARY_H_

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/normalizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

struct AddedToken {
  std::string content;
  TokenId id = 0;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A run of text, or a matched added token (then `text` is what it covered).
struct TextSegment {
  std::string_view text;
  std::optional<TokenId> id;
};

class AddedVocabulary {
 public:
  // `json` is the "added_tokens" array (null means none). `normalizer` (may
  // be null; borrowed only during the call) normalizes the content of
  // normalized tokens. INVALID_ARGUMENT names a malformed entry.
  static absl::StatusOr<std::unique_ptr<AddedVocabulary>> FromJson(const nlohmann::json& json,
                                                                   std::string_view key,
                                                                   const Normalizer* normalizer);

  // Splits `text` around the tokens with normalized=false (`normalized_pass`
  // false: raw text) or normalized=true (true: normalized text), appending the
  // segments in order; no segment is empty. The segments borrow `text`.
  // Thread-safe.
  void Split(std::string_view text, bool normalized_pass, std::vector<TextSegment>& out) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Patterns grouped by first byte, longest first, so the first hit at a
  // position is the leftmost-longest match.
  struct Matcher {
    struct Pattern {
      std::string text;
      size_t token_index;
    };
    std::array<std::vector<Pattern>, 256> by_first_byte;
    bool empty = true;
  };

  AddedVocabulary() = default;
  void BuildMatchers(const Normalizer* normalizer);
  // Applies single_word/lstrip/rstrip to a raw match; false if rejected.
  bool AdjustMatch(const AddedToken& token, std::string_view text, size_t segment_start,
                   size_t& begin, size_t& end) const;

  std::vector<AddedToken> tokens_;
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_ADDED_VOCABULARY_H_
