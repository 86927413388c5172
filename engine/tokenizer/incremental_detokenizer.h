// Streaming detokenization: feed ids one at a time and get back only text that
// is final. Never emits a broken UTF-8 sequence, and the concatenation of
// everything emitted equals Decode(all ids) (for complete UTF-8).
#ifndef STRATA_ENGINE_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
#define STRATA_ENGINE_TOKENIZER_INCREMENTAL_DETOKENIZER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/tokenizer.h"

namespace strata::engine {

class IncrementalDetokenizer {
 public:
  // Borrows `tokenizer`, which must outlive this object. Not thread-safe: one
  // per sequence.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Appends `id`; returns the new text that is now certain (maybe empty).
  absl::StatusOr<std::string> Push(TokenId id);
  // End of stream: returns whatever is left, with an incomplete trailing
  // UTF-8 sequence replaced by U+FFFD.
  absl::StatusOr<std::string> Finish();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<TokenId> ids_;
  size_t prefix_offset_ = 0;  // start of the window decoded for context
  size_t read_offset_ = 0;    // ids before this have been emitted
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
