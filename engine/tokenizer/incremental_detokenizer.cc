#include "engine/tokenizer/incremental_detokenizer.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/tokenizer/decoder.h"

namespace strata::engine {
namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

// A character is at most 4 bytes, so at most 4 byte-fallback ids. A trailing
// U+FFFD still there after this many pending ids is real output, not a
// character the next id may complete.
constexpr size_t kMaxHeldIds = 4;
// Dropped ids are compacted away once this many precede the window.
constexpr size_t kCompactThreshold = 64;

bool IsContinuationByte(char c) { return (static_cast<uint8_t>(c) & 0xC0) == 0x80; }

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens,
                                               absl::Span<const TokenId> context)
    : IncrementalDetokenizer(tokenizer, skip_special_tokens) {
  // A few ids of context settle how the next id decodes (a leading space, a
  // character cut across ids); kMaxHeldIds + 1 covers both.
  absl::Span<const TokenId> tail = context.subspan(
      context.size() > kMaxHeldIds + 1 ? context.size() - (kMaxHeldIds + 1) : 0);
  ids_.assign(tail.begin(), tail.end());
  read_offset_ = ids_.size();
}

absl::StatusOr<IncrementalDetokenizer::WindowText> IncrementalDetokenizer::DecodeWindow() const {
  absl::Span<const TokenId> ids(ids_);
  // The prefix ids are decoded too so that context-dependent decoders (the
  // Strip of SentencePiece's leading space, Metaspace's first token) treat
  // the new ids as they would in Decode(all ids).
  absl::StatusOr<std::string> prefix = tokenizer_.Decode(
      ids.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  if (!prefix.ok()) return prefix.status();
  absl::StatusOr<std::string> text =
      tokenizer_.Decode(ids.subspan(prefix_offset_), skip_special_tokens_);
  if (!text.ok()) return text.status();
  std::string seen = *std::move(prefix) + emitted_past_read_;
  size_t start = seen.size();
  if (!std::string_view(*text).starts_with(seen)) {
    // The decoder rewrote text already emitted (byte-fallback runs that turn
    // invalid do this); what was sent stays sent, so resume at the next
    // character boundary, which keeps the output valid UTF-8.
    start = std::min(start, text->size());
    while (start < text->size() && IsContinuationByte((*text)[start])) ++start;
  }
  return WindowText{*std::move(text), start};
}

void IncrementalDetokenizer::Advance() {
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  emitted_past_read_.clear();
  // Keep memory bounded on long streams; amortised O(1) per id.
  if (prefix_offset_ >= kCompactThreshold && prefix_offset_ * 2 >= ids_.size()) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
}

absl::StatusOr<std::string> IncrementalDetokenizer::Push(TokenId id) {
  if (finished_) return absl::FailedPreconditionError("IncrementalDetokenizer: Push after Finish");
  ids_.push_back(id);
  absl::StatusOr<WindowText> window = DecodeWindow();
  if (!window.ok()) {
    ids_.pop_back();
    return window.status();
  }
  std::string_view fresh = std::string_view(window->text).substr(window->fresh_start);
  // Hold back a cut-off character and, in case the tokenizer already turned
  // one into U+FFFD, trailing replacement characters.
  const size_t tail = IncompleteUtf8TailLength(fresh);
  size_t stable = fresh.size() - tail;
  while (fresh.substr(0, stable).ends_with(kReplacementChar)) stable -= kReplacementChar.size();
  const bool only_replacements_held = tail == 0 && stable < fresh.size();
  if (only_replacements_held && ids_.size() - read_offset_ > kMaxHeldIds) stable = fresh.size();

  std::string out(fresh.substr(0, stable));
  if (stable == fresh.size()) {
    // An id that adds no text (a skipped special token) must not become the
    // window's only context: Strip would then cut the next id's space.
    if (!fresh.empty()) Advance();
  } else {
    emitted_past_read_ += out;
  }
  return out;
}

absl::StatusOr<std::string> IncrementalDetokenizer::Finish() {
  if (finished_) return std::string();
  std::string out;
  if (read_offset_ < ids_.size()) {
    absl::StatusOr<WindowText> window = DecodeWindow();
    if (!window.ok()) return window.status();
    out = Utf8Lossy(std::string_view(window->text).substr(window->fresh_start),
                    /*keep_incomplete_tail=*/false);
  }
  finished_ = true;
  ids_.clear();
  prefix_offset_ = read_offset_ = 0;
  emitted_past_read_.clear();
  return out;
}

}  // namespace strata::engine
