#include "scheduler/scheduler.h"

#include <algorithm>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/check.h"

namespace strata::scheduler {
namespace {

// Requests carry no tenant yet, so all share one cache salt. The server sets a
// per-tenant salt once Request has the field (DESIGN.md, tenant isolation).

engine::KvCacheSpec CacheSpec(const SchedulerOptions& options) {
  engine::KvCacheSpec spec = options.kv_spec;
  spec.block_size = options.block_size;
  return spec;
}

}  // namespace

struct Scheduler::Sequence {
  Sequence(Request r, const engine::Tokenizer& tokenizer, absl::Span<const TokenId> eos_ids)
      : request(std::move(r)),
        // Primed with the prompt so the first output token keeps its leading
        // space (SentencePiece strips it only at the very start of a text).
        detokenizer(tokenizer, /*skip_special_tokens=*/true, request.prompt_ids),
        stop_checker(request.sampling, eos_ids),
        tokens(request.prompt_ids) {}

  int64_t num_tokens() const { return static_cast<int64_t>(tokens.size()); }

  Request request;
  std::vector<TokenId> output_ids;
  engine::IncrementalDetokenizer detokenizer;
  engine::StopChecker stop_checker;
  std::vector<TokenId> tokens;  // prompt then output: what the prefix cache hashes
  int64_t computed = 0;         // tokens whose K/V are in the sequence's blocks
  bool done = false;
  // While LOADING: the lower-tier lookups of blocks load_first_block on.
  std::unique_ptr<cache::PrefixLoad> load;
  int64_t load_first_block = 0;
};

Scheduler::Scheduler(const SchedulerOptions& options, const engine::Tokenizer& tokenizer)
    : options_(options),
      tokenizer_(tokenizer),
      cache_(CacheSpec(options), options.num_blocks, options.model_fingerprint) {
  CHECK_GT(options_.block_size, 0);
  CHECK_GT(options_.max_batch_tokens, 0);
  CHECK_GT(options_.max_running, 0);
  CHECK_GT(options_.max_model_len, 0);
  if (has_tiers()) {
    const int64_t max_staging =
        options_.max_staging_blocks > 0 ? options_.max_staging_blocks : options_.num_blocks;
    staging_ = std::make_unique<cache::StagingPool>(static_cast<size_t>(cache_.bytes_per_block()),
                                                    max_staging, options_.staging_allocator);
    cache_.set_eviction_listener([this](const cache::EvictedBlock& block) { OnEvicted(block); });
  }
}

Scheduler::~Scheduler() = default;

absl::Status Scheduler::AddRequest(Request request) {
  if (sequences_.count(request.id)) {
    return absl::AlreadyExistsError(absl::StrCat("request ", request.id, " already exists"));
  }
  if (request.prompt_ids.empty()) return absl::InvalidArgumentError("prompt is empty");
  for (TokenId id : request.prompt_ids) {
    if (id < 0 || id >= options_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "prompt token id ", id, " is outside the vocabulary [0, ", options_.vocab_size, ")"));
    }
  }
  int64_t prompt_len = static_cast<int64_t>(request.prompt_ids.size());
  if (prompt_len >= options_.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", prompt_len,
                                                   " tokens leaves no room to generate within the "
                                                   "model's context of ",
                                                   options_.max_model_len, " tokens"));
  }
  int64_t blocks_needed = prompt_len / options_.block_size + 1;
  if (blocks_needed > cache_.num_blocks()) {
    return absl::ResourceExhaustedError(absl::StrCat("prompt of ", prompt_len, " tokens needs ",
                                                     blocks_needed, " KV blocks; the cache holds ",
                                                     cache_.num_blocks()));
  }
  if (absl::Status valid = engine::ValidateSamplingParams(request.sampling, options_.vocab_size);
      !valid.ok()) {
    return valid;
  }
  RequestId id = request.id;
  sequences_.emplace(
      id, std::make_unique<Sequence>(std::move(request), tokenizer_, options_.eos_token_ids));
  waiting_.push_back(id);
  return absl::OkStatus();
}

absl::Status Scheduler::Abort(RequestId id) {
  auto it = sequences_.find(id);
  if (it == sequences_.end() || it->second->done ||
      std::find(aborted_.begin(), aborted_.end(), id) != aborted_.end()) {
    return absl::NotFoundError(absl::StrCat("request ", id, " is not running or waiting"));
  }
  Release(*it->second);
  aborted_.push_back(id);
  return absl::OkStatus();
}

engine::StepPlan Scheduler::Schedule() {
  engine::StepPlan plan;
  plan.finished_ids = std::move(ended_since_plan_);
  ended_since_plan_.clear();
  int64_t budget = options_.max_batch_tokens;
  moves_ = &plan.block_moves;
  ScheduleRunning(plan, budget);
  AdmitLoaded(plan, budget);
  AdmitWaiting(plan, budget);
  moves_ = nullptr;
  return plan;
}

void Scheduler::OnEvicted(const cache::EvictedBlock& block) {
  CHECK(moves_ != nullptr);  // blocks are allocated only while a plan is built
  std::optional<int32_t> slot = staging_->Acquire();
  if (!slot) return;  // no staging memory: the content is dropped, recomputed if needed
  // At the front of the block's reuse: the moves run in order before the
  // forward pass, and nothing earlier in this plan wrote the block.
  moves_->push_back(engine::BlockMove{.src = block.id,
                                      .kind = engine::BlockMoveKind::kDeviceToHost,
                                      .host_dst = staging_->Data(*slot)});
  demotions_.push_back(Demotion{*slot, block.key});
}

void Scheduler::FinishMoves(bool performed) {
  storage::TierStore* target =
      options_.host_tier != nullptr ? options_.host_tier : options_.disk_tier;
  const cache::Tier tier = options_.host_tier != nullptr ? cache::Tier::kHost : cache::Tier::kDisk;
  int64_t demoted = 0;
  for (const Demotion& demotion : demotions_) {
    // Insert copies (and may drop, or push an older block down to disk).
    if (performed && target->Insert(demotion.key, staging_->Data(demotion.slot)).ok()) ++demoted;
    staging_->Release(demotion.slot);
  }
  if (demoted > 0) cache_.RecordTransfer(cache::Tier::kDevice, tier, demoted);
  demotions_.clear();
  promotions_.clear();  // unpins the host blocks the promotions read
}

void Scheduler::ScheduleRunning(engine::StepPlan& plan, int64_t& budget) {
  size_t i = 0;
  while (i < running_.size() && budget > 0) {
    Sequence& seq = *sequences_.at(running_[i]);
    int64_t n = std::min(seq.num_tokens() - seq.computed, budget);
    bool preempted_self = false;
    while (!GrowBlocks(seq, seq.computed + n)) {
      // Out of blocks: the newest sequence gives its blocks up and recomputes
      // later. Sequences before i are already in the plan and never the newest.
      Sequence& victim = *sequences_.at(running_.back());
      preempted_self = &victim == &seq;
      Preempt(victim);
      if (preempted_self) break;
    }
    if (preempted_self) break;
    plan.sequences.push_back(MakeStep(seq, n));
    budget -= n;
    ++i;
  }
}

void Scheduler::AdmitLoaded(engine::StepPlan& plan, int64_t& budget) {
  // In arrival order; one whose reads are still running lets later ones by,
  // but one that does not fit stops admission (first come, first served).
  for (size_t i = 0; i < loading_.size() && budget > 0 &&
                     static_cast<int64_t>(running_.size()) < options_.max_running;) {
    Sequence& seq = *sequences_.at(loading_[i]);
    if (!seq.load->IsReady()) {
      ++i;
      continue;
    }
    if (!Admit(seq, plan, budget)) return;
    loading_.erase(loading_.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

void Scheduler::AdmitWaiting(engine::StepPlan& plan, int64_t& budget) {
  while (!waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < options_.max_running) {
    const RequestId id = waiting_.front();
    Sequence& seq = *sequences_.at(id);
    if (StartLoad(seq)) {
      waiting_.pop_front();
      loading_.push_back(id);
      if (!seq.load->IsReady()) continue;  // disk reads run; the others go on
      if (!Admit(seq, plan, budget)) return;
      loading_.pop_back();
      continue;
    }
    if (!Admit(seq, plan, budget)) return;  // first come, first served: no overtaking
    waiting_.pop_front();
  }
}

bool Scheduler::StartLoad(Sequence& seq) {
  if (!has_tiers()) return false;
  // A resumed (preempted) sequence looks up its output too: its own blocks
  // may still be cached.
  cache::CachedPrefix prefix = cache_.FindCachedPrefix(seq.request.cache_salt, seq.tokens);
  std::vector<cache::BlockKey> keys =
      cache_.KeysAfter(seq.request.cache_salt, seq.tokens, prefix);
  if (keys.empty()) return false;
  auto load = std::make_unique<cache::PrefixLoad>(keys, options_.host_tier, options_.disk_tier);
  if (load->num_found() == 0) return false;
  seq.load = std::move(load);
  seq.load_first_block = static_cast<int64_t>(prefix.blocks.size());
  return true;
}

bool Scheduler::Admit(Sequence& seq, engine::StepPlan& plan, int64_t& budget) {
  cache::CachedPrefix prefix = cache_.FindCachedPrefix(seq.request.cache_salt, seq.tokens);
  const int64_t device_blocks = static_cast<int64_t>(prefix.blocks.size());
  std::vector<cache::LoadedBlock> loaded;
  if (seq.load != nullptr && device_blocks >= seq.load_first_block) {
    // The device prefix may have changed while the reads ran: promote only
    // the loaded blocks that continue it. (Had it shrunk, the loaded blocks
    // would leave a gap: they are dropped and recomputed.)
    loaded = seq.load->Blocks();
    const size_t skip = static_cast<size_t>(device_blocks - seq.load_first_block);
    loaded.erase(loaded.begin(), loaded.begin() + static_cast<std::ptrdiff_t>(
                                                      std::min(skip, loaded.size())));
  }
  const int64_t block_size = options_.block_size;
  const int64_t start = prefix.num_tokens + static_cast<int64_t>(loaded.size()) * block_size;
  const int64_t n = std::min(seq.num_tokens() - start, budget);
  std::optional<cache::BlockTable> table = cache_.AddSequence(
      seq.request.id, seq.request.cache_salt, prefix, start + n, seq.num_tokens());
  if (!table) return false;
  // After any demotion moves AddSequence's evictions queued: a block evicted
  // and refilled here is read out first.
  for (size_t i = 0; i < loaded.size(); ++i) {
    moves_->push_back(engine::BlockMove{
        .dst = (*table)[static_cast<size_t>(device_blocks) + i],
        .kind = engine::BlockMoveKind::kHostToDevice,
        .host_src = loaded[i].bytes});
    cache_.RecordTierHit(loaded[i].tier, block_size);
    cache_.RecordTransfer(loaded[i].tier, cache::Tier::kDevice, 1);
  }
  if (!loaded.empty()) promotions_.push_back(std::move(seq.load));
  seq.load.reset();
  seq.computed = start;
  running_.push_back(seq.request.id);
  plan.sequences.push_back(MakeStep(seq, n));
  budget -= n;
  return true;
}

bool Scheduler::GrowBlocks(Sequence& seq, int64_t num_tokens) {
  return cache_.Allocate(seq.request.id, num_tokens).has_value();
}

void Scheduler::Preempt(Sequence& seq) {
  // Its full blocks stay cached: on return it recomputes only what was
  // evicted meanwhile, plus the partial tail.
  cache_.Free(seq.request.id);
  seq.computed = 0;
  running_.erase(std::find(running_.begin(), running_.end(), seq.request.id));
  waiting_.push_front(seq.request.id);
  ++num_preemptions_;
}

engine::SequenceStep Scheduler::MakeStep(const Sequence& seq, int64_t num_tokens) const {
  engine::SequenceStep step;
  step.seq_id = seq.request.id;
  step.start_position = seq.computed;
  step.token_ids.reserve(num_tokens);
  for (int64_t i = seq.computed; i < seq.computed + num_tokens; ++i) {
    step.token_ids.push_back(seq.tokens[i]);
  }
  step.block_table = cache_.block_table(seq.request.id);
  step.sample = seq.computed + num_tokens == seq.num_tokens();
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
    TokenEvent event{.request_id = id};
    Finish(*sequences_.at(id), "abort", event);
    events.push_back(std::move(event));
  }
  aborted_.clear();
  for (size_t k = 0; k < plan.sequences.size(); ++k) {
    const engine::SequenceStep& step = plan.sequences[k];
    auto it = sequences_.find(step.seq_id);
    if (it == sequences_.end() || it->second->done) continue;
    Sequence& seq = *it->second;
    seq.computed += static_cast<int64_t>(step.token_ids.size());
    cache_.CommitFullBlocks(seq.request.id, seq.tokens, seq.computed);
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
  std::erase_if(sequences_, [](const auto& entry) { return entry.second->done; });
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
    Finish(*it->second, "error", event);
    events.push_back(std::move(event));
  }
  std::erase_if(sequences_, [](const auto& entry) { return entry.second->done; });
  return events;
}

void Scheduler::AppendToken(Sequence& seq, const engine::SampledToken& sampled, TokenEvent& event) {
  seq.output_ids.push_back(sampled.id);
  seq.tokens.push_back(sampled.id);
  event.token_id = sampled.id;
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
  Release(seq);
  seq.done = true;
  ended_since_plan_.push_back(seq.request.id);
}

void Scheduler::Release(Sequence& seq) {
  cache_.Free(seq.request.id);  // no-op when already released (abort, then finish)
  seq.load.reset();
  std::erase(loading_, seq.request.id);
  std::erase(running_, seq.request.id);
  std::erase(waiting_, seq.request.id);
}

}  // namespace strata::scheduler
