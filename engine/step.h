// The step contract between the scheduler and a backend (DESIGN.md, "The step
// contract"). One StepPlan is one iteration: block moves first, then one
// forward pass over every scheduled sequence's token span, then sampling.
// There is no prefill/decode distinction: a sequence computes the tokens from
// its computed count onwards, one or many at a time.
//
// Plain value types: the scheduler builds a plan, the backend reads it and
// returns a StepResult. Neither keeps references into the other's data.
#ifndef STRATA_ENGINE_STEP_H_
#define STRATA_ENGINE_STEP_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "engine/sampling/sampler.h"
#include "engine/sampling/sampling_params.h"

namespace strata::engine {

// Index of a KV block in the backend's arena, 0 <= id < KvArenaInfo::num_blocks.
using BlockId = int32_t;
using SequenceId = int64_t;

// CacheBlend: a chunk whose K/V was computed on its own (as a prompt of its
// own, positions 0..length-1) and is placed into a sequence at `position`.
struct BlendChunk {
  // Arena blocks holding the chunk's standalone K/V: block i holds its
  // prompt's positions [i * block_size, (i + 1) * block_size), the last one
  // possibly partial. Read only; never one of the sequence's own blocks.
  std::vector<BlockId> blocks;
  int64_t length = 0;
  // Where the chunk's first token stands in that standalone prompt: after
  // the template tokens (BOS) any prompt of its own starts with, so its K/V
  // was computed with the attention sink a real prompt has. The blocks cover
  // source_position + length positions; only the chunk's are placed.
  int64_t source_position = 0;
  // The chunk's first absolute position in the sequence, inside the step's
  // span: its tokens are token_ids[position - start_position ...].
  int64_t position = 0;
};

// How a blend step fuses cached chunks (CacheBlend). Before the forward
// pass, each chunk's K/V is copied into the sequence's own blocks with K
// re-rotated by the RoPE delta to its new position (a zero delta copies the
// bits). The forward pass then computes every token of the span through the
// layers up to and including the first check layer; at each check layer the
// still-selected chunk tokens get fresh K/V, and only the fraction whose
// K/V deviates most from the placed cache stays selected (plus every token
// outside the chunks and the span's last token); later layers compute only
// the selected rows, which attend with an exact causal mask by absolute
// position over the blended cache.
struct BlendSpec {
  std::vector<BlendChunk> chunks;  // ascending, non-overlapping positions
  // Fraction of the chunk tokens kept after the last check layer, in [0, 1].
  // 1 recomputes everything: exactly a full prefill of the span.
  float recompute_ratio = 0.15f;
  // Ascending layer indices in [0, num_layers). Several layers filter
  // gradually: the kept fraction goes linearly from min(1, 2 r) at the first
  // to r at the last. Empty: no check at all, chunk tokens are never
  // recomputed (naive concatenation with positions fixed).
  std::vector<int32_t> check_layers;
};

// One sequence's work in a step.
struct SequenceStep {
  SequenceId seq_id = 0;
  // The tokens computed now: positions start_position .. start_position +
  // token_ids.size() - 1. Never empty.
  std::vector<TokenId> token_ids;
  // Number of tokens of this sequence whose K/V are already in its blocks
  // (its computed count). Positions before it are read, never written.
  int64_t start_position = 0;
  // Block i holds positions [i * block_size, (i + 1) * block_size). Must cover
  // every position up to start_position + token_ids.size() - 1. Blocks shared
  // with other sequences (prefix sharing) are whole blocks before
  // start_position, so a step never writes a shared block: only full,
  // computed blocks are shared (cache/kv_cache_manager.h), and there is no
  // copy-on-write.
  std::vector<BlockId> block_table;
  // Sample a token after the last position (last prompt chunk, or decode).
  bool sample = false;
  SamplingParams sampling;
  // The history the sampler's penalties read. May be left empty when the
  // params set no penalty.
  std::vector<TokenId> prompt_ids;
  std::vector<TokenId> output_ids;
  // Return the logits of every position in token_ids (for `strata logits`,
  // scoring and tests). Costs an lm_head row per token. With `blend` set,
  // only the last position's logits are returned (one row).
  bool return_logits = false;
  // Set: a blend step (see BlendSpec). The span must cover the whole rest of
  // the prompt, and its K/V is approximate: never to be registered as exact.
  std::optional<BlendSpec> blend;
};

enum class BlockMoveKind {
  // Copy within the arena: src -> dst.
  kCopy,
  // Demotion ("swap out"): arena block src -> host_dst.
  kDeviceToHost,
  // Promotion ("swap in"): host_src -> arena block dst.
  kHostToDevice,
};

// One whole KV block moved as one contiguous copy (the arena keeps a block in
// one region). The host side is memory the scheduler owns and the backend can
// address: any host memory for the CPU backend; for CUDA, memory from
// Backend::AllocateHostBuffer (pinned), or the copy is staged through a
// pinned bounce buffer at a bandwidth cost. Host bytes must stay valid and
// untouched from Schedule until the scheduler's Update of the plan (the
// backend may copy asynchronously until then). No device address appears
// here: arena blocks are named by id.
struct BlockMove {
  BlockId src = 0;  // arena block read (kCopy, kDeviceToHost)
  BlockId dst = 0;  // arena block written (kCopy, kHostToDevice)
  BlockMoveKind kind = BlockMoveKind::kCopy;
  // kDeviceToHost: exactly KvArenaInfo::bytes_per_block bytes to fill.
  absl::Span<std::byte> host_dst;
  // kHostToDevice: exactly KvArenaInfo::bytes_per_block bytes to copy in.
  absl::Span<const std::byte> host_src;
};

struct StepPlan {
  std::vector<SequenceStep> sequences;
  // Performed in order, before the forward pass: a block demoted and then
  // reused in this plan is read out before anything writes it.
  std::vector<BlockMove> block_moves;
  // Sequences that ended (finished, aborted or failed) since the last plan,
  // so a backend can drop per-sequence state. The CPU backend keeps none.
  std::vector<SequenceId> finished_ids;
};

// One sequence's outputs, in the same order as StepPlan::sequences.
struct SequenceOutput {
  SequenceId seq_id = 0;
  std::optional<SampledToken> token;  // set exactly when the step sampled
  // Row-major fp32 [token_ids.size(), vocab] when return_logits, else empty.
  std::vector<float> logits;
  // Blend steps: chunk tokens whose placed K/V was kept after the last check
  // layer (reused), and chunk tokens recomputed through every layer.
  int64_t blend_reused_tokens = 0;
  int64_t blend_recomputed_tokens = 0;
};

struct StepResult {
  std::vector<SequenceOutput> outputs;
  // All of plan.block_moves completed before the forward pass read the arena.
  int64_t moves_completed = 0;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_STEP_H_
