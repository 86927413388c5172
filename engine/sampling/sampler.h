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

// Applies params' penalties to `logits` in place, HF/vLLM style: the
// repetition penalty divides positive logits and multiplies the others, once
// per distinct token of prompt or output; then frequency_penalty times the
// token's count in the output, and presence_penalty once, are subtracted for
// each token of the output. History ids outside [0, logits.size()) are
// ignored. O(history) with one hash map; thread-compatible.
void ApplyPenalties(absl::Span<float> logits, const SamplingParams& params,
                    const TokenHistory& history);

// Samples one token. Deterministic given (logits, params, history): with a
// seed, the random draw depends only on params.seed and history.output.size(),
// so batching and scheduling never change a seeded request's output. Without
// a seed, draws come from a per-process random source. `logits` is not
// modified. Thread-compatible: no shared mutable state besides that source
// (lock-free) and per-thread scratch buffers.
//
// Order: penalties, then temperature 0 -> argmax (ties to the lowest id);
// otherwise temperature, top-k, top-p, min-p, then one draw.
// Odd logits never crash: -inf entries are never sampled, NaN counts as -inf
// and +inf as the largest float. If no entry is above -inf the result is
// token 0, and its logprobs describe the uniform distribution (-log vocab).
// Tokens with -inf raw logits get logprob -inf. `logits` must be non-empty
// (CHECK). `params` should have passed ValidateSamplingParams; out-of-range
// values still never crash (a non-positive temperature means greedy).
// Cost: one pass over the vocabulary for greedy; for sampling, O(vocab)
// expected with no full sort (a bounded heap for small top_k, a bucketed
// selection by mass for top_p). Logprobs add two passes when asked for.
SampledToken SampleToken(absl::Span<const float> logits, const SamplingParams& params,
                         const TokenHistory& history);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_SAMPLING_SAMPLER_H_
