// Decides when one sequence stops and which of its text the client may see.
#ifndef STRATA_ENGINE_SAMPLING_STOP_CHECKER_H_
#define STRATA_ENGINE_SAMPLING_STOP_CHECKER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "engine/sampling/sampling_params.h"

namespace strata::engine {

// The OpenAI finish_reason values a StopChecker can produce. Aborts and
// errors are the scheduler's business, not the stop checker's.
enum class FinishKind : uint8_t {
  kStop,    // an EOS token, a stop token id or a stop string
  kLength,  // max_tokens generated
};

struct FinishReason {
  FinishKind kind = FinishKind::kStop;
  // For kStop exactly one of these is set: the token that stopped the
  // sequence (a model EOS or one of params.stop_token_ids) or the stop string
  // that matched. Both are empty for kLength.
  std::optional<TokenId> stop_token_id;
  std::optional<std::string> stop_string;
  bool eos = false;  // stop_token_id is one of the model's EOS ids

  // "stop" or "length", as the OpenAI API spells them.
  std::string_view Name() const;
};

struct StopUpdate {
  // Text the client may see now. Never contains any part of a matched stop
  // string, nor a prefix of one that later text could still complete.
  std::string text_to_emit;
  // Set on the token that ends the sequence.
  std::optional<FinishReason> finish;
};

// Tracks one sequence's stop conditions: the model's EOS ids (unless
// params.ignore_eos), params.stop_token_ids, params.max_tokens, and
// params.stop_strings matched across token boundaries.
//
// Stop strings are found with an Aho-Corasick automaton over bytes, so each
// Push costs O(new_text) amortized plus copying at most the longest stop
// string, whatever the number of stop strings. Text that may be the start of
// a stop string is held back until it is known not to be one.
//
// Checks run in this order on each token: EOS, stop token ids, stop strings,
// length. So a stop string completed by the max_tokens-th token reports
// "stop", and a stop token is never counted as text (its text is dropped,
// as vLLM does). Among stop strings, the one ending earliest in the text wins
// (the longest on a tie), which makes the result independent of how the
// text is split into tokens.
//
// Thread-compatible: one sequence, one owner. Empty stop strings (which
// ValidateSamplingParams rejects) are ignored.
class StopChecker {
 public:
  // Copies what it needs from `params` and `eos_token_ids`; neither is
  // borrowed past the call.
  StopChecker(const SamplingParams& params, absl::Span<const TokenId> eos_token_ids);

  StopChecker(const StopChecker&) = default;
  StopChecker& operator=(const StopChecker&) = default;
  StopChecker(StopChecker&&) = default;
  StopChecker& operator=(StopChecker&&) = default;

  // Records generated token `id` whose detokenized text is `new_text` (may be
  // empty, e.g. while the detokenizer waits for the rest of a UTF-8
  // character). When the update carries `finish`, its text_to_emit is all
  // the text the client has left to see: held-back text is included (EOS,
  // stop token, length) or dropped because it belongs to the matched stop
  // string. CHECK-fails if called after the sequence finished, which is a
  // scheduler bug.
  StopUpdate Push(TokenId id, std::string_view new_text);

  // Ends the sequence and returns the text still held back (empty if Push
  // already reported a finish). For sequences ended from outside, e.g. by
  // an abort or the context limit. Calling it again returns "".
  std::string Flush();

  bool finished() const { return finished_; }
  // Tokens pushed so far, the stop token included.
  int32_t num_tokens() const { return num_tokens_; }
  // Bytes held back because they may start a stop string; below the length
  // of the longest stop string.
  size_t held_back_bytes() const { return held_.size(); }

 private:
  // One automaton state: the longest stop-string prefix that is a suffix of
  // the text so far.
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t fail = 0;    // state of the longest proper suffix that is also a prefix
    int32_t depth = 0;   // length of this state's prefix
    int32_t match = -1;  // longest stop string that is a suffix here (index), or -1
  };

  void AddStopString(int32_t index);
  void BuildFailureLinks();
  int32_t Child(int32_t node, unsigned char byte) const;
  int32_t Step(int32_t node, unsigned char byte) const;
  bool IsStopToken(TokenId id, bool* eos) const;
  StopUpdate Finish(std::string text, FinishReason reason);

  std::vector<TokenId> eos_token_ids_;
  std::vector<TokenId> stop_token_ids_;
  std::vector<std::string> stop_strings_;
  int32_t max_tokens_ = 0;
  bool ignore_eos_ = false;

  std::vector<Node> nodes_;  // nodes_[0] is the root (the empty prefix)
  int32_t state_ = 0;
  std::string held_;  // always the last nodes_[state_].depth bytes of the text
  int32_t num_tokens_ = 0;
  bool finished_ = false;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_SAMPLING_STOP_CHECKER_H_
