// Continuous batching over the step contract (DESIGN.md): Schedule() builds a
// StepPlan, the backend executes it, Update() advances every sequence and
// turns sampled tokens into TokenEvents. A sequence's computed count catches
// up with its tokens, which covers prefill, chunked prefill and decode alike.
//
// States. Each request is in one explicit RequestState (waiting, loading,
// running, swapped, finished; scheduler/request_state.h has the diagram),
// changed only by MoveTo, which checks the transition and keeps the queues
// in step. Each step is built by a PlanBuilder (scheduler/plan_builder.h),
// which owns the plan's moves and the record of what they leave in flight
// until Update settles it.
//
// Prefix lookups. Each queued request's device-cache prefix is looked up at
// most once per step (DevicePrefix); an eviction during the step, which may
// have removed one of its blocks, is the only reason to look again.
//
// Each step: requests past their deadline end; sessions and workflow holds
// expire; running sequences get their next chunk under the token budget
// (max_batch_tokens), preempting when blocks run out; waiting requests are
// admitted in the policy's order (scheduler/waiting_order.h) while budget,
// max_running and blocks last; then workflow prefetches land in blocks
// nobody holds.
// The policies live in small classes of their own: WaitingOrder (FCFS or
// cache-aware ordering with an ageing bound), InflightPrefixes (grouping of
// requests that share an uncached prefix), SessionRegistry and
// WorkflowTracker (eviction priorities through KeyHolds), and
// ChoosePreemption (swap or recompute).
//
// Prefix reuse: a request starts computing after its longest cached prefix
// of whole blocks (cache::KvCacheManager), every full block a step computes
// is registered for later requests, and a finished or preempted sequence
// leaves its blocks cached until they are evicted (lowest priority first:
// plain blocks, then workflow-soon, then session and pinned blocks).
//
// Tiers (optional: SchedulerOptions::host_tier / disk_tier). A device block
// evicted to make room is demoted: a device->host move at the front of the
// plan that reuses it copies its bytes into a staging slot before anything
// writes the block, and Update inserts them into the host tier (the disk
// tier when there is no host tier); the host tier's own evictions go to the
// disk tier, which writes on its own thread. With write-behind
// (write_behind_blocks_per_step), the blocks of ended requests are copied
// down in later plans ahead of their eviction, which then copies nothing
// (scheduler/write_behind.h). A waiting request whose prefix
// continues past the device index into the host or disk tier is LOADING:
// host hits are ready at once, disk reads run on the disk tier's threads and
// the step loop keeps stepping the others. Once its reads are done it is
// admitted like any other: device blocks are allocated, host->device moves
// in that plan fill them before the forward pass, its computed count starts
// after them, and Update registers them in the prefix index.
//
// CacheBlend (Request::blend, scheduler_blend.cc): each chunk of a blend
// request that no tier holds is first computed on its own by a chunk fill,
// an internal prefill request (negative id, no events) whose full blocks and
// partial tail are registered under the chunk's keys; fills of the same
// chunk are shared. Once every chunk is on the device the request is
// admitted: a holder references the chunks' blocks, and one blend step
// computes the rest of the prompt (its span may exceed the token budget)
// with the chunks' K/V placed at their positions. Blocks from the first
// chunk on are never committed to the prefix index. Chunks evicted before
// admission are filled again, at most twice, then the request is served as
// an exact prefill.
//
// Swap (a host tier configured, SchedulerOptions::preemption): a preempted
// sequence's computed blocks are copied into swap memory the scheduler holds
// (max_swap_blocks of the staging allocator's memory) and copied back when
// it resumes (scheduler/preemption_policy.h). Who is preempted: when blocks
// run out for running sequences, the last in running order; to admit a
// waiting request, a running one of lower priority, or, with
// yield_to_new_after_tokens, a decode of the same priority that has had its
// turn (swapped out, or recomputed when a lower tier keeps its evicted
// blocks), so that a request with no token yet gets its first.
#ifndef STRATA_SCHEDULER_SCHEDULER_H_
#define STRATA_SCHEDULER_SCHEDULER_H_

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "cache/demotions.h"
#include "cache/kv_cache_manager.h"
#include "cache/prefix_load.h"
#include "cache/staging_pool.h"
#include "engine/backend.h"
#include "engine/sampling/stop_checker.h"
#include "engine/step.h"
#include "scheduler/admission_gate.h"
#include "scheduler/finish_reason.h"
#include "scheduler/inflight_prefixes.h"
#include "scheduler/key_holds.h"
#include "scheduler/load_cost_model.h"
#include "scheduler/plan_builder.h"
#include "scheduler/preemption_policy.h"
#include "scheduler/request.h"
#include "scheduler/request_state.h"
#include "scheduler/session_registry.h"
#include "scheduler/waiting_order.h"
#include "scheduler/workflow_prefetcher.h"
#include "scheduler/workflow_tracker.h"
#include "scheduler/write_behind.h"
#include "storage/host_tier_store.h"
#include "storage/tier_store.h"

namespace strata::scheduler {

struct SchedulerOptions {
  int64_t block_size = 16;
  int64_t num_blocks = 0;          // the backend arena's block count
  int64_t max_batch_tokens = 512;  // tokens computed per step, all sequences
  int64_t max_running = 64;        // sequences in one step
  int64_t max_model_len = 0;       // prompt + output limit (the model's context)
  int64_t max_prompt_tokens = 0;   // longest prompt admitted; 0: max_model_len - 1
  int64_t vocab_size = 0;
  std::vector<TokenId> eos_token_ids;
  // Identity of the model's K/V for prefix-cache keys (cache/block_hash.h).
  // Left at its default, keys are only meaningful within one model's process.
  cache::ModelFingerprint model_fingerprint;
  // Shape of a KV block, for the cache's byte counters; `block_size` above is
  // the one used.
  engine::KvCacheSpec kv_spec;
  // Lower tiers, borrowed (they must outlive the scheduler); null for none.
  // Their block_bytes must be kv_spec's bytes per block.
  storage::TierStore* host_tier = nullptr;
  storage::TierStore* disk_tier = nullptr;
  // Memory for demotions in flight: the backend's host buffers (pinned on
  // CUDA, so moves are DMAs); heap when empty.
  storage::HostAllocator staging_allocator;
  // Most blocks demoted by one step; 0: num_blocks. Beyond it evicted
  // content is dropped.
  int64_t max_staging_blocks = 0;
  // Write-behind (scheduler/write_behind.h): cached blocks of ended requests
  // copied down to the first lower tier, at most this many per step, ahead
  // of their eviction; 0: off (blocks are copied only when evicted).
  int64_t write_behind_blocks_per_step = 0;

  // Policy.
  SchedulingPolicy policy = SchedulingPolicy::kCacheAware;
  // Off: no prefix is looked up or registered (the "cache off" baseline).
  bool enable_prefix_cache = true;
  // Waiting (and loading) requests beyond which AddRequest is
  // RESOURCE_EXHAUSTED; 0: no limit.
  int64_t max_waiting = 0;
  // kCacheAware: a request that has waited this long is served in arrival
  // order ahead of better cache hits.
  Clock::duration max_queue_delay = std::chrono::seconds(2);
  // How long a session's KV stays at pinned priority after its last turn.
  // Also bounds a workflow agent's kWorkflowSoon hold after it is named to
  // run next, and how long an idle agent's last tokens are remembered.
  Clock::duration session_ttl = std::chrono::minutes(5);
  PreemptionMode preemption = PreemptionMode::kAuto;
  // Most blocks held swapped out at once (host memory from
  // staging_allocator, allocated as needed and kept for reuse); 0:
  // num_blocks. Only with a host tier; past it, preemption recomputes.
  int64_t max_swap_blocks = 0;
  // Time to first token under overload: a waiting request that has produced
  // no token yet may preempt a running sequence of its priority or lower
  // that has produced at least this many tokens since it was admitted, when
  // the device has no room for it, and the preemption throws little away:
  // a swap, or a recompute whose evicted full blocks a lower tier takes (only
  // the partial last block is computed again). Decodes then take turns in
  // device memory while new requests get their first token. 0: off (only a
  // higher priority preempts).
  int64_t yield_to_new_after_tokens = 0;
  // Load versus recompute of prefixes found in a lower tier.
  LoadCostOptions load_cost;
  // The clock for deadlines, ageing and session TTLs; tests inject one.
  std::function<Clock::time_point()> now = [] { return Clock::now(); };
};

// Cumulative policy counters, for metrics and tests.
struct SchedulerCounters {
  int64_t preemptions_recompute = 0;
  int64_t preemptions_swap = 0;
  // Of those, decodes preempted to let a request with no token yet in
  // (yield_to_new_after_tokens).
  int64_t yields_to_new = 0;
  int64_t swapped_out_blocks = 0;
  int64_t swapped_in_blocks = 0;
  int64_t deadline_aborts = 0;
  // Requests whose admission was delayed (each counted once) because another
  // sequence was computing the prefix blocks they needed next.
  int64_t grouped_waits = 0;
  // Blocks loaded from a lower tier ahead of a workflow agent's request.
  int64_t prefetched_blocks = 0;
  int64_t rejected_requests = 0;  // RESOURCE_EXHAUSTED by max_waiting
  // CacheBlend.
  int64_t blend_requests = 0;       // requests admitted with blending on
  int64_t blend_steps = 0;          // blend steps run
  int64_t chunk_fills = 0;          // chunks computed on their own
  int64_t blend_fallbacks = 0;      // blends given up (chunks kept being evicted)
  int64_t blend_reused_tokens = 0;  // chunk tokens whose cached K/V was kept
  int64_t blend_recomputed_tokens = 0;
};

// Not thread-safe: owned and driven by the engine thread.
class Scheduler {
 public:
  // Emits token ids, not text: OutputStream (scheduler/output_stream.h)
  // makes the text and applies stop strings, off the engine thread.
  explicit Scheduler(const SchedulerOptions& options);
  ~Scheduler();

  // Queues a request after the admission gate (gate(): what ValidateRequest
  // rejects, and RESOURCE_EXHAUSTED once max_waiting requests wait), then
  // Enqueue's checks. Nothing is queued on error.
  absl::Status AddRequest(Request request);

  // Queues a request that already passed gate() (EngineService asks it on
  // the submitting thread). INVALID_ARGUMENT for a negative id (reserved for
  // internal sequences), ALREADY_EXISTS for a duplicate id.
  absl::Status Enqueue(Request request);

  // The admission gate, built from the options; immutable, so any thread may
  // ask it.
  const AdmissionGate& gate() const { return gate_; }

  // Ends a request early; its next Update emits a finished kAbort event.
  // NOT_FOUND if the id is unknown or already finished.
  absl::Status Abort(RequestId id);

  // Ends a request whose client stream already ended (OutputStream found a
  // stop string: kStop, recorded for its session and workflow like any
  // completed turn; or failed to detokenize: kError). Its next Update emits
  // a finished event the caller drops. NOT_FOUND as Abort.
  absl::Status EndEarly(RequestId id, FinishReason reason);

  // The next step. Empty (no sequences) when there is nothing to run.
  engine::StepPlan Schedule();

  // Applies the backend's result to the plan it ran. Each Schedule is
  // followed by exactly one Update or FailStep before the next: the host
  // memory a plan's moves name stays valid until then.
  std::vector<TokenEvent> Update(const engine::StepPlan& plan, const engine::StepResult& result);

  // A step that failed as a whole: every sequence in `plan` ends with `error`,
  // and the others carry on.
  std::vector<TokenEvent> FailStep(const engine::StepPlan& plan, const absl::Status& error);

  // Ends a session's affinity: its KV (and pins made under it) drop back to
  // normal eviction priority; the blocks stay cached. Sessions are keyed by
  // (cache_salt, session_id), so tenants never touch each other's. NOT_FOUND
  // if no such session is known.
  absl::Status ReleaseSession(std::string_view cache_salt, std::string_view session_id);

  const SchedulerCounters& counters() const { return counters_; }
  // The KV bookkeeping's own consistency check (KvCacheManager::Validate),
  // plus: every request's state agrees with its queue, block table, load and
  // swap memory; the cache's sequences are exactly the running ones, and with no
  // request left no device block is referenced and no swap or staging
  // memory is held. Call between steps (not while a plan is in flight).
  absl::Status ValidateCache() const;

  // Anything to step: requests queued, loading or running, events pending,
  // or a workflow prefetch whose reads are still in flight.
  bool HasWork() const;
  // Requests in `state` (internal chunk fills included).
  int64_t num_in_state(RequestState state) const {
    return num_in_state_[static_cast<size_t>(state)];
  }
  // Waiting for admission: new, or preempted (swapped or not).
  int64_t num_waiting() const {
    return num_in_state(RequestState::kWaiting) + num_in_state(RequestState::kSwapped);
  }
  // Requests waiting for their prefix to be read from a lower tier.
  int64_t num_loading() const { return num_in_state(RequestState::kLoading); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  // Workflow prefetches not yet promoted.
  int64_t num_prefetching() const { return prefetcher_.num_pending(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  // Blocks an allocation can take: free ones plus cached, unreferenced ones.
  int64_t num_free_blocks() const { return cache_.num_available_blocks(); }
  // Of those, the ones holding reusable content.
  int64_t num_cached_blocks() const { return cache_.num_cached_blocks(); }
  const cache::CacheStats& cache_stats() const { return cache_.stats(); }
  // Load versus recompute; the engine loop feeds it each step's duration.
  LoadCostModel& load_costs() { return load_costs_; }
  const LoadCostModel& load_costs() const { return load_costs_; }
  // Read-only view of the KV bookkeeping (block priorities, the prefix
  // index), for tests and diagnostics.
  const cache::KvCacheManager& kv_cache() const { return cache_; }

 private:
  struct Sequence;

  enum class AdmitResult : uint8_t { kAdmitted, kLoading, kNoRoom };

  bool has_tiers() const { return options_.host_tier != nullptr || options_.disk_tier != nullptr; }
  bool prefix_cache() const { return options_.enable_prefix_cache; }
  // The one place a request's state changes: checks the transition
  // (request_state.h) and moves its id between queued_ and running_.
  void MoveTo(Sequence& seq, RequestState to);
  // Where every new sequence (a request, or a chunk fill) enters: kWaiting,
  // at the back of the queue.
  void AddWaiting(std::unique_ptr<Sequence> seq);
  // `seq`'s cached device prefix as of now: looked up once per step, and
  // again only if an eviction since may have removed one of its blocks.
  const cache::CachedPrefix& DevicePrefix(Sequence& seq);
  void ExpireDeadlines(Clock::time_point now);
  void ApplyHolds();
  void ScheduleRunning(PlanBuilder& builder);
  void AdmitWaiting(PlanBuilder& builder, Clock::time_point now);
  std::vector<WaitingEntry> Candidates();
  void BuildInflight();
  // When `seq` started waiting, for the ageing bound (max_queue_delay).
  Clock::time_point WaitingSince(const Sequence& seq) const;
  // Admits one candidate (starting its tier load first if it has one),
  // preempting running sequences that give way to it (GivesWayTo) when it
  // does not fit.
  AdmitResult TryAdmit(Sequence& seq, PlanBuilder& builder);
  // Whether `seq`'s next chunk could fit once every running sequence that
  // gives way to it gave its blocks up.
  bool CouldFitByPreempting(Sequence& seq, int64_t budget);
  // The running sequence `seq` may preempt to make room, if any: the last in
  // running order when it has a lower priority, else (yield_to_new_after_tokens)
  // the last one that yields to a new request.
  std::optional<RequestId> Victim(const Sequence& seq) const;
  // Whether running `other` gives way to `seq`: a lower priority, or a
  // yield of a decode to a request with no token yet, where little is lost.
  bool GivesWayTo(const Sequence& other, const Sequence& seq) const;
  // Starts looking up the rest of `seq`'s prefix in the lower tiers; true
  // when some tier holds at least its next block (seq.load is then set).
  bool StartLoad(Sequence& seq);
  // Admits `seq` after its device prefix and what its load or swap brought,
  // if its blocks fit; false (nothing changed) otherwise.
  bool Admit(Sequence& seq, PlanBuilder& builder);
  // The moves that fill a newly admitted sequence's blocks from its load and
  // its swap, and the usage they make; `start` grows past what they bring.
  void AddFillMoves(Sequence& seq, const cache::BlockTable& table, int64_t device_blocks,
                    std::vector<cache::LoadedBlock>& loaded, bool swap_in, PlanBuilder& builder,
                    PromptUsage& usage);
  void InsertRunning(RequestId id);
  void OnEvicted(const cache::EvictedBlock& block, PlanBuilder* builder);
  // After the plan in flight: inserts its demoted blocks into their tier
  // when the backend performed the moves, settles swaps and prefetches, and
  // frees the staging.
  void FinishMoves(bool performed);
  void PreemptRunning(RequestId victim, PlanBuilder& builder);
  // Preempts `victim` (Victim(seq)) to make room for `seq`, counting yields.
  void GiveWay(RequestId victim, const Sequence& seq, PlanBuilder& builder);
  // Whether a preemption of `seq` now would swap it out (not recompute).
  bool WouldSwap(const Sequence& seq) const;
  // Preempts the last running sequence (the victim); removes its step if
  // the plan being built holds one, refunding its budget.
  void PreemptLast(PlanBuilder& builder);
  void Preempt(Sequence& seq, PlanBuilder& builder);
  bool SwapOut(Sequence& seq, PlanBuilder& builder);
  void ExtendKeys(Sequence& seq);
  // Tells the disk tier which blocks `seq`'s prompt wants (disk admission).
  void RecordSightings(const Sequence& seq) const;
  engine::SequenceStep MakeStep(const Sequence& seq, int64_t num_tokens) const;
  void AppendToken(Sequence& seq, const engine::SampledToken& sampled, TokenEvent& event);
  // Ends `seq` (any state) and fills the finished fields of `event`.
  void Finish(Sequence& seq, FinishReason reason, TokenEvent& event);
  void FillFinished(const Sequence& seq, FinishReason reason, TokenEvent& event) const;
  // Ends `seq` between steps: its finished event goes out at the next Update.
  void EndBetweenSteps(Sequence& seq, FinishReason reason);
  // Records what a finished sequence leaves for its session and workflow.
  void RecordAffinity(Sequence& seq, FinishReason reason);
  void Release(Sequence& seq);
  void ReleaseSwap(Sequence& seq);
  void EraseFinished();
  // ValidateCache's check of one request: its state agrees with its queue,
  // its block table, its load and its swap memory.
  absl::Status ValidateState(RequestId id, const Sequence& seq) const;

  // CacheBlend (scheduler_blend.cc).
  static bool blend_active(const Sequence& seq);
  // Of a sequence's first `blocks` full blocks, those the prefix cache may
  // know: a blend sequence's stop before its first chunk.
  int64_t KeyBlockLimit(const Sequence& seq, int64_t blocks) const;
  // Tokens whose K/V is exact and may be committed to the prefix index.
  int64_t CommitLimit(const Sequence& seq) const;
  // Fills seq.chunk_keys, once.
  void HashChunks(Sequence& seq) const;
  // Starts (or joins) a fill for each of `seq`'s chunks not on the device.
  void StartFills(Sequence& seq);
  // Before admitting a blend request: true when its chunks are all on the
  // device (or blending was given up); false when fills had to restart.
  bool PrepareBlend(Sequence& seq);
  // References the chunks' device blocks through a holder; false (nothing
  // held) if one is missing.
  bool HoldChunks(Sequence& seq);
  void ReleaseChunks(Sequence& seq);
  // A fill ended (computed: its K/V is all in place); its waiters go on.
  void OnFillDone(Sequence& fill, bool computed);
  void AttachBlend(const Sequence& seq, engine::SequenceStep& step) const;
  void ApplyBlendResult(Sequence& seq, const engine::SequenceOutput& output);

  SchedulerOptions options_;
  const AdmissionGate gate_;
  cache::KvCacheManager cache_;
  WaitingOrder order_;
  KeyHolds holds_;
  SessionRegistry sessions_;
  WorkflowTracker workflows_;
  InflightPrefixes inflight_;
  std::map<RequestId, std::unique_ptr<Sequence>> sequences_;
  std::array<int64_t, kNumRequestStates> num_in_state_{};
  // Waiting, loading and swapped requests, in arrival order (admission
  // sorts them by the policy at each step).
  std::vector<RequestId> queued_;
  std::vector<RequestId> running_;  // in RunsBefore order: the last is the victim
  // Finished between steps (abort, deadline, a blend prefetch whose chunks
  // are cached): their events go out at the next Update.
  std::vector<RequestId> pending_events_;
  std::vector<RequestId> ended_since_plan_;
  // CacheBlend: the running fill of each chunk (by its last key), and the
  // next internal id (fills and holders count down from -1).
  absl::flat_hash_map<cache::BlockKey, RequestId> fills_;
  RequestId next_internal_id_ = -1;
  uint64_t next_arrival_ = 0;
  uint64_t next_admission_ = 0;
  int64_t step_ = 0;
  int64_t num_with_deadline_ = 0;
  int64_t num_preemptions_ = 0;
  SchedulerCounters counters_;
  // Tiers only: staging memory for demotions.
  std::unique_ptr<cache::StagingPool> staging_;
  // Where the plan in flight's demotions go (uses staging_; declared after
  // it, so destroyed first).
  std::unique_ptr<cache::Demotions> demotions_;
  WriteBehind write_behind_;  // off without tiers
  // Swap (host tier only).
  std::unique_ptr<cache::StagingPool> swap_;
  int64_t max_swap_blocks_ = 0;
  // What the plan in flight's moves hold until its Update or FailStep.
  InflightMoves inflight_moves_;
  PreemptionCostModel preemption_costs_;  // kAuto's swap-or-recompute costs
  Clock::time_point plan_built_{};        // when the plan in flight was built
  WorkflowPrefetcher prefetcher_;
  LoadCostModel load_costs_;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_SCHEDULER_H_
