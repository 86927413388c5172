// The scheduler's record of one request (private to Scheduler, shared by its
// source files: scheduler.cc, scheduler_blend.cc and scheduler_checks.cc).
#ifndef STRATA_SCHEDULER_SCHEDULER_SEQUENCE_H_
#define STRATA_SCHEDULER_SCHEDULER_SEQUENCE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/output_stream.h"
#include "scheduler/scheduler.h"

namespace strata::scheduler {

struct Scheduler::Sequence {
  Sequence(Request r, absl::Span<const TokenId> eos_ids)
      : request(std::move(r)),
        // Token ids only: stop strings need text, which OutputStream makes
        // off the engine thread.
        stop_checker(TokenLevelStops(request.sampling), eos_ids),
        tokens(request.prompt_ids) {}

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t prompt_len() const { return static_cast<int64_t>(request.prompt_ids.size()); }
  cache::CacheSalt salt() const { return cache::CacheSalt(request.cache_salt, public_blocks); }
  bool has_agent() const { return !request.workflow_id.empty() && !request.agent_id.empty(); }
  AgentKey agent() const { return {request.cache_salt, request.workflow_id, request.agent_id}; }

  Request request;
  std::vector<TokenId> output_ids;
  engine::StopChecker stop_checker;
  std::vector<TokenId> tokens;                  // prompt then output: what the prefix cache hashes
  int64_t computed = 0;                         // tokens whose K/V are in the sequence's blocks
  RequestState state = RequestState::kWaiting;  // changed only by Scheduler::MoveTo
  std::optional<FinishReason> finish_reason;    // set once kFinished
  // This step's device prefix (Scheduler::DevicePrefix): valid while
  // prefix_step is the current step and no block was evicted since
  // prefix_evictions (the cache's eviction count when it was looked up).
  cache::CachedPrefix prefix;
  int64_t prefix_step = -1;
  int64_t prefix_evictions = -1;
  uint64_t arrival = 0;
  Clock::time_point arrived{};
  Clock::time_point preempted_at{};  // its last preemption, if any
  uint64_t admission = 0;  // running order among equal priorities
  int64_t tokens_at_admission = 0;  // num_tokens() when last admitted
  int64_t public_blocks = 0;
  // Prefix cache on: the chain keys of the full blocks before the last token
  // (the last-token rule), hashed once and extended as the tokens grow.
  std::vector<cache::BlockKey> keys;
  // While kLoading: the lower-tier lookups of blocks load_first_block on.
  std::unique_ptr<cache::PrefixLoad> load;
  int64_t load_first_block = 0;
  // While kSwapped: slot i holds block i, swapped_tokens of K/V in all.
  std::vector<int32_t> swap_slots;
  int64_t swapped_tokens = 0;
  int64_t preempted_step = -1;  // not readmitted in the step that preempted it
  bool grouped = false;         // counted in grouped_waits
  PromptUsage usage;            // as of the last admission

  // CacheBlend (request.blend set; scheduler_blend.cc).
  // Each span's ChunkKeys, hashed once at AddRequest (like `keys`).
  std::vector<std::vector<cache::BlockKey>> chunk_keys;
  int64_t pending_fills = 0;  // chunk fills it waits for
  int fill_rounds = 0;        // times its fills were started (bounded)
  // Its blend step ran: its K/V from the first chunk on is approximate.
  bool blended = false;
  // Admitted, blend step not yet run: the cache sequence that references its
  // chunks' blocks (so no allocation evicts them), and those blocks by span.
  cache::SeqId holder = 0;
  std::vector<std::vector<cache::BlockId>> chunk_blocks;
  // A chunk fill (internal, negative id): a chunk computed on its own for the
  // blend requests in fill_waiters (an id once per span it serves).
  bool is_fill = false;
  cache::BlockKey fill_key;
  std::vector<RequestId> fill_waiters;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_SCHEDULER_SEQUENCE_H_
