// Why a request ended. An enum across the engine, the scheduler and the
// server; spelled as a string only at the edges (the proto, the OpenAI API,
// metric labels and logs) by FinishReasonName.
#ifndef STRATA_SCHEDULER_FINISH_REASON_H_
#define STRATA_SCHEDULER_FINISH_REASON_H_

#include <cstdint>
#include <string_view>

namespace strata::scheduler {

enum class FinishReason : uint8_t {
  kStop,       // an EOS token, a stop token id or a stop string
  kLength,     // max_tokens generated, or the model's context is full
  kAbort,      // cancelled by the client (or the server shutting down)
  kDeadline,   // its deadline passed first
  kPrefilled,  // a kPrefill request: its prompt's KV is computed or loaded
  kError,      // failed: TokenEvent::error says why
};

// "stop", "length", "abort", "deadline", "prefilled", "error": the OpenAI
// spellings where OpenAI has one.
constexpr const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kDeadline:
      return "deadline";
    case FinishReason::kPrefilled:
      return "prefilled";
    case FinishReason::kError:
      return "error";
  }
  return "error";
}

// Every reason, for metrics that pre-create one series per reason.
inline constexpr FinishReason kAllFinishReasons[] = {
    FinishReason::kStop,     FinishReason::kLength,    FinishReason::kAbort,
    FinishReason::kDeadline, FinishReason::kPrefilled, FinishReason::kError};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_FINISH_REASON_H_
