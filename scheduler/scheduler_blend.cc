// CacheBlend in the scheduler (scheduler.h, "CacheBlend"): chunk fills, the
// holder that keeps a blend's chunks resident, and the blend step's spec and
// result. Part of class Scheduler; kept apart from scheduler.cc so that the
// plain step loop reads on its own.
#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "common/check.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_sequence.h"

namespace strata::scheduler {
namespace {

// Fill rounds before a blend whose chunks keep being evicted is served as an
// exact prefill instead.
constexpr int kMaxFillRounds = 2;

// A chunk as the prompt of its own it is computed and keyed as: the
// request's chunk context (BOS) and the chunk.
std::vector<TokenId> ChunkPrompt(const Request& request, const ChunkSpan& span) {
  const auto context = static_cast<std::ptrdiff_t>(request.chunk_context_tokens);
  std::vector<TokenId> tokens(request.prompt_ids.begin(), request.prompt_ids.begin() + context);
  tokens.insert(tokens.end(), request.prompt_ids.begin() + span.begin,
                request.prompt_ids.begin() + span.begin + span.length);
  return tokens;
}

// Chunks are keyed under the tenant's salt alone: a chunk is shared wherever
// it stands, never across tenants.
cache::CacheSalt ChunkSalt(const Request& request) { return cache::CacheSalt(request.cache_salt); }

}  // namespace

bool Scheduler::blend_active(const Sequence& seq) { return seq.request.blend.has_value(); }

int64_t Scheduler::KeyBlockLimit(const Sequence& seq, int64_t blocks) const {
  if (!blend_active(seq)) return blocks;
  return std::min(blocks, seq.request.chunks.front().begin / options_.block_size);
}

int64_t Scheduler::CommitLimit(const Sequence& seq) const {
  if (!blend_active(seq)) return seq.computed;
  // Tokens before the first chunk are computed exactly, in every layer.
  return std::min(seq.computed, seq.request.chunks.front().begin);
}

void Scheduler::HashChunks(Sequence& seq) const {
  const cache::CacheSalt salt = ChunkSalt(seq.request);
  seq.chunk_keys.clear();
  for (const ChunkSpan& span : seq.request.chunks) {
    seq.chunk_keys.push_back(cache_.ChunkKeys(salt, ChunkPrompt(seq.request, span)));
  }
}

void Scheduler::StartFills(Sequence& seq) {
  ++seq.fill_rounds;
  for (size_t i = 0; i < seq.request.chunks.size(); ++i) {
    const ChunkSpan& span = seq.request.chunks[i];
    if (cache_.FindChunkByKeys(seq.chunk_keys[i])) {
      if (seq.fill_rounds == 1) seq.usage.cached_tokens_by_tier[0] += span.length;
      continue;
    }
    const cache::BlockKey key = seq.chunk_keys[i].back();
    ++seq.pending_fills;
    if (auto running = fills_.find(key); running != fills_.end()) {
      sequences_.at(running->second)->fill_waiters.push_back(seq.request.id);
      continue;
    }
    Request fill_request{.id = next_internal_id_--,
                         .kind = RequestKind::kPrefill,
                         .prompt_ids = ChunkPrompt(seq.request, span),
                         .cache_salt = seq.request.cache_salt,
                         .priority = seq.request.priority};
    auto fill = std::make_unique<Sequence>(std::move(fill_request), options_.eos_token_ids);
    fill->is_fill = true;
    fill->fill_key = key;
    fill->fill_waiters.push_back(seq.request.id);
    fill->arrival = next_arrival_++;
    fill->arrived = options_.now();
    fill->usage.prompt_tokens = fill->prompt_len();
    ExtendKeys(*fill);
    const RequestId id = fill->request.id;
    fills_.emplace(key, id);
    AddWaiting(std::move(fill));
    ++counters_.chunk_fills;
  }
}

void Scheduler::OnFillDone(Sequence& fill, bool computed) {
  if (computed) cache_.CommitChunkTail(fill.request.id, fill.tokens);
  fills_.erase(fill.fill_key);
  for (RequestId waiter : fill.fill_waiters) {
    auto it = sequences_.find(waiter);
    if (it == sequences_.end() || it->second->state == RequestState::kFinished) continue;
    Sequence& seq = *it->second;
    if (--seq.pending_fills > 0) continue;
    // A blend prefetch is done once its chunks are; a blend request is now
    // a candidate for admission (PrepareBlend checks the chunks again).
    if (seq.request.kind == RequestKind::kPrefill) EndBetweenSteps(seq, FinishReason::kPrefilled);
  }
  fill.fill_waiters.clear();
}

bool Scheduler::PrepareBlend(Sequence& seq) {
  const bool resident = std::all_of(seq.chunk_keys.begin(), seq.chunk_keys.end(),
                                    [&](const std::vector<cache::BlockKey>& keys) {
                                      return cache_.FindChunkByKeys(keys).has_value();
                                    });
  if (resident) return true;
  if (seq.fill_rounds < kMaxFillRounds) {
    StartFills(seq);
    return seq.pending_fills == 0;
  }
  // Evicted again before it could run: serve it exactly rather than loop.
  ++counters_.blend_fallbacks;
  seq.request.blend.reset();
  seq.request.chunks.clear();
  seq.chunk_keys.clear();
  ExtendKeys(seq);
  return true;
}

bool Scheduler::HoldChunks(Sequence& seq) {
  const cache::CacheSalt salt = ChunkSalt(seq.request);
  std::vector<std::vector<cache::BlockId>> per_chunk;
  std::vector<cache::BlockId> held;
  absl::flat_hash_set<cache::BlockId> seen;
  for (const std::vector<cache::BlockKey>& keys : seq.chunk_keys) {
    std::optional<std::vector<cache::BlockId>> blocks = cache_.FindChunkByKeys(keys);
    if (!blocks) return false;
    for (cache::BlockId id : *blocks) {
      if (seen.insert(id).second) held.push_back(id);
    }
    per_chunk.push_back(*std::move(blocks));
  }
  const cache::CachedPrefix prefix{
      .blocks = held, .num_tokens = static_cast<int64_t>(held.size()) * options_.block_size};
  const cache::SeqId holder = next_internal_id_--;
  // Needs no new block, so it always fits.
  CHECK(cache_.AddSequence(holder, salt, prefix, prefix.num_tokens, 0).has_value());
  seq.holder = holder;
  seq.chunk_blocks = std::move(per_chunk);
  return true;
}

void Scheduler::ReleaseChunks(Sequence& seq) {
  if (seq.holder == 0) return;
  cache_.Free(seq.holder);
  seq.holder = 0;
  seq.chunk_blocks.clear();
}

void Scheduler::AttachBlend(const Sequence& seq, engine::SequenceStep& step) const {
  const BlendOptions& options = *seq.request.blend;
  engine::BlendSpec spec{.recompute_ratio = options.recompute_ratio,
                         .check_layers = options.check_layers};
  for (size_t i = 0; i < seq.request.chunks.size(); ++i) {
    const ChunkSpan& span = seq.request.chunks[i];
    spec.chunks.push_back({.blocks = seq.chunk_blocks[i],
                           .length = span.length,
                           .source_position = seq.request.chunk_context_tokens,
                           .position = span.begin});
  }
  step.blend = std::move(spec);
}

void Scheduler::ApplyBlendResult(Sequence& seq, const engine::SequenceOutput& output) {
  seq.blended = true;
  ReleaseChunks(seq);
  seq.usage.blend_reused_tokens = output.blend_reused_tokens;
  seq.usage.blend_recomputed_tokens = output.blend_recomputed_tokens;
  ++counters_.blend_steps;
  counters_.blend_reused_tokens += output.blend_reused_tokens;
  counters_.blend_recomputed_tokens += output.blend_recomputed_tokens;
}

}  // namespace strata::scheduler
