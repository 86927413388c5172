// The CacheBlend part of Decoder::Forward (engine/cpu/decoder.h): which rows
// of a blend sequence stay through the layers. Kept apart from decoder.cc so
// the plain forward pass reads on its own.
#include <cstring>

#include "common/check.h"
#include "engine/cpu/decoder.h"
#include "engine/cpu/kv_blend.h"

namespace strata::engine::cpu {

void Decoder::StartBlend(const DecoderBatch& batch) {
  blend_runs_.clear();
  bool naive = false;
  int64_t row_begin = 0;
  for (size_t s = 0; s < batch.sequences.size(); ++s) {
    const DecoderSequence& seq = batch.sequences[s];
    const auto n = static_cast<int64_t>(seq.tokens.size());
    if (seq.blend != nullptr) {
      BlendRun run{.sequence = static_cast<int64_t>(s),
                   .spec = seq.blend,
                   .chunk_total = 0,
                   .last_origin = row_begin + n - 1};
      for (const BlendChunk& chunk : seq.blend->chunks) {
        const int64_t first = row_begin + chunk.position - seq.start_position;
        for (int64_t i = 0; i < chunk.length; ++i)
          rows_[static_cast<size_t>(first + i)].chunk = true;
        run.chunk_total += chunk.length;
      }
      naive = naive || seq.blend->check_layers.empty();
      blend_runs_.push_back(run);
    }
    row_begin += n;
  }
  if (!naive) return;
  // Without a check layer the placed K/V is used as it is in every layer.
  blend_keep_.assign(rows_.size(), 1);
  for (const BlendRun& run : blend_runs_) {
    if (!run.spec->check_layers.empty()) continue;
    for (size_t r = 0; r < rows_.size(); ++r) {
      const Row& row = rows_[r];
      if (row.sequence == run.sequence && row.chunk && row.origin != run.last_origin) {
        blend_keep_[r] = 0;
      }
    }
  }
  CompactRows(blend_keep_);
}

bool Decoder::BlendCheck(int64_t layer, const DecoderBatch& batch, const KvArena& arena) {
  const int64_t d = config_.head_dim;
  const int64_t heads = config_.num_heads, kv_heads = config_.num_kv_heads;
  const int64_t block_size = arena.spec().block_size;
  bool dropped = false;
  blend_keep_.assign(rows_.size(), 1);
  for (BlendRun& run : blend_runs_) {
    const std::vector<int32_t>& checks = run.spec->check_layers;
    if (run.next_check >= checks.size() || checks[run.next_check] != layer) continue;
    std::vector<int64_t> candidates;
    for (size_t r = 0; r < rows_.size(); ++r) {
      const Row& row = rows_[r];
      if (row.sequence == run.sequence && row.chunk && row.origin != run.last_origin) {
        candidates.push_back(static_cast<int64_t>(r));
      }
    }
    const absl::Span<const BlockId> table =
        batch.sequences[static_cast<size_t>(run.sequence)].block_table;
    std::vector<double> deviation(candidates.size());
    pool_->ParallelFor(
        static_cast<int64_t>(candidates.size()), 16, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            const int64_t r = candidates[static_cast<size_t>(i)];
            const int64_t pos = rows_[static_cast<size_t>(r)].position;
            const float* row = qkv_.data() + r * qkv_stride_;
            deviation[static_cast<size_t>(i)] =
                KvDeviation(row + heads * d, row + (heads + kv_heads) * d, arena, layer,
                            table[static_cast<size_t>(pos / block_size)], pos % block_size);
          }
        });
    const float ratio =
        CheckLayerRatio(run.spec->recompute_ratio, static_cast<int64_t>(run.next_check),
                        static_cast<int64_t>(checks.size()));
    const std::vector<int64_t> kept =
        SelectMostDeviating(deviation, KeptCount(ratio, run.chunk_total));
    for (int64_t r : candidates) blend_keep_[static_cast<size_t>(r)] = 0;
    for (int64_t i : kept) blend_keep_[static_cast<size_t>(candidates[static_cast<size_t>(i)])] = 1;
    dropped = dropped || kept.size() < candidates.size();
    ++run.next_check;
  }
  return dropped;
}

void Decoder::CompactRows(const std::vector<char>& keep) {
  CHECK_EQ(keep.size(), rows_.size());
  const auto hidden = static_cast<size_t>(config_.hidden_size);
  const auto width =
      static_cast<size_t>((config_.num_heads + 2 * config_.num_kv_heads) * config_.head_dim);
  const auto stride = static_cast<size_t>(qkv_stride_);
  const auto half = static_cast<size_t>(config_.head_dim / 2);
  size_t out = 0;
  for (size_t r = 0; r < rows_.size(); ++r) {
    if (!keep[r]) continue;
    if (out != r) {  // out < r: whole rows never overlap
      rows_[out] = rows_[r];
      std::memcpy(x_.data() + out * hidden, x_.data() + r * hidden, hidden * 4);
      std::memcpy(qkv_.data() + out * stride, qkv_.data() + r * stride, width * 4);
      std::memcpy(rope_cos_.data() + out * half, rope_cos_.data() + r * half, half * 4);
      std::memcpy(rope_sin_.data() + out * half, rope_sin_.data() + r * half, half * 4);
    }
    ++out;
  }
  rows_.resize(out);
}

void Decoder::FinishBlend(std::vector<BlendOutcome>* outcomes, size_t num_sequences) const {
  if (outcomes == nullptr) return;
  outcomes->assign(num_sequences, BlendOutcome{});
  for (const BlendRun& run : blend_runs_) {
    int64_t recomputed = 0;
    for (const Row& row : rows_) recomputed += row.sequence == run.sequence && row.chunk ? 1 : 0;
    (*outcomes)[static_cast<size_t>(run.sequence)] = BlendOutcome{
        .reused_tokens = run.chunk_total - recomputed, .recomputed_tokens = recomputed};
  }
}

}  // namespace strata::engine::cpu
