// Streaming detokenization: feed ids one at a time and get back only text that
// is final. Never emits a broken UTF-8 sequence, and the concatenation of
// everything emitted equals Decode(all ids) (for complete UTF-8).
#ifndef STRATA_ENGINE_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
#define STRATA_ENGINE_TOKENIZER_INCREMENTAL_DETOKENIZER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/tokenizer/tokenizer.h"

namespace strata::engine {

class IncrementalDetokenizer {
 public:
  // Borrows `tokenizer`, which must outlive this object. Not thread-safe: one
  // per sequence.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);
  // Starts after `context` (a prompt), whose text is never emitted: the
  // first pushed ids decode as they would following it, e.g. keeping the
  // leading space a SentencePiece decoder strips at the start of a text. Only
  // the last few context ids are kept.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                         absl::Span<const TokenId> context);

  // Appends `id`; returns the new text that is now certain (maybe empty).
  // Errors are Tokenizer::Decode's (the id is then not appended);
  // FAILED_PRECONDITION after Finish.
  absl::StatusOr<std::string> Push(TokenId id);
  // End of stream: returns whatever is left, with an incomplete trailing
  // UTF-8 sequence replaced by U+FFFD.
  absl::StatusOr<std::string> Finish();

 private:
  // The window's text (Decode(ids_[prefix_offset_:])) and where its
  // not-yet-emitted part starts.
  struct WindowText {
    std::string text;
    size_t fresh_start;
  };
  absl::StatusOr<WindowText> DecodeWindow() const;
  // Moves the window on once everything up to the last id has been emitted.
  void Advance();

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<TokenId> ids_;  // ids before prefix_offset_ are dropped now and then
  size_t prefix_offset_ = 0;  // start of the window decoded for context
  size_t read_offset_ = 0;    // ids before this have been emitted
  // Text past Decode(ids_[prefix_offset_:read_offset_]) already emitted while
  // the window's tail was held back (a cut-off character).
  std::string emitted_past_read_;
  bool finished_ = false;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
