// What the scheduler takes in (a Request) and gives out (TokenEvents). Plain
// values with no protobuf in sight: server/ converts to and from the wire.
#ifndef STRATA_SCHEDULER_REQUEST_H_
#define STRATA_SCHEDULER_REQUEST_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/sampling_params.h"
#include "scheduler/finish_reason.h"

namespace strata::scheduler {

using RequestId = int64_t;
using engine::TokenId;
using Clock = std::chrono::steady_clock;

// What a request asks beyond generation.
enum class RequestKind : uint8_t {
  kGenerate = 0,
  // Compute (or load from a lower tier) the prompt's KV and stop: no token is
  // sampled. The finished event's reason is kPrefilled. CacheControl's
  // prefetch and pin are this kind.
  kPrefill = 1,
};

// CacheBlend: a span of the prompt that is a chunk cached on its own.
struct ChunkSpan {
  int64_t begin = 0;   // index into prompt_ids
  int64_t length = 0;  // > 0
};

// How a blend request fuses its cached chunks (engine::BlendSpec).
struct BlendOptions {
  float recompute_ratio = 0.15f;  // in [0, 1]
  // Ascending, < the model's layers; several filter gradually.
  std::vector<int32_t> check_layers{1, 2, 3};
};

struct Request {
  RequestId id = 0;
  RequestKind kind = RequestKind::kGenerate;
  std::vector<TokenId> prompt_ids;
  engine::SamplingParams sampling;
  // Keeps tenants' prefix caches apart: requests share cached blocks only
  // when their salts are equal. Set by server/ from the authenticated
  // identity, never from the request body.
  std::string cache_salt;
  // Leading prompt tokens that are public (a system prompt every tenant
  // sends): its first floor(public_prefix_tokens / block_size) full blocks
  // are keyed without the salt, so every tenant shares them; the salt covers
  // everything after. Set by server/ from trusted configuration, like the
  // salt. Clamped to the prompt's length; negative is INVALID_ARGUMENT.
  int64_t public_prefix_tokens = 0;

  // Affinity. A session's KV stays at high eviction priority for
  // SchedulerOptions::session_ttl after each of its turns. A workflow's
  // agents take turns: when this request names the agents that run next,
  // their last KV is kept, or prefetched from a lower tier, ahead of their
  // requests. next_agent_ids is in turn order (the first runs next): the
  // agents that run soonest are kept longest (scheduler/workflow_tracker.h).
  // Empty: none.
  std::string session_id;
  std::string workflow_id;
  std::string agent_id;
  std::vector<std::string> next_agent_ids;

  // Higher runs first, and is preempted last. Within a priority the policy
  // orders (SchedulerOptions::policy).
  int32_t priority = 0;
  // Aborted with finish reason "deadline" (status DEADLINE_EXCEEDED) once
  // passed, waiting or running; its blocks are freed.
  std::optional<Clock::time_point> deadline;
  // Kind kPrefill only: keep the prompt's blocks at pinned priority until the
  // session (or, without one, the pin) is released.
  bool pin = false;

  // CacheBlend (engine/step.h, BlendSpec), with `blend` set: the spans of
  // prompt_ids that are chunks (ascending, disjoint, non-empty). Each chunk
  // is computed and cached on its own first (as a prompt of its own: after
  // chunk_context_tokens, under this request's salt) unless some tier holds it; then the prompt is
  // computed in one blend step that reuses the chunks' K/V at their positions and recomputes a
  // fraction of their tokens. Tokens outside the chunks are computed exactly (those before the
  // first chunk may come from the prefix cache). Kind kPrefill with `blend`: only cache each chunk
  // on its own. Blended K/V is never registered in the prefix cache. Without the prefix cache
  // (SchedulerOptions::enable_prefix_cache off) `blend` is ignored.
  std::vector<ChunkSpan> chunks;
  std::optional<BlendOptions> blend;
  // The first chunk_context_tokens prompt tokens (the template's BOS, at most
  // up to the first chunk) stand before every chunk when it is computed on
  // its own, as they would before any prompt of its own: a chunk's K/V then
  // carries the attention sink the blended prompt has too.
  int64_t chunk_context_tokens = 0;
};

// Where the prompt's KV came from, reported with the first and the final
// event of a request.
struct PromptUsage {
  int64_t prompt_tokens = 0;
  // Prompt tokens whose KV was reused, by the tier it came from
  // (cache::Tier order: device, host, disk). The rest were computed.
  std::array<int64_t, 3> cached_tokens_by_tier{};
  int64_t cached_tokens() const {
    return cached_tokens_by_tier[0] + cached_tokens_by_tier[1] + cached_tokens_by_tier[2];
  }
  // CacheBlend: chunk tokens whose cached K/V was reused as placed, and
  // chunk tokens recomputed (engine::SequenceOutput). Neither is in
  // cached_tokens_by_tier.
  int64_t blend_reused_tokens = 0;
  int64_t blend_recomputed_tokens = 0;
};

// One generated token (or the end) of one request, in order.
struct TokenEvent {
  RequestId request_id = 0;
  std::optional<TokenId> token_id;              // absent on an event that only finishes or fails
  std::string text;                             // text now final for the client; may be empty
  std::optional<engine::SampledToken> sampled;  // logprobs when asked for
  bool finished = false;
  FinishReason finish_reason = FinishReason::kStop;  // meaningful when finished
  absl::Status error;  // set when finish_reason is kError or kDeadline
  // Set on the request's first token event and on its finished event: the
  // prompt's size and cache hits as of its (last) admission.
  std::optional<PromptUsage> usage;
  int64_t generated_tokens = 0;  // output tokens so far, this one included
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_REQUEST_H_
