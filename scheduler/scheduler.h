// Continuous batching over the step contract (DESIGN.md): Schedule() builds a
// StepPlan, the backend executes it, Update() advances every sequence and
// turns sampled tokens into TokenEvents. A sequence's computed count catches
// up with its tokens, which covers prefill, chunked prefill and decode alike.
//
// This is the first, plain policy: first come first served, chunked prefill
// under a token budget, preemption by recomputation when blocks run out.
// Prefix reuse is on: a request starts computing after its longest cached
// prefix of whole blocks (cache::KvCacheManager), every full block a step
// computes is registered for later requests, and a finished or preempted
// sequence leaves its blocks cached until they are evicted.
//
// Tiers (optional: SchedulerOptions::host_tier / disk_tier). A device block
// evicted to make room is demoted: a device->host move at the front of the
// plan that reuses it copies its bytes into a staging slot before anything
// writes the block, and Update inserts them into the host tier (the disk
// tier when there is no host tier); the host tier's own evictions go to the
// disk tier, which writes on its own thread. A waiting request whose prefix
// continues past the device index into the host or disk tier is LOADING:
// host hits are ready at once, disk reads run on the disk tier's threads and
// the step loop keeps stepping the others. Once its reads are done it is
// admitted like any other: device blocks are allocated, host->device moves
// in that plan fill them before the forward pass, its computed count starts
// after them, and Update registers them in the prefix index.
#ifndef STRATA_SCHEDULER_SCHEDULER_H_
#define STRATA_SCHEDULER_SCHEDULER_H_

#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "cache/kv_cache_manager.h"
#include "cache/prefix_load.h"
#include "cache/staging_pool.h"
#include "engine/backend.h"
#include "engine/sampling/stop_checker.h"
#include "engine/step.h"
#include "engine/tokenizer/incremental_detokenizer.h"
#include "engine/tokenizer/tokenizer.h"
#include "scheduler/request.h"
#include "storage/host_tier_store.h"
#include "storage/tier_store.h"

namespace strata::scheduler {

struct SchedulerOptions {
  int64_t block_size = 16;
  int64_t num_blocks = 0;          // the backend arena's block count
  int64_t max_batch_tokens = 512;  // tokens computed per step, all sequences
  int64_t max_running = 64;        // sequences in one step
  int64_t max_model_len = 0;       // prompt + output limit (the model's context)
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
};

// Not thread-safe: owned and driven by the engine thread.
class Scheduler {
 public:
  // Borrows `tokenizer` (for streaming text and stop strings); it must
  // outlive the scheduler.
  Scheduler(const SchedulerOptions& options, const engine::Tokenizer& tokenizer);
  ~Scheduler();

  // Queues a request. INVALID_ARGUMENT for an empty prompt, a token id
  // outside the vocabulary, bad sampling parameters, or a prompt that leaves
  // no room to generate within max_model_len; ALREADY_EXISTS for a duplicate
  // id; RESOURCE_EXHAUSTED if the prompt alone needs more KV blocks than the
  // whole arena holds. Nothing is queued on error.
  absl::Status AddRequest(Request request);

  // Ends a request early; its next Update emits a finished "abort" event.
  // NOT_FOUND if the id is unknown or already finished.
  absl::Status Abort(RequestId id);

  // The next step. Empty (no sequences) when there is nothing to run.
  engine::StepPlan Schedule();

  // Applies the backend's result to the plan it ran. Each Schedule is
  // followed by exactly one Update or FailStep before the next: the host
  // memory a plan's moves name stays valid until then.
  std::vector<TokenEvent> Update(const engine::StepPlan& plan, const engine::StepResult& result);

  // A step that failed as a whole: every sequence in `plan` ends with `error`,
  // and the others carry on.
  std::vector<TokenEvent> FailStep(const engine::StepPlan& plan, const absl::Status& error);

  bool HasWork() const {
    return !waiting_.empty() || !loading_.empty() || !running_.empty() || !aborted_.empty();
  }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  // Requests waiting for their prefix to be read from a lower tier.
  int64_t num_loading() const { return static_cast<int64_t>(loading_.size()); }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  // Blocks an allocation can take: free ones plus cached, unreferenced ones.
  int64_t num_free_blocks() const { return cache_.num_available_blocks(); }
  const cache::CacheStats& cache_stats() const { return cache_.stats(); }

 private:
  struct Sequence;

  // A device block whose bytes a move of the plan in flight copies out.
  struct Demotion {
    int32_t slot = 0;
    cache::BlockKey key;
  };

  bool has_tiers() const { return options_.host_tier != nullptr || options_.disk_tier != nullptr; }
  void ScheduleRunning(engine::StepPlan& plan, int64_t& budget);
  void AdmitLoaded(engine::StepPlan& plan, int64_t& budget);
  void AdmitWaiting(engine::StepPlan& plan, int64_t& budget);
  // Starts looking up the rest of `seq`'s prefix in the lower tiers; true
  // when some tier holds at least its next block (seq.load is then set).
  bool StartLoad(Sequence& seq);
  // Admits `seq` after its device prefix and what its load brought, if its
  // blocks fit; false (nothing changed) otherwise.
  bool Admit(Sequence& seq, engine::StepPlan& plan, int64_t& budget);
  void OnEvicted(const cache::EvictedBlock& block);
  // After the plan in flight: inserts its demoted blocks into their tier
  // when the backend performed the moves, and frees the staging.
  void FinishMoves(bool performed);
  bool GrowBlocks(Sequence& seq, int64_t num_tokens);
  void Preempt(Sequence& seq);
  engine::SequenceStep MakeStep(const Sequence& seq, int64_t num_tokens) const;
  void AppendToken(Sequence& seq, const engine::SampledToken& sampled, TokenEvent& event);
  void Finish(Sequence& seq, const std::string& reason, TokenEvent& event);
  void Release(Sequence& seq);

  SchedulerOptions options_;
  const engine::Tokenizer& tokenizer_;
  cache::KvCacheManager cache_;
  std::map<RequestId, std::unique_ptr<Sequence>> sequences_;
  std::deque<RequestId> waiting_;
  std::vector<RequestId> loading_;  // LOADING, in arrival order
  std::vector<RequestId> running_;  // in admission order: the newest is preempted first
  std::vector<RequestId> aborted_;  // abort requested, event not yet emitted
  std::vector<RequestId> ended_since_plan_;
  int64_t num_preemptions_ = 0;
  // Tiers only. The plan being built, for the eviction listener.
  std::vector<engine::BlockMove>* moves_ = nullptr;
  std::unique_ptr<cache::StagingPool> staging_;
  std::vector<Demotion> demotions_;  // of the plan in flight
  // Loads whose bytes the plan in flight's promotions read.
  std::vector<std::unique_ptr<cache::PrefixLoad>> promotions_;
};

}  // namespace strata::scheduler

#endif  // STRATA_SCHEDULER_SCHEDULER_H_
