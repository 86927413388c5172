#include "scheduler/scheduler.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "scheduler/request_validation.h"
#include "scheduler/scheduler_sequence.h"

namespace strata::scheduler {
namespace {

// Cache-aware admission passes over at most this many requests that do not
// fit in one step, so a long blocked queue costs a bounded scan.
constexpr int kMaxPassedOver = 16;

KvCacheSpec CacheSpec(const SchedulerOptions& options) {
  KvCacheSpec spec = options.kv_spec;
  spec.block_size = options.block_size;
  return spec;
}

RequestLimits LimitsOf(const SchedulerOptions& options) {
  return RequestLimits{.vocab_size = options.vocab_size,
                       .max_model_len = options.max_model_len,
                       .max_prompt_tokens = options.max_prompt_tokens,
                       .block_size = options.block_size,
                       .num_device_blocks = options.num_blocks,
                       .num_layers = options.kv_spec.num_layers};
}

// How many of positions [begin, end) belong to a prompt of `prompt_len`.
int64_t PromptPart(int64_t begin, int64_t end, int64_t prompt_len) {
  return std::max<int64_t>(0, std::min(end, prompt_len) - begin);
}

}  // namespace

Scheduler::Scheduler(const SchedulerOptions& options)
    : options_(options),
      gate_(LimitsOf(options), options.max_waiting),
      cache_(CacheSpec(options), options.num_blocks, options.model_fingerprint),
      order_(options.policy, options.max_queue_delay, options.yield_to_new_after_tokens > 0),
      sessions_(holds_, options.session_ttl),
      workflows_(holds_, options.session_ttl),
      write_behind_(has_tiers() ? options.write_behind_blocks_per_step : 0, options.num_blocks),
      prefetcher_(cache_, options.host_tier, options.disk_tier),
      load_costs_(options.load_cost, cache_.bytes_per_block(), options.block_size) {
  CHECK_GT(options_.block_size, 0);
  CHECK_GT(options_.max_batch_tokens, 0);
  CHECK_GT(options_.max_running, 0);
  CHECK_GT(options_.max_model_len, 0);
  CHECK(options_.now != nullptr);
  if (has_tiers()) {
    const int64_t max_staging =
        options_.max_staging_blocks > 0 ? options_.max_staging_blocks : options_.num_blocks;
    staging_ = std::make_unique<cache::StagingPool>(static_cast<size_t>(cache_.bytes_per_block()),
                                                    max_staging, options_.staging_allocator);
    const bool host = options_.host_tier != nullptr;
    demotions_ = std::make_unique<cache::Demotions>(
        *staging_, host ? *options_.host_tier : *options_.disk_tier,
        host ? cache::Tier::kHost : cache::Tier::kDisk);
  }
  if (options_.host_tier != nullptr && options_.preemption != PreemptionMode::kRecompute) {
    max_swap_blocks_ =
        options_.max_swap_blocks > 0 ? options_.max_swap_blocks : options_.num_blocks;
    swap_ = std::make_unique<cache::StagingPool>(static_cast<size_t>(cache_.bytes_per_block()),
                                                 max_swap_blocks_, options_.staging_allocator);
  }
  // Outside Schedule nothing allocates; OnEvicted checks that.
  cache_.set_eviction_listener(
      [this](const cache::EvictedBlock& block) { OnEvicted(block, nullptr); });
}

Scheduler::~Scheduler() = default;

absl::Status Scheduler::AddRequest(Request request) {
  if (absl::Status valid = gate_.CheckRequest(request); !valid.ok()) return valid;
  if (absl::Status room = gate_.CheckQueue(num_waiting() + num_loading()); !room.ok()) {
    ++counters_.rejected_requests;
    return room;
  }
  return Enqueue(std::move(request));
}

absl::Status Scheduler::Enqueue(Request request) {
  if (request.id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("request id ", request.id, " is negative (negative ids are reserved)"));
  }
  if (sequences_.count(request.id)) {
    return absl::AlreadyExistsError(absl::StrCat("request ", request.id, " already exists"));
  }
  const Clock::time_point now = options_.now();
  auto owned = std::make_unique<Sequence>(std::move(request), options_.eos_token_ids);
  Sequence& seq = *owned;
  seq.arrival = next_arrival_++;
  seq.arrived = now;
  seq.public_blocks =
      std::min(seq.request.public_prefix_tokens, seq.prompt_len()) / options_.block_size;
  seq.usage.prompt_tokens = seq.prompt_len();
  if (blend_active(seq) && !prefix_cache()) {  // nothing to reuse: an exact prefill
    seq.request.blend.reset();
    seq.request.chunks.clear();
  }
  ExtendKeys(seq);
  if (options_.disk_tier != nullptr) RecordSightings(seq);
  if (seq.request.deadline) ++num_with_deadline_;
  AddWaiting(std::move(owned));
  if (blend_active(seq)) {
    ++counters_.blend_requests;
    HashChunks(seq);
    StartFills(seq);
    if (seq.request.kind == RequestKind::kPrefill && seq.pending_fills == 0) {
      EndBetweenSteps(seq, FinishReason::kPrefilled);  // every chunk is on the device already
    }
  }
  const Request& r = seq.request;
  if (!r.session_id.empty()) sessions_.BeginTurn(r.cache_salt, r.session_id);
  if (!r.workflow_id.empty() && !r.next_agent_ids.empty()) {
    for (const AgentKey& agent :
         workflows_.MarkNext(r.cache_salt, r.workflow_id, r.next_agent_ids, now)) {
      if (prefix_cache()) prefetcher_.Start(agent, *workflows_.Find(agent));
    }
  }
  ApplyHolds();
  return absl::OkStatus();
}

absl::Status Scheduler::Abort(RequestId id) { return EndEarly(id, FinishReason::kAbort); }

absl::Status Scheduler::EndEarly(RequestId id, FinishReason reason) {
  auto it = sequences_.find(id);
  if (it == sequences_.end() || it->second->state == RequestState::kFinished) {
    return absl::NotFoundError(absl::StrCat("request ", id, " is not running or waiting"));
  }
  EndBetweenSteps(*it->second, reason);
  return absl::OkStatus();
}

void Scheduler::AddWaiting(std::unique_ptr<Sequence> seq) {
  const RequestId id = seq->request.id;
  CHECK(seq->state == RequestState::kWaiting);
  sequences_.emplace(id, std::move(seq));
  ++num_in_state_[static_cast<size_t>(RequestState::kWaiting)];
  queued_.push_back(id);
}

void Scheduler::EndBetweenSteps(Sequence& seq, FinishReason reason) {
  RecordAffinity(seq, reason);
  Release(seq);
  MoveTo(seq, RequestState::kFinished);
  seq.finish_reason = reason;
  pending_events_.push_back(seq.request.id);
  ended_since_plan_.push_back(seq.request.id);
}

void Scheduler::MoveTo(Sequence& seq, RequestState to) {
  const RequestState from = seq.state;
  CHECK(IsLegalTransition(from, to));  // request_state.h's diagram
  const RequestId id = seq.request.id;
  const bool was_queued = from != RequestState::kRunning && from != RequestState::kFinished;
  const bool is_queued = to != RequestState::kRunning && to != RequestState::kFinished;
  if (from == RequestState::kRunning) std::erase(running_, id);
  if (was_queued && !is_queued) std::erase(queued_, id);
  if (!was_queued && is_queued) queued_.push_back(id);
  --num_in_state_[static_cast<size_t>(from)];
  ++num_in_state_[static_cast<size_t>(to)];
  seq.state = to;
  if (to == RequestState::kRunning) InsertRunning(id);
}

const cache::CachedPrefix& Scheduler::DevicePrefix(Sequence& seq) {
  const int64_t evictions = cache_.stats().evicted_blocks;
  if (seq.prefix_step != step_ || seq.prefix_evictions != evictions) {
    seq.prefix = prefix_cache() ? cache_.FindCachedPrefixByKeys(seq.keys) : cache::CachedPrefix{};
    seq.prefix_step = step_;
    seq.prefix_evictions = evictions;
  }
  return seq.prefix;
}

absl::Status Scheduler::ReleaseSession(std::string_view cache_salt, std::string_view session_id) {
  absl::Status status = sessions_.Release(cache_salt, session_id);
  ApplyHolds();
  return status;
}

bool Scheduler::HasWork() const {
  if (!queued_.empty() || !running_.empty() || !pending_events_.empty()) return true;
  return prefetcher_.HasReadsInFlight() || write_behind_.num_queued() > 0;
}

engine::StepPlan Scheduler::Schedule() {
  // Each Schedule is followed by its Update (or FailStep) before the next.
  CHECK(inflight_moves_.empty() && (demotions_ == nullptr || demotions_->num_pending() == 0));
  PlanBuilder builder(options_.max_batch_tokens, std::move(ended_since_plan_));
  ended_since_plan_.clear();
  ++step_;
  const Clock::time_point now = options_.now();
  ExpireDeadlines(now);
  sessions_.Expire(now);
  workflows_.Expire(now);
  ApplyHolds();
  // Allocations evict only while a plan is built: each eviction's demotion
  // goes into this plan, during the allocation that reuses the block.
  cache_.set_eviction_listener(
      [this, &builder](const cache::EvictedBlock& block) { OnEvicted(block, &builder); });
  ScheduleRunning(builder);
  AdmitWaiting(builder, now);
  if (prefix_cache()) prefetcher_.Run(workflows_, builder);
  // Last: after every allocation of the plan (see write_behind.h).
  if (write_behind_.enabled()) {
    builder.RecordWriteBehind(
        write_behind_.AddTo(builder, cache_, *demotions_, /*idle=*/!builder.computes()));
  }
  cache_.set_eviction_listener(
      [this](const cache::EvictedBlock& block) { OnEvicted(block, nullptr); });
  inflight_moves_ = builder.TakeInflight();
  plan_built_ = Clock::now();  // preemption costs: real time, not options_.now()
  return builder.TakePlan();
}

void Scheduler::ExpireDeadlines(Clock::time_point now) {
  if (num_with_deadline_ == 0) return;
  for (auto& [id, seq] : sequences_) {
    if (seq->state == RequestState::kFinished || !seq->request.deadline ||
        now < *seq->request.deadline) {
      continue;
    }
    EndBetweenSteps(*seq, FinishReason::kDeadline);
    ++counters_.deadline_aborts;
  }
}

void Scheduler::ApplyHolds() {
  for (const cache::BlockKey& key : holds_.TakeChanged()) {
    if (std::optional<cache::BlockId> block = cache_.IndexedBlock(key)) {
      cache_.SetPriority(absl::Span<const cache::BlockId>(&*block, 1), holds_.Effective(key));
    }
  }
}

void Scheduler::OnEvicted(const cache::EvictedBlock& block, PlanBuilder* builder) {
  sessions_.OnEvicted(block.key);  // a pin without a session ends here
  if (staging_ == nullptr) return;
  CHECK(builder != nullptr);  // blocks are allocated only while a plan is built
  // nullopt: the tier holds it already, or no memory (dropped, recomputed if needed).
  std::optional<absl::Span<std::byte>> dst = demotions_->Add(block.key);
  if (!dst) return;
  builder->Demote(block.id, *dst);
}

void Scheduler::FinishMoves(bool performed) {
  InflightMoves moves = std::move(inflight_moves_);
  inflight_moves_ = InflightMoves{};
  if (demotions_ != nullptr) {
    const int64_t demoted = demotions_->Finish(performed);
    if (demoted > 0) cache_.RecordTransfer(cache::Tier::kDevice, demotions_->tier(), demoted);
    // Each write-behind copy is one of those: the tier takes it, since it
    // answered Add with memory to fill.
    if (performed) cache_.RecordWriteBehind(moves.written_behind);
  }
  // A swap-out whose copies did not run left nothing usable: recompute.
  for (RequestId id : moves.swapped_out) {
    auto it = sequences_.find(id);
    if (it == sequences_.end() || performed) continue;
    Sequence& seq = *it->second;
    ReleaseSwap(seq);
    if (seq.state == RequestState::kSwapped) MoveTo(seq, RequestState::kWaiting);
  }
  for (int32_t slot : moves.swap_in_slots) swap_->Release(slot);
  counters_.prefetched_blocks +=
      prefetcher_.Finish(performed, std::move(moves.prefetches), workflows_, holds_);
  // `moves` goes out of scope here: the promotions' loads unpin the host
  // blocks they read.
}

void Scheduler::ScheduleRunning(PlanBuilder& builder) {
  size_t i = 0;
  while (i < running_.size() && builder.has_budget()) {
    Sequence& seq = *sequences_.at(running_[i]);
    const int64_t n = std::min(seq.num_tokens() - seq.computed, builder.budget());
    bool preempted_self = false;
    while (!cache_.Allocate(seq.request.id, seq.computed + n).has_value()) {
      // Out of blocks: the last in running order (lowest priority, newest)
      // gives its blocks up. Those before i are in the plan and outrank it.
      preempted_self = running_.back() == seq.request.id;
      Preempt(*sequences_.at(running_.back()), builder);
      if (preempted_self) break;
    }
    if (preempted_self) break;
    builder.AddStep(MakeStep(seq, n));
    ++i;
  }
}

std::vector<WaitingEntry> Scheduler::Candidates() {
  const bool score = order_.policy() == SchedulingPolicy::kCacheAware && prefix_cache();
  std::vector<WaitingEntry> entries;
  entries.reserve(queued_.size());
  for (RequestId id : queued_) {
    Sequence& seq = *sequences_.at(id);
    if (seq.preempted_step == step_) continue;  // not back in the same step
    if (seq.pending_fills > 0) continue;        // its chunks are being computed
    // A blend prefetch only waits for its fills (OnFillDone ends it).
    if (blend_active(seq) && seq.request.kind == RequestKind::kPrefill) continue;
    if (seq.state == RequestState::kLoading && !seq.load->IsReady()) continue;  // reads in flight
    WaitingEntry entry{
        .id = id,
        .priority = seq.request.priority,
        .arrival = seq.arrival,
        .arrived = WaitingSince(seq),
        .awaits_first_token = seq.output_ids.empty()};
    if (score) {
      entry.cached_tokens = DevicePrefix(seq).num_tokens;
      if (seq.state == RequestState::kLoading) {
        entry.cached_tokens =
            std::max(entry.cached_tokens,
                     (seq.load_first_block + seq.load->num_found()) * options_.block_size);
      }
      entry.cached_tokens = std::max(entry.cached_tokens, seq.swapped_tokens);
    }
    entries.push_back(entry);
  }
  return entries;
}

Clock::time_point Scheduler::WaitingSince(const Sequence& seq) const {
  // With yields, preemption is routine: a decode that gave way ages from
  // then, not from its arrival, or it would soon go ahead of every request
  // still waiting for its first token, and (aged, not fitting) hold them up.
  if (options_.yield_to_new_after_tokens > 0 && seq.preempted_step >= 0) return seq.preempted_at;
  return seq.arrived;
}

void Scheduler::BuildInflight() {
  inflight_.Clear();
  const auto add_from = [&](RequestId id, const Sequence& seq, int64_t first_block) {
    const size_t first = static_cast<size_t>(std::max<int64_t>(first_block, 0));
    if (first < seq.keys.size()) inflight_.Add(id, absl::MakeConstSpan(seq.keys).subspan(first));
  };
  for (RequestId id : running_) {
    const Sequence& seq = *sequences_.at(id);
    add_from(id, seq, seq.computed / options_.block_size);
  }
  for (RequestId id : queued_) {
    const Sequence& seq = *sequences_.at(id);
    if (seq.state == RequestState::kLoading) add_from(id, seq, seq.load_first_block);
  }
}

void Scheduler::AdmitWaiting(PlanBuilder& builder, Clock::time_point now) {
  std::vector<WaitingEntry> entries = Candidates();
  if (entries.empty()) return;
  order_.Sort(entries, now);
  const bool group = order_.policy() == SchedulingPolicy::kCacheAware && prefix_cache();
  if (group) BuildInflight();
  int passed_over = 0;
  for (const WaitingEntry& entry : entries) {
    if (!builder.has_budget()) break;
    Sequence& seq = *sequences_.at(entry.id);
    if (blend_active(seq) && !seq.blended && !PrepareBlend(seq)) continue;  // fills restarted
    if (group && seq.state != RequestState::kSwapped) {
      const auto cached = static_cast<int64_t>(DevicePrefix(seq).blocks.size());
      if (inflight_.ShouldWait(entry.id, seq.keys, cached)) {
        // Another sequence is computing the next block this one needs: wait
        // for it and take it as a hit, rather than compute it twice.
        if (!seq.grouped) ++counters_.grouped_waits;
        seq.grouped = true;
        continue;
      }
    }
    const AdmitResult result = TryAdmit(seq, builder);
    if (result == AdmitResult::kLoading) continue;  // its reads run; the others go on
    if (result == AdmitResult::kAdmitted) {
      // Its blocks past the device prefix it was admitted with are now being
      // computed (or promoted) by this plan.
      const size_t cached = seq.prefix.blocks.size();
      if (group && cached < seq.keys.size()) {
        inflight_.Add(entry.id, absl::MakeConstSpan(seq.keys).subspan(cached));
      }
      continue;
    }
    if (!order_.MayOvertake(entry) || ++passed_over >= kMaxPassedOver) break;
  }
}

Scheduler::AdmitResult Scheduler::TryAdmit(Sequence& seq, PlanBuilder& builder) {
  // A full batch makes room only for a sequence a running one gives way to.
  const bool has_victim = Victim(seq).has_value();
  if (static_cast<int64_t>(running_.size()) >= options_.max_running && !has_victim) {
    return AdmitResult::kNoRoom;
  }
  if (seq.state == RequestState::kWaiting && StartLoad(seq)) {
    MoveTo(seq, RequestState::kLoading);
    if (!seq.load->IsReady()) return AdmitResult::kLoading;
  }
  // Others give way, but only when that can be enough: preempting them all
  // in vain would just churn.
  const bool may_preempt = has_victim && CouldFitByPreempting(seq, builder.budget());
  while (static_cast<int64_t>(running_.size()) >= options_.max_running) {
    const std::optional<RequestId> victim = may_preempt ? Victim(seq) : std::nullopt;
    if (!victim) return AdmitResult::kNoRoom;
    GiveWay(*victim, seq, builder);
  }
  while (!Admit(seq, builder)) {
    const std::optional<RequestId> victim = may_preempt ? Victim(seq) : std::nullopt;
    if (!victim) return AdmitResult::kNoRoom;
    GiveWay(*victim, seq, builder);
  }
  return AdmitResult::kAdmitted;
}

bool Scheduler::StartLoad(Sequence& seq) {
  if (!has_tiers() || !prefix_cache()) return false;
  // A resumed (preempted) sequence looks up its output too: its own blocks
  // may still be cached.
  const size_t first = DevicePrefix(seq).blocks.size();
  if (first >= seq.keys.size()) return false;
  auto load = std::make_unique<cache::PrefixLoad>(absl::MakeConstSpan(seq.keys).subspan(first),
                                                  options_.host_tier, options_.disk_tier);
  if (load->num_found() == 0) return false;
  if (!load_costs_.Trim(*load)) return false;  // recomputing is faster
  seq.load = std::move(load);
  seq.load_first_block = static_cast<int64_t>(first);
  return true;
}

bool Scheduler::Admit(Sequence& seq, PlanBuilder& builder) {
  const int64_t block_size = options_.block_size;
  const cache::CachedPrefix prefix = DevicePrefix(seq);
  const int64_t device_blocks = static_cast<int64_t>(prefix.blocks.size());
  std::vector<cache::LoadedBlock> loaded;
  if (seq.state == RequestState::kLoading && device_blocks >= seq.load_first_block) {
    // The device prefix may have changed while the reads ran: promote only
    // the loaded blocks that continue it. (Had it shrunk, the loaded blocks
    // would leave a gap: they are dropped and recomputed.)
    loaded = seq.load->Blocks();
    const size_t skip = static_cast<size_t>(device_blocks - seq.load_first_block);
    loaded.erase(loaded.begin(),
                 loaded.begin() + static_cast<std::ptrdiff_t>(std::min(skip, loaded.size())));
  }
  int64_t start = prefix.num_tokens + static_cast<int64_t>(loaded.size()) * block_size;
  const bool resumed_from_swap = seq.state == RequestState::kSwapped;
  const bool swap_in = resumed_from_swap && seq.swapped_tokens > start;
  if (swap_in) start = seq.swapped_tokens;
  // A blend step computes the whole rest of the prompt at once: the check
  // layers compare every chunk token.
  const bool blend_step = blend_active(seq) && !seq.blended;
  const int64_t n =
      blend_step ? seq.num_tokens() - start : std::min(seq.num_tokens() - start, builder.budget());
  if (blend_step && !HoldChunks(seq)) return false;
  // A swapped sequence's K/V comes from its swap, not the prefix cache: it
  // is not counted as a query.
  const int64_t query_tokens = prefix_cache() && !resumed_from_swap ? seq.num_tokens() : 0;
  // Its own allocation evicts nothing of `prefix`: AddSequence references
  // the prefix before it allocates.
  std::optional<cache::BlockTable> table =
      cache_.AddSequence(seq.request.id, seq.salt(), prefix, start + n, query_tokens);
  if (!table) {
    ReleaseChunks(seq);
    return false;
  }
  PromptUsage usage{.prompt_tokens = seq.prompt_len()};
  usage.cached_tokens_by_tier[0] = std::min(prefix.num_tokens, seq.prompt_len());
  AddFillMoves(seq, *table, device_blocks, loaded, swap_in, builder, usage);
  seq.usage = usage;
  seq.computed = start;
  seq.admission = next_admission_++;
  seq.tokens_at_admission = seq.num_tokens();
  MoveTo(seq, RequestState::kRunning);
  if (seq.has_agent()) {
    workflows_.OnAdmitted(seq.agent());
    ApplyHolds();
  }
  builder.AddStep(MakeStep(seq, n));
  return true;
}

void Scheduler::AddFillMoves(Sequence& seq, const cache::BlockTable& table, int64_t device_blocks,
                             std::vector<cache::LoadedBlock>& loaded, bool swap_in,
                             PlanBuilder& builder, PromptUsage& usage) {
  const int64_t block_size = options_.block_size;
  // After the demotions AddSequence's evictions recorded: a block evicted
  // and refilled here is read out first.
  for (size_t i = 0; i < loaded.size(); ++i) {
    const int64_t block = device_blocks + static_cast<int64_t>(i);
    builder.Promote(table[static_cast<size_t>(block)], loaded[i].bytes);
    cache_.RecordTierHit(loaded[i].tier, block_size);
    cache_.RecordTransfer(loaded[i].tier, cache::Tier::kDevice, 1);
    usage.cached_tokens_by_tier[static_cast<size_t>(loaded[i].tier)] +=
        PromptPart(block * block_size, (block + 1) * block_size, seq.prompt_len());
  }
  if (seq.load != nullptr) load_costs_.RecordLoad(*seq.load);
  if (!loaded.empty()) builder.KeepLoad(std::move(seq.load));
  seq.load.reset();
  if (swap_in) {
    const int64_t last = BlocksFor(seq.swapped_tokens, block_size);
    for (int64_t block = device_blocks; block < last; ++block) {
      builder.SwapInBlock(table[static_cast<size_t>(block)],
                          swap_->Data(seq.swap_slots[static_cast<size_t>(block)]));
    }
    counters_.swapped_in_blocks += last - device_blocks;
    cache_.RecordTransfer(cache::Tier::kHost, cache::Tier::kDevice, last - device_blocks);
    usage.cached_tokens_by_tier[static_cast<size_t>(cache::Tier::kHost)] +=
        PromptPart(device_blocks * block_size, seq.swapped_tokens, seq.prompt_len());
  }
  // The slots are read by this plan's moves (or not at all): freed after it.
  for (int32_t slot : seq.swap_slots) builder.FreeSwapSlotAfter(slot);
  seq.swap_slots.clear();
  seq.swapped_tokens = 0;
}

void Scheduler::InsertRunning(RequestId id) {
  const Sequence& seq = *sequences_.at(id);
  auto pos = std::find_if(running_.begin(), running_.end(), [&](RequestId other) {
    const Sequence& o = *sequences_.at(other);
    return RunsBefore(seq.request.priority, seq.admission, o.request.priority, o.admission);
  });
  running_.insert(pos, id);
}

void Scheduler::RecordSightings(const Sequence& seq) const {
  if (!prefix_cache()) return;
  // Every full block of the prompt is wanted, the last one too, which the
  // lookup keys leave out (its last token is computed for the logits).
  std::vector<cache::BlockKey> keys = seq.keys;
  cache_.ExtendKeys(seq.salt(), seq.tokens,
                    KeyBlockLimit(seq, seq.num_tokens() / options_.block_size), keys);
  options_.disk_tier->RecordSightings(keys);
}

void Scheduler::ExtendKeys(Sequence& seq) {
  if (!prefix_cache()) return;
  cache_.ExtendKeys(seq.salt(), seq.tokens,
                    KeyBlockLimit(seq, (seq.num_tokens() - 1) / options_.block_size), seq.keys);
}

engine::SequenceStep Scheduler::MakeStep(const Sequence& seq, int64_t num_tokens) const {
  engine::SequenceStep step;
  step.seq_id = seq.request.id;
  step.start_position = seq.computed;
  step.token_ids.assign(seq.tokens.begin() + seq.computed,
                        seq.tokens.begin() + seq.computed + num_tokens);
  step.block_table = cache_.block_table(seq.request.id);
  if (seq.holder != 0) AttachBlend(seq, step);
  // A prefill request computes its whole prompt and samples nothing.
  step.sample =
      seq.computed + num_tokens == seq.num_tokens() && seq.request.kind == RequestKind::kGenerate;
  if (step.sample) {
    step.sampling = seq.request.sampling;
    const engine::SamplingParams& p = seq.request.sampling;
    // The penalties are the only readers of the history; skip the copy otherwise.
    if (p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
      step.prompt_ids = seq.request.prompt_ids;
      step.output_ids = seq.output_ids;
    }
  }
  return step;
}

std::vector<TokenEvent> Scheduler::Update(const engine::StepPlan& plan,
                                          const engine::StepResult& result) {
  preemption_costs_.ObserveStep(plan,
                                std::chrono::duration<double>(Clock::now() - plan_built_).count());
  FinishMoves(result.moves_completed == static_cast<int64_t>(plan.block_moves.size()));
  std::vector<TokenEvent> events;
  for (RequestId id : pending_events_) {
    Sequence& seq = *sequences_.at(id);
    TokenEvent event{.request_id = id};
    if (seq.finish_reason == FinishReason::kDeadline) {
      event.error = absl::DeadlineExceededError(
          absl::StrCat("request ", id, " passed its deadline before it finished"));
    }
    FillFinished(seq, *seq.finish_reason, event);
    events.push_back(std::move(event));
  }
  pending_events_.clear();
  for (size_t k = 0; k < plan.sequences.size(); ++k) {
    const engine::SequenceStep& step = plan.sequences[k];
    auto it = sequences_.find(step.seq_id);
    if (it == sequences_.end() || it->second->state != RequestState::kRunning) continue;
    Sequence& seq = *it->second;
    seq.computed += static_cast<int64_t>(step.token_ids.size());
    if (step.blend) {
      ApplyBlendResult(seq,
                       k < result.outputs.size() ? result.outputs[k] : engine::SequenceOutput{});
    }
    if (prefix_cache()) cache_.CommitFullBlocks(seq.request.id, seq.tokens, CommitLimit(seq));
    if (seq.request.kind == RequestKind::kPrefill) {
      if (seq.computed < seq.num_tokens()) continue;
      if (seq.is_fill) OnFillDone(seq, /*computed=*/true);
      TokenEvent event{.request_id = seq.request.id};
      Finish(seq, FinishReason::kPrefilled, event);
      if (!seq.is_fill) events.push_back(std::move(event));  // a fill is internal: no event
      continue;
    }
    if (!step.sample) continue;
    TokenEvent event{.request_id = seq.request.id};
    if (k >= result.outputs.size() || !result.outputs[k].token) {
      event.error = absl::InternalError("the backend returned no token for a sampling step");
      Finish(seq, FinishReason::kError, event);
    } else {
      AppendToken(seq, *result.outputs[k].token, event);
    }
    events.push_back(std::move(event));
  }
  EraseFinished();
  return events;
}

std::vector<TokenEvent> Scheduler::FailStep(const engine::StepPlan& plan,
                                            const absl::Status& error) {
  FinishMoves(/*performed=*/false);
  std::vector<TokenEvent> events;
  for (const engine::SequenceStep& step : plan.sequences) {
    auto it = sequences_.find(step.seq_id);
    if (it == sequences_.end() || it->second->state != RequestState::kRunning) continue;
    Sequence& seq = *it->second;
    TokenEvent event{.request_id = step.seq_id, .error = error};
    if (seq.is_fill) OnFillDone(seq, /*computed=*/false);
    Finish(seq, FinishReason::kError, event);
    if (!seq.is_fill) events.push_back(std::move(event));
  }
  EraseFinished();
  return events;
}

void Scheduler::AppendToken(Sequence& seq, const engine::SampledToken& sampled, TokenEvent& event) {
  seq.output_ids.push_back(sampled.id);
  seq.tokens.push_back(sampled.id);
  event.token_id = sampled.id;
  event.generated_tokens = static_cast<int64_t>(seq.output_ids.size());
  if (seq.output_ids.size() == 1) event.usage = seq.usage;
  const engine::SamplingParams& params = seq.request.sampling;
  if (params.return_logprob || params.top_logprobs > 0) event.sampled = sampled;
  // Token ids only (no text): EOS, stop token ids, max_tokens.
  engine::StopUpdate update = seq.stop_checker.Push(sampled.id, "");
  if (update.finish) {
    Finish(seq, FinishReasonOf(update.finish->kind), event);
  } else if (seq.num_tokens() >= options_.max_model_len) {
    Finish(seq, FinishReason::kLength, event);
  }
}

void Scheduler::Finish(Sequence& seq, FinishReason reason, TokenEvent& event) {
  RecordAffinity(seq, reason);
  Release(seq);
  MoveTo(seq, RequestState::kFinished);
  seq.finish_reason = reason;
  ended_since_plan_.push_back(seq.request.id);
  FillFinished(seq, reason, event);
}

void Scheduler::FillFinished(const Sequence& seq, FinishReason reason, TokenEvent& event) const {
  event.finished = true;
  event.finish_reason = reason;
  event.usage = seq.usage;
  event.generated_tokens = static_cast<int64_t>(seq.output_ids.size());
}

void Scheduler::RecordAffinity(Sequence& seq, FinishReason reason) {
  const Request& r = seq.request;
  const bool pin = r.kind == RequestKind::kPrefill && r.pin && reason == FinishReason::kPrefilled;
  if (r.session_id.empty() && !seq.has_agent() && !pin) return;
  // The blocks it computed, all committed by now: what a next turn reuses.
  std::vector<cache::BlockKey> keys;
  if (prefix_cache()) {
    const int64_t blocks = KeyBlockLimit(seq, seq.computed / options_.block_size);
    cache_.ExtendKeys(seq.salt(), seq.tokens, blocks, seq.keys);
    keys.assign(
        seq.keys.begin(),
        seq.keys.begin() + std::min<int64_t>(blocks, static_cast<int64_t>(seq.keys.size())));
  }
  const Clock::time_point now = options_.now();
  if (pin && !r.session_id.empty()) sessions_.Pin(r.cache_salt, r.session_id, keys);
  if (pin && r.session_id.empty()) sessions_.PinUntilEvicted(keys);
  if (!r.session_id.empty()) sessions_.EndTurn(r.cache_salt, r.session_id, keys, now);
  const bool completed = reason == FinishReason::kStop || reason == FinishReason::kLength ||
                         reason == FinishReason::kPrefilled;
  if (seq.has_agent() && completed && !keys.empty()) {
    AgentTurn turn{
        .tokens = std::vector<TokenId>(seq.tokens.begin(), seq.tokens.begin() + seq.computed),
        .keys = std::move(keys),
        .public_blocks = seq.public_blocks};
    workflows_.RecordTurn(seq.agent(), std::move(turn), now);
  }
  ApplyHolds();
}

void Scheduler::Release(Sequence& seq) {
  ReleaseChunks(seq);
  if (write_behind_.enabled()) write_behind_.Enqueue(cache_.IndexedKeys(seq.request.id));
  cache_.Free(seq.request.id);  // no-op when it holds no blocks
  seq.load.reset();
  ReleaseSwap(seq);
}

void Scheduler::ReleaseSwap(Sequence& seq) {
  for (int32_t slot : seq.swap_slots) swap_->Release(slot);
  seq.swap_slots.clear();
  seq.swapped_tokens = 0;
}

void Scheduler::EraseFinished() {
  std::erase_if(sequences_, [this](const auto& entry) {
    const Sequence& seq = *entry.second;
    // Ended between steps after this Update's events went out: its event
    // is still pending.
    if (seq.state != RequestState::kFinished ||
        std::find(pending_events_.begin(), pending_events_.end(), entry.first) !=
            pending_events_.end()) {
      return false;
    }
    if (seq.request.deadline) --num_with_deadline_;
    --num_in_state_[static_cast<size_t>(RequestState::kFinished)];
    return true;
  });
}

}  // namespace strata::scheduler
