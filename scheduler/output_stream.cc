#include "scheduler/output_stream.h"

#include <string>

namespace strata::scheduler {

OutputStream::OutputStream(const engine::Tokenizer& tokenizer, const Request& request,
                           absl::Span<const TokenId> eos_token_ids)
    : detokenizer_(tokenizer, /*skip_special_tokens=*/true, request.prompt_ids),
      stop_checker_(request.sampling, eos_token_ids) {}

void OutputStream::Apply(TokenEvent& event) {
  if (!event.token_id) {
    // A finish without a token (abort, deadline, error, prefilled): nothing
    // held back belongs to the client.
    if (event.finished) finished_ = true;
    return;
  }
  absl::StatusOr<std::string> piece = detokenizer_.Push(*event.token_id);
  if (!piece.ok()) {
    event.error = piece.status();
    stopped_early_ = !event.finished;
    End(event, FinishReason::kError, /*flush=*/false);
    return;
  }
  engine::StopUpdate update = stop_checker_.Push(*event.token_id, *piece);
  event.text = std::move(update.text_to_emit);
  if (update.finish) {
    // A matched stop string drops what follows it; otherwise the text held
    // in the detokenizer (a cut-off character) still belongs to the client.
    if (!update.finish->stop_string) event.text += detokenizer_.Finish().value_or("");
    if (update.finish->stop_string) {
      // The scheduler cannot see stop strings: it may have stopped on this
      // same token for a token-level reason, or not at all.
      stopped_early_ = !event.finished;
      event.finish_reason = FinishReason::kStop;
    } else if (!event.finished) {
      // Both apply the same token-level rules in the same order.
      event.finish_reason = FinishReasonOf(update.finish->kind);
      stopped_early_ = true;
    }
    event.finished = true;
    finished_ = true;
    return;
  }
  if (event.finished) {
    // Ended by the scheduler alone (the context is full, or an error).
    const bool complete =
        event.finish_reason == FinishReason::kLength || event.finish_reason == FinishReason::kStop;
    End(event, event.finish_reason, complete);
  }
}

void OutputStream::End(TokenEvent& event, FinishReason reason, bool flush) {
  if (flush) event.text += stop_checker_.Flush() + detokenizer_.Finish().value_or("");
  event.finished = true;
  event.finish_reason = reason;
  finished_ = true;
}

void OutputStreams::Add(const Request& request) {
  streams_[request.id] = std::make_unique<OutputStream>(tokenizer_, request, eos_token_ids_);
}

std::vector<TokenEvent> OutputStreams::Apply(Scheduler& scheduler, std::vector<TokenEvent> events) {
  std::vector<TokenEvent> delivered;
  for (TokenEvent& event : events) {
    auto it = streams_.find(event.request_id);
    if (it == streams_.end()) continue;  // ended early: the engine's leftovers
    it->second->Apply(event);
    if (event.finished) {
      if (it->second->stopped_early()) {
        scheduler.EndEarly(event.request_id, event.finish_reason).IgnoreError();
      }
      streams_.erase(it);
    }
    delivered.push_back(std::move(event));
  }
  return delivered;
}

FinishReason FinishReasonOf(engine::FinishKind kind) {
  return kind == engine::FinishKind::kLength ? FinishReason::kLength : FinishReason::kStop;
}

engine::SamplingParams TokenLevelStops(engine::SamplingParams params) {
  params.stop_strings.clear();
  return params;
}

}  // namespace strata::scheduler
