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

engine::KvCacheSpec CacheSpec(const SchedulerOptions& options) {
  engine::KvCacheSpec spec = options.kv_spec;
  spec.block_size = options.block_size;
  return spec;
}

int64_t BlocksFor(int64_t num_tokens, int64_t block_size) {
  return (num_tokens + block_size - 1) / block_size;
}

// How many of positions [begin, end) belong to a prompt of `prompt_len`.
int64_t PromptPart(int64_t begin, int64_t end, int64_t prompt_len) {
  return std::max<int64_t>(0, std::min(end, prompt_len) - begin);
}

}  // namespace

Scheduler::Scheduler(const SchedulerOptions& options, const engine::Tokenizer& tokenizer)
    : options_(options),
      tokenizer_(tokenizer),
      cache_(CacheSpec(options), options.num_blocks, options.model_fingerprint),
      order_(options.policy, options.max_queue_delay),
      sessions_(holds_, options.session_ttl),
      workflows_(holds_, options.session_ttl),
      prefetcher_(cache_, options.host_tier, options.disk_tier) {
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
  cache_.set_eviction_listener([this](const cache::EvictedBlock& block) { OnEvicted(block); });
}

Scheduler::~Scheduler() = default;

absl::Status Scheduler::AddRequest(Request request) {
  if (sequences_.count(request.id)) {
    return absl::AlreadyExistsError(absl::StrCat("request ", request.id, " already exists"));
  }
  if (request.id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("request id ", request.id, " is negative (negative ids are reserved)"));
  }
  const RequestLimits limits{.vocab_size = options_.vocab_size,
                             .max_model_len = options_.max_model_len,
                             .block_size = options_.block_size,
                             .num_device_blocks = cache_.num_blocks(),
                             .num_layers = options_.kv_spec.num_layers};
  if (absl::Status valid = ValidateRequest(request, limits); !valid.ok()) return valid;
  if (request.public_prefix_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("public_prefix_tokens is negative (", request.public_prefix_tokens, ")"));
  }
  const int64_t queued = num_waiting() + num_loading();
  if (options_.max_waiting > 0 && queued >= options_.max_waiting) {
    ++counters_.rejected_requests;
    return absl::ResourceExhaustedError(
        absl::StrCat("waiting queue is full (", queued, " requests)"));
  }
  const Clock::time_point now = options_.now();
  const RequestId id = request.id;
  auto owned = std::make_unique<Sequence>(std::move(request), tokenizer_, options_.eos_token_ids);
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
  if (seq.request.deadline) ++num_with_deadline_;
  sequences_.emplace(id, std::move(owned));
  waiting_.push_back(id);
  if (blend_active(seq)) {
    ++counters_.blend_requests;
    HashChunks(seq);
    StartFills(seq);
    if (seq.request.kind == RequestKind::kPrefill && seq.pending_fills == 0) {
      seq.end_reason = "prefilled";  // every chunk is on the device already
      aborted_.push_back(id);
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

absl::Status Scheduler::Abort(RequestId id) {
  auto it = sequences_.find(id);
  if (it == sequences_.end() || it->second->done || !it->second->end_reason.empty()) {
    return absl::NotFoundError(absl::StrCat("request ", id, " is not running or waiting"));
  }
  Release(*it->second);
  it->second->end_reason = "abort";
  aborted_.push_back(id);
  return absl::OkStatus();
}

absl::Status Scheduler::ReleaseSession(std::string_view cache_salt, std::string_view session_id) {
  absl::Status status = sessions_.Release(cache_salt, session_id);
  ApplyHolds();
  return status;
}

bool Scheduler::HasWork() const {
  if (!waiting_.empty() || !loading_.empty() || !running_.empty() || !aborted_.empty()) {
    return true;
  }
  return prefetcher_.HasReadsInFlight();
}

engine::StepPlan Scheduler::Schedule() {
  engine::StepPlan plan;
  plan.finished_ids = std::move(ended_since_plan_);
  ended_since_plan_.clear();
  ++step_;
  const Clock::time_point now = options_.now();
  ExpireDeadlines(now);
  sessions_.Expire(now);
  workflows_.Expire(now);
  ApplyHolds();
  int64_t budget = options_.max_batch_tokens;
  moves_ = &plan.block_moves;
  ScheduleRunning(plan, budget);
  AdmitWaiting(plan, budget, now);
  if (prefix_cache()) prefetcher_.Run(workflows_, plan.block_moves);
  moves_ = nullptr;
  return plan;
}

void Scheduler::ExpireDeadlines(Clock::time_point now) {
  if (num_with_deadline_ == 0) return;
  for (auto& [id, seq] : sequences_) {
    if (seq->done || !seq->end_reason.empty() || !seq->request.deadline ||
        now < *seq->request.deadline) {
      continue;
    }
    Release(*seq);
    seq->end_reason = "deadline";
    aborted_.push_back(id);
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

void Scheduler::OnEvicted(const cache::EvictedBlock& block) {
  sessions_.OnEvicted(block.key);  // a pin without a session ends here
  if (staging_ == nullptr) return;
  CHECK(moves_ != nullptr);  // blocks are allocated only while a plan is built
  // nullopt: the tier holds it already, or no memory (dropped, recomputed if needed).
  std::optional<absl::Span<std::byte>> dst = demotions_->Add(block.key);
  if (!dst) return;
  // At the front of the block's reuse: the moves run in order before the
  // forward pass, and nothing earlier in this plan wrote the block.
  moves_->push_back(engine::BlockMove{
      .src = block.id, .kind = engine::BlockMoveKind::kDeviceToHost, .host_dst = *dst});
}

void Scheduler::FinishMoves(bool performed) {
  if (demotions_ != nullptr) {
    const int64_t demoted = demotions_->Finish(performed);
    if (demoted > 0) cache_.RecordTransfer(cache::Tier::kDevice, demotions_->tier(), demoted);
  }
  // A swap-out whose copies did not run left nothing usable: recompute.
  for (RequestId id : swapped_out_) {
    auto it = sequences_.find(id);
    if (it != sequences_.end() && !performed) ReleaseSwap(*it->second);
  }
  swapped_out_.clear();
  for (int32_t slot : swap_in_slots_) swap_->Release(slot);
  swap_in_slots_.clear();
  counters_.prefetched_blocks += prefetcher_.Finish(performed, workflows_, holds_);
  promotions_.clear();  // unpins the host blocks the promotions read
}

void Scheduler::ScheduleRunning(engine::StepPlan& plan, int64_t& budget) {
  size_t i = 0;
  while (i < running_.size() && budget > 0) {
    Sequence& seq = *sequences_.at(running_[i]);
    const int64_t n = std::min(seq.num_tokens() - seq.computed, budget);
    bool preempted_self = false;
    while (!cache_.Allocate(seq.request.id, seq.computed + n).has_value()) {
      // Out of blocks: the last in running order (lowest priority, newest)
      // gives its blocks up. Those before i are in the plan and outrank it.
      preempted_self = running_.back() == seq.request.id;
      Preempt(*sequences_.at(running_.back()));
      if (preempted_self) break;
    }
    if (preempted_self) break;
    plan.sequences.push_back(MakeStep(seq, n));
    budget -= n;
    ++i;
  }
}

std::vector<WaitingEntry> Scheduler::Candidates() const {
  const bool score = order_.policy() == SchedulingPolicy::kCacheAware && prefix_cache();
  std::vector<WaitingEntry> entries;
  entries.reserve(loading_.size() + waiting_.size());
  auto add = [&](RequestId id) {
    const Sequence& seq = *sequences_.at(id);
    if (seq.preempted_step == step_) return;                  // not back in the same step
    if (seq.pending_fills > 0) return;                        // its chunks are being computed
    if (!seq.end_reason.empty()) return;                      // ended, event pending
    // A blend prefetch only waits for its fills (OnFillDone ends it).
    if (blend_active(seq) && seq.request.kind == RequestKind::kPrefill) return;
    if (seq.load != nullptr && !seq.load->IsReady()) return;  // reads in flight
    WaitingEntry entry{
        .id = id, .priority = seq.request.priority, .arrival = seq.arrival, .arrived = seq.arrived};
    if (score) {
      entry.cached_tokens = cache_.FindCachedPrefixByKeys(seq.keys).num_tokens;
      if (seq.load != nullptr) {
        entry.cached_tokens =
            std::max(entry.cached_tokens,
                     (seq.load_first_block + seq.load->num_found()) * options_.block_size);
      }
      entry.cached_tokens = std::max(entry.cached_tokens, seq.swapped_tokens);
    }
    entries.push_back(entry);
  };
  for (RequestId id : loading_) add(id);
  for (RequestId id : waiting_) add(id);
  return entries;
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
  for (RequestId id : loading_) {
    const Sequence& seq = *sequences_.at(id);
    add_from(id, seq, seq.load_first_block);
  }
}

void Scheduler::AdmitWaiting(engine::StepPlan& plan, int64_t& budget, Clock::time_point now) {
  std::vector<WaitingEntry> entries = Candidates();
  if (entries.empty()) return;
  order_.Sort(entries, now);
  const bool group = order_.policy() == SchedulingPolicy::kCacheAware && prefix_cache();
  if (group) BuildInflight();
  int passed_over = 0;
  for (const WaitingEntry& entry : entries) {
    if (budget <= 0) break;
    Sequence& seq = *sequences_.at(entry.id);
    if (blend_active(seq) && !seq.blended && !PrepareBlend(seq)) continue;  // fills restarted
    if (group && seq.swap_slots.empty()) {
      const auto cached =
          static_cast<int64_t>(cache_.FindCachedPrefixByKeys(seq.keys).blocks.size());
      if (inflight_.ShouldWait(entry.id, seq.keys, cached)) {
        // Another sequence is computing the next block this one needs: wait
        // for it and take it as a hit, rather than compute it twice.
        if (!seq.grouped) ++counters_.grouped_waits;
        seq.grouped = true;
        continue;
      }
    }
    const AdmitResult result = TryAdmit(seq, plan, budget);
    if (result == AdmitResult::kLoading) continue;  // its reads run; the others go on
    if (result == AdmitResult::kAdmitted) {
      if (group) {
        // Its blocks past the device prefix are now being computed (or
        // promoted) by this plan.
        const auto cached = cache_.FindCachedPrefixByKeys(seq.keys).blocks.size();
        if (cached < seq.keys.size()) {
          inflight_.Add(entry.id, absl::MakeConstSpan(seq.keys).subspan(cached));
        }
      }
      continue;
    }
    if (!order_.MayOvertake(entry) || ++passed_over >= kMaxPassedOver) break;
  }
}

Scheduler::AdmitResult Scheduler::TryAdmit(Sequence& seq, engine::StepPlan& plan, int64_t& budget) {
  const RequestId id = seq.request.id;
  const auto victim_ranks_lower = [&] {
    return !running_.empty() &&
           sequences_.at(running_.back())->request.priority < seq.request.priority;
  };
  // A full batch makes room only for a higher priority.
  if (static_cast<int64_t>(running_.size()) >= options_.max_running && !victim_ranks_lower()) {
    return AdmitResult::kNoRoom;
  }
  if (seq.load == nullptr && seq.swap_slots.empty() && StartLoad(seq)) {
    std::erase(waiting_, id);
    loading_.push_back(id);
    if (!seq.load->IsReady()) return AdmitResult::kLoading;
  }
  // Lower priorities give way, but only when that can be enough: preempting
  // them all in vain would just churn.
  const bool may_preempt = victim_ranks_lower() && CouldFitByPreempting(seq, budget);
  while (static_cast<int64_t>(running_.size()) >= options_.max_running) {
    if (!may_preempt || !victim_ranks_lower()) return AdmitResult::kNoRoom;
    PreemptLast(plan, budget);
  }
  while (!Admit(seq, plan, budget)) {
    if (!may_preempt || !victim_ranks_lower()) return AdmitResult::kNoRoom;
    PreemptLast(plan, budget);
  }
  std::erase(waiting_, id);
  std::erase(loading_, id);
  return AdmitResult::kAdmitted;
}

bool Scheduler::CouldFitByPreempting(const Sequence& seq, int64_t budget) const {
  const int64_t block_size = options_.block_size;
  const int64_t cached = prefix_cache() ? cache_.FindCachedPrefixByKeys(seq.keys).num_tokens : 0;
  const int64_t start = std::max(cached, seq.swapped_tokens);
  const int64_t n = std::min(seq.num_tokens() - start, budget);
  const int64_t needed = BlocksFor(start + n, block_size) - cached / block_size;
  // An upper bound: blocks shared with others are not freed by a preemption.
  int64_t freeable = cache_.num_available_blocks();
  for (RequestId other : running_) {
    if (sequences_.at(other)->request.priority < seq.request.priority) {
      freeable += static_cast<int64_t>(cache_.block_table(other).size());
    }
  }
  return needed <= freeable;
}

bool Scheduler::StartLoad(Sequence& seq) {
  if (!has_tiers() || !prefix_cache()) return false;
  // A resumed (preempted) sequence looks up its output too: its own blocks
  // may still be cached.
  const size_t first = cache_.FindCachedPrefixByKeys(seq.keys).blocks.size();
  if (first >= seq.keys.size()) return false;
  auto load = std::make_unique<cache::PrefixLoad>(absl::MakeConstSpan(seq.keys).subspan(first),
                                                  options_.host_tier, options_.disk_tier);
  if (load->num_found() == 0) return false;
  seq.load = std::move(load);
  seq.load_first_block = static_cast<int64_t>(first);
  return true;
}

bool Scheduler::Admit(Sequence& seq, engine::StepPlan& plan, int64_t& budget) {
  const int64_t block_size = options_.block_size;
  const cache::CachedPrefix prefix =
      prefix_cache() ? cache_.FindCachedPrefixByKeys(seq.keys) : cache::CachedPrefix{};
  const int64_t device_blocks = static_cast<int64_t>(prefix.blocks.size());
  std::vector<cache::LoadedBlock> loaded;
  if (seq.load != nullptr && device_blocks >= seq.load_first_block) {
    // The device prefix may have changed while the reads ran: promote only
    // the loaded blocks that continue it. (Had it shrunk, the loaded blocks
    // would leave a gap: they are dropped and recomputed.)
    loaded = seq.load->Blocks();
    const size_t skip = static_cast<size_t>(device_blocks - seq.load_first_block);
    loaded.erase(loaded.begin(),
                 loaded.begin() + static_cast<std::ptrdiff_t>(std::min(skip, loaded.size())));
  }
  int64_t start = prefix.num_tokens + static_cast<int64_t>(loaded.size()) * block_size;
  const bool resumed_from_swap = !seq.swap_slots.empty();
  const bool swap_in = resumed_from_swap && seq.swapped_tokens > start;
  if (swap_in) start = seq.swapped_tokens;
  // A blend step computes the whole rest of the prompt at once: the check
  // layers compare every chunk token.
  const bool blend_step = blend_active(seq) && !seq.blended;
  const int64_t n =
      blend_step ? seq.num_tokens() - start : std::min(seq.num_tokens() - start, budget);
  if (blend_step && !HoldChunks(seq)) return false;
  // A swapped sequence's K/V comes from its swap, not the prefix cache: it
  // is not counted as a query.
  const int64_t query_tokens = prefix_cache() && !resumed_from_swap ? seq.num_tokens() : 0;
  std::optional<cache::BlockTable> table =
      cache_.AddSequence(seq.request.id, seq.salt(), prefix, start + n, query_tokens);
  if (!table) {
    ReleaseChunks(seq);
    return false;
  }
  PromptUsage usage{.prompt_tokens = seq.prompt_len()};
  usage.cached_tokens_by_tier[0] = std::min(prefix.num_tokens, seq.prompt_len());
  // After any demotion moves AddSequence's evictions queued: a block evicted
  // and refilled here is read out first.
  for (size_t i = 0; i < loaded.size(); ++i) {
    const int64_t block = device_blocks + static_cast<int64_t>(i);
    moves_->push_back(engine::BlockMove{.dst = (*table)[static_cast<size_t>(block)],
                                        .kind = engine::BlockMoveKind::kHostToDevice,
                                        .host_src = loaded[i].bytes});
    cache_.RecordTierHit(loaded[i].tier, block_size);
    cache_.RecordTransfer(loaded[i].tier, cache::Tier::kDevice, 1);
    usage.cached_tokens_by_tier[static_cast<size_t>(loaded[i].tier)] +=
        PromptPart(block * block_size, (block + 1) * block_size, seq.prompt_len());
  }
  if (!loaded.empty()) promotions_.push_back(std::move(seq.load));
  seq.load.reset();
  if (swap_in) {
    const int64_t last = BlocksFor(seq.swapped_tokens, block_size);
    for (int64_t block = device_blocks; block < last; ++block) {
      moves_->push_back(
          engine::BlockMove{.dst = (*table)[static_cast<size_t>(block)],
                            .kind = engine::BlockMoveKind::kHostToDevice,
                            .host_src = swap_->Data(seq.swap_slots[static_cast<size_t>(block)])});
    }
    counters_.swapped_in_blocks += last - device_blocks;
    cache_.RecordTransfer(cache::Tier::kHost, cache::Tier::kDevice, last - device_blocks);
    usage.cached_tokens_by_tier[static_cast<size_t>(cache::Tier::kHost)] +=
        PromptPart(prefix.num_tokens, seq.swapped_tokens, seq.prompt_len());
  }
  // The slots are read by this plan's moves (or not at all): freed after it.
  swap_in_slots_.insert(swap_in_slots_.end(), seq.swap_slots.begin(), seq.swap_slots.end());
  seq.swap_slots.clear();
  seq.swapped_tokens = 0;
  seq.usage = usage;
  seq.computed = start;
  seq.admission = next_admission_++;
  InsertRunning(seq.request.id);
  if (seq.has_agent()) {
    workflows_.OnAdmitted(seq.agent());
    ApplyHolds();
  }
  plan.sequences.push_back(MakeStep(seq, n));
  budget -= std::min(n, budget);
  return true;
}

void Scheduler::InsertRunning(RequestId id) {
  const Sequence& seq = *sequences_.at(id);
  auto pos = std::find_if(running_.begin(), running_.end(), [&](RequestId other) {
    const Sequence& o = *sequences_.at(other);
    return RunsBefore(seq.request.priority, seq.admission, o.request.priority, o.admission);
  });
  running_.insert(pos, id);
}

void Scheduler::PreemptLast(engine::StepPlan& plan, int64_t& budget) {
  const RequestId victim = running_.back();
  auto step = std::find_if(plan.sequences.begin(), plan.sequences.end(),
                           [&](const engine::SequenceStep& s) { return s.seq_id == victim; });
  if (step != plan.sequences.end()) {
    budget += static_cast<int64_t>(step->token_ids.size());
    plan.sequences.erase(step);
  }
  Preempt(*sequences_.at(victim));
}

void Scheduler::Preempt(Sequence& seq) {
  const RequestId id = seq.request.id;
  if (SwapOut(seq)) {
    ++counters_.preemptions_swap;
  } else {
    // Its full blocks stay cached: on return it recomputes only what was
    // evicted meanwhile, plus the partial tail. A blend sequence blends again.
    ++counters_.preemptions_recompute;
    seq.blended = false;
  }
  ReleaseChunks(seq);
  cache_.Free(id);
  seq.computed = 0;
  std::erase(running_, id);
  waiting_.push_back(id);
  seq.preempted_step = step_;
  ++num_preemptions_;
  ExtendKeys(seq);  // it resumes with its output: a longer prefix to look up
}

bool Scheduler::SwapOut(Sequence& seq) {
  if (swap_ == nullptr) return false;
  const int64_t free_slots = max_swap_blocks_ - swap_->num_in_use();
  if (ChoosePreemption(options_.preemption, /*swap_available=*/true, seq.computed,
                       options_.block_size, free_slots) != PreemptAction::kSwap) {
    return false;
  }
  const int64_t blocks = BlocksFor(seq.computed, options_.block_size);
  std::vector<int32_t> slots;
  for (int64_t i = 0; i < blocks; ++i) {
    std::optional<int32_t> slot = swap_->Acquire();
    if (!slot) {  // the allocator failed: recompute after all
      for (int32_t taken : slots) swap_->Release(taken);
      return false;
    }
    slots.push_back(*slot);
  }
  // Before any reuse of these blocks in this plan: appended first, run first.
  const cache::BlockTable& table = cache_.block_table(seq.request.id);
  for (int64_t i = 0; i < blocks; ++i) {
    moves_->push_back(engine::BlockMove{.src = table[static_cast<size_t>(i)],
                                        .kind = engine::BlockMoveKind::kDeviceToHost,
                                        .host_dst = swap_->Data(slots[static_cast<size_t>(i)])});
  }
  cache_.RecordTransfer(cache::Tier::kDevice, cache::Tier::kHost, blocks);
  seq.swap_slots = std::move(slots);
  seq.swapped_tokens = seq.computed;
  counters_.swapped_out_blocks += blocks;
  swapped_out_.push_back(seq.request.id);
  return true;
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
  FinishMoves(result.moves_completed == static_cast<int64_t>(plan.block_moves.size()));
  std::vector<TokenEvent> events;
  for (RequestId id : aborted_) {
    Sequence& seq = *sequences_.at(id);
    TokenEvent event{.request_id = id};
    if (seq.end_reason == "deadline") {
      event.error = absl::DeadlineExceededError(
          absl::StrCat("request ", id, " passed its deadline before it finished"));
    }
    Finish(seq, seq.end_reason, event);
    events.push_back(std::move(event));
  }
  aborted_.clear();
  for (size_t k = 0; k < plan.sequences.size(); ++k) {
    const engine::SequenceStep& step = plan.sequences[k];
    auto it = sequences_.find(step.seq_id);
    if (it == sequences_.end() || it->second->done) continue;
    Sequence& seq = *it->second;
    seq.computed += static_cast<int64_t>(step.token_ids.size());
    if (step.blend) {
      ApplyBlendResult(seq, k < result.outputs.size() ? result.outputs[k] : engine::SequenceOutput{});
    }
    if (prefix_cache()) cache_.CommitFullBlocks(seq.request.id, seq.tokens, CommitLimit(seq));
    if (seq.request.kind == RequestKind::kPrefill) {
      if (seq.computed == seq.num_tokens() && seq.is_fill) {
        OnFillDone(seq, /*computed=*/true);
        TokenEvent unused{.request_id = seq.request.id};
        Finish(seq, "prefilled", unused);  // internal: no event
      } else if (seq.computed == seq.num_tokens()) {
        TokenEvent event{.request_id = seq.request.id};
        Finish(seq, "prefilled", event);
        events.push_back(std::move(event));
      }
      continue;
    }
    if (!step.sample) continue;
    TokenEvent event{.request_id = seq.request.id};
    if (k >= result.outputs.size() || !result.outputs[k].token) {
      event.error = absl::InternalError("the backend returned no token for a sampling step");
      Finish(seq, "error", event);
    } else {
      AppendToken(seq, *result.outputs[k].token, event);
    }
    events.push_back(std::move(event));
  }
  EraseDone();
  return events;
}

std::vector<TokenEvent> Scheduler::FailStep(const engine::StepPlan& plan,
                                            const absl::Status& error) {
  FinishMoves(/*performed=*/false);
  std::vector<TokenEvent> events;
  for (const engine::SequenceStep& step : plan.sequences) {
    auto it = sequences_.find(step.seq_id);
    if (it == sequences_.end() || it->second->done) continue;
    TokenEvent event{.request_id = step.seq_id, .error = error};
    if (it->second->is_fill) OnFillDone(*it->second, /*computed=*/false);
    Finish(*it->second, "error", event);
    if (!it->second->is_fill) events.push_back(std::move(event));
  }
  EraseDone();
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
  absl::StatusOr<std::string> piece = seq.detokenizer.Push(sampled.id);
  if (!piece.ok()) {
    event.error = piece.status();
    Finish(seq, "error", event);
    return;
  }
  engine::StopUpdate update = seq.stop_checker.Push(sampled.id, *piece);
  event.text = std::move(update.text_to_emit);
  if (update.finish) {
    // A matched stop string drops what follows it; otherwise the text held in
    // the detokenizer (a cut-off character) still belongs to the client.
    if (!update.finish->stop_string) event.text += seq.detokenizer.Finish().value_or("");
    Finish(seq, std::string(update.finish->Name()), event);
  } else if (seq.num_tokens() >= options_.max_model_len) {
    event.text += seq.stop_checker.Flush() + seq.detokenizer.Finish().value_or("");
    Finish(seq, "length", event);
  }
}

void Scheduler::Finish(Sequence& seq, const std::string& reason, TokenEvent& event) {
  event.finished = true;
  event.finish_reason = reason;
  event.usage = seq.usage;
  event.generated_tokens = static_cast<int64_t>(seq.output_ids.size());
  RecordAffinity(seq, reason);
  Release(seq);
  seq.done = true;
  ended_since_plan_.push_back(seq.request.id);
}

void Scheduler::RecordAffinity(Sequence& seq, const std::string& reason) {
  const Request& r = seq.request;
  const bool pin = r.kind == RequestKind::kPrefill && r.pin && reason == "prefilled";
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
  const bool completed = reason == "stop" || reason == "length" || reason == "prefilled";
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
  cache_.Free(seq.request.id);  // no-op when already released (abort, then finish)
  seq.load.reset();
  ReleaseSwap(seq);
  std::erase(loading_, seq.request.id);
  std::erase(running_, seq.request.id);
  std::erase(waiting_, seq.request.id);
}

void Scheduler::ReleaseSwap(Sequence& seq) {
  for (int32_t slot : seq.swap_slots) swap_->Release(slot);
  seq.swap_slots.clear();
  seq.swapped_tokens = 0;
}

void Scheduler::EraseDone() {
  std::erase_if(sequences_, [this](const auto& entry) {
    if (!entry.second->done) return false;
    if (entry.second->request.deadline) --num_with_deadline_;
    return true;
  });
}

absl::Status Scheduler::ValidateCache() const {
  if (absl::Status status = cache_.Validate(); !status.ok()) return status;
  int64_t holders = 0;
  for (const auto& [id, seq] : sequences_) holders += seq->holder != 0 ? 1 : 0;
  const int64_t expected =
      static_cast<int64_t>(running_.size()) + prefetcher_.num_in_flight() + holders;
  if (cache_.num_sequences() != expected) {
    return absl::InternalError(absl::StrCat("the cache holds ", cache_.num_sequences(),
                                            " sequences but ", expected, " are running"));
  }
  int64_t swapped = 0;
  for (const auto& [id, seq] : sequences_) {
    swapped += static_cast<int64_t>(seq->swap_slots.size());
    const bool running = std::find(running_.begin(), running_.end(), id) != running_.end();
    if (running != cache_.HasSequence(id)) {
      return absl::InternalError(
          absl::StrCat("request ", id, (running ? " runs without" : " has"), " a block table"));
    }
  }
  const int64_t swap_in_use = swap_ != nullptr ? swap_->num_in_use() : 0;
  if (swap_in_use != swapped + static_cast<int64_t>(swap_in_slots_.size())) {
    return absl::InternalError(
        absl::StrCat(swap_in_use, " swap slots in use but sequences hold ", swapped));
  }
  if (sequences_.empty()) {
    if (cache_.pool().num_in_use() != 0) {
      return absl::InternalError(absl::StrCat(
          cache_.pool().num_in_use(), " device blocks are referenced with no request left"));
    }
    if (staging_ != nullptr && staging_->num_in_use() != 0) {
      return absl::InternalError("staging memory is held with no request left");
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::scheduler
