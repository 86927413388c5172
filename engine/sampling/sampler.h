// Chooses the next token of one sequence from its logits.
#ifndef STRATA_ENGINE_SAMPLING_SAMPLER_H_
#define STRATA_ENGINE_SAMPLING_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "engine/sampling/sampling_params.h"

namespace strata::engine {

struct TokenLogprob {
  TokenId id = 0;
  float logprob = 0.0f;  // log-softmax of the raw logits (before penalties)
};

struct SampledToken {
  TokenId id = 0;
  float logprob = 0.0f;                    // set when params.return_logprob
  std::vector<TokenLogprob> top_logprobs;  // params.top_logprobs entries, best first
};

// The tokens a sequence has seen, for penalties.
struct TokenHistory {
  absl::Span<const TokenId> prompt;
  absl::Span<const TokenId> output;
};

// Samples one token. Deterministic given (logits, params, history): with a
// seed, the random draw depends only on params.seed and history.output.size(),
// so batching and scheduling never change a seeded request's output. Without
// a seed, draws come from a per-process random source. `logits` is not
// modified. Thread-compatible: no shared mutable state besides that source.
SampledToken SampleToken(absl::Span<const float> logits, const SamplingParams& params,
                         const TokenHistory& history);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_SAMPLING_SAMPLER_H_
