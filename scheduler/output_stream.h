// One request's output as its client sees it: the scheduler's token events
// turned into text (incremental detokenization) with stop strings applied.
// The engine thread only schedules and executes; EngineService runs one
// OutputStream per request on its event dispatch thread, and so can any
// caller that drives a Scheduler directly.
//
// The scheduler stops a request on token ids alone (EOS, stop token ids,
// max_tokens, the context length). A stop string is found here, after the
// fact: the stream then ends the request for its client (finish reason
// kStop, the text cut before the match) and reports stopped_early(), so the
// caller tells the scheduler to stop it (Scheduler::StopEarly). The tokens
// the engine computed meanwhile are never shown.
//
// Thread-compatible: one request, one owner.
#ifndef STRATA_SCHEDULER_OUTPUT_STREAM_H_
#define STRATA_SCHEDULER_OUTPUT_STREAM_H_

#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "engine/sampling/stop_checker.h"
#include "engine/tokenizer/incremental_detokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/request.h"
#include "scheduler/scheduler.h"

namespace strata::scheduler {

class OutputStream {
 public:
  // Borrows `tokenizer`, which must outlive the stream; copies what it needs
  // of `request` (its prompt primes the detokenizer, so the first output
  // token keeps its leading space).
  OutputStream(const engine::Tokenizer& tokenizer, const Request& request,
               absl::Span<const TokenId> eos_token_ids);

  // Fills `event.text` for the client. May end the stream: on a stop string
  // (event.finished set, reason kStop), or on a detokenization error
  // (kError). Events after the stream ended must not be applied: check
  // finished() first and drop them.
  void Apply(TokenEvent& event);

  bool finished() const { return finished_; }
  // The stream ended on a stop string the scheduler does not know of: the
  // request is still running there.
  bool stopped_early() const { return stopped_early_; }

 private:
  void End(TokenEvent& event, FinishReason reason, bool flush);

  engine::IncrementalDetokenizer detokenizer_;
  engine::StopChecker stop_checker_;
  bool finished_ = false;
  bool stopped_early_ = false;
};

// OutputStreams for a caller that drives a Scheduler directly (a command,
// a benchmark, a test) rather than through EngineService: one per request,
// ended early in the scheduler as EngineService's dispatcher does.
class OutputStreams {
 public:
  // Borrows `tokenizer`, which must outlive this.
  OutputStreams(const engine::Tokenizer& tokenizer, std::vector<TokenId> eos_token_ids)
      : tokenizer_(tokenizer), eos_token_ids_(std::move(eos_token_ids)) {}

  // Call with each request added to the scheduler.
  void Add(const Request& request);
  // Applies each event to its request's stream; drops the events of a
  // request that already ended for its client, and ends early in
  // `scheduler` a request whose stream ended first.
  std::vector<TokenEvent> Apply(Scheduler& scheduler, std::vector<TokenEvent> events);

 private:
  const engine::Tokenizer& tokenizer_;
  std::vector<TokenId> eos_token_ids_;
  absl::flat_hash_map<RequestId, std::unique_ptr<OutputStream>> streams_;
};

// The finish reason of a StopChecker's finish kind (kLength or kStop).
FinishReason FinishReasonOf(engine::FinishKind kind);

// The sampling parameters the scheduler checks: `params` without its stop
// strings, which only an OutputStream can see.
engine::SamplingParams TokenLevelStops(engine::SamplingParams params);

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_OUTPUT_STREAM_H_
