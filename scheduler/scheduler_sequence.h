// The scheduler's record of one request (private to Scheduler, shared by its
// two source files: scheduler.cc and scheduler_blend.cc).
#ifndef STRATA_SCHEDULER_SCHEDULER_SEQUENCE_H_
#define STRATA_SCHEDULER_SCHEDULER_SEQUENCE_H_

#include <memory>
#include <string>
#include <vector>

#include "scheduler/scheduler.h"

namespace strata::scheduler {

struct Scheduler::Sequence {
  Sequence(Request r, const engine::Tokenizer& tokenizer, absl::Span<const TokenId> eos_ids)
      : request(std::move(r)),
        // Primed with the prompt so the first output token keeps its leading
        // space (SentencePiece strips it only at the very start of a text).
        detokenizer(tokenizer, /*skip_special_tokens=*/true, request.prompt_ids),
        stop_checker(request.sampling, eos_ids),
        tokens(request.prompt_ids) {}

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }
  int64_t prompt_len() const { return static_cast<int64_t>(request.prompt_ids.size()); }
  cache::CacheSalt salt() const { return cache::CacheSalt(request.cache_salt, public_blocks); }
  bool has_agent() const { return !request.workflow_id.empty() && !request.agent_id.empty(); }
  AgentKey agent() const { return {request.cache_salt, request.workflow_id, request.agent_id}; }

  Request request;
  std::vector<TokenId> output_ids;
  engine::IncrementalDetokenizer detokenizer;
  engine::StopChecker stop_checker;
  std::vector<TokenId> tokens;  // prompt then output: what the prefix cache hashes
  int64_t computed = 0;         // tokens whose K/V are in the sequence's blocks
  bool done = false;
  std::string end_reason;  // "abort" or "deadline" once ended between steps
  uint64_t arrival = 0;
  Clock::time_point arrived{};
  uint64_t admission = 0;  // running order among equal priorities
  int64_t public_blocks = 0;
  // Prefix cache on: the chain keys of the full blocks before the last token
  // (the last-token rule), hashed once and extended as the tokens grow.
  std::vector<cache::BlockKey> keys;
  // While LOADING: the lower-tier lookups of blocks load_first_block on.
  std::unique_ptr<cache::PrefixLoad> load;
  int64_t load_first_block = 0;
  // While swapped out: slot i holds block i, swapped_tokens of K/V in all.
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
