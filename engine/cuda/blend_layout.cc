#include "engine/cuda/blend_layout.h"

#include "common/check.h"
#include "engine/cpu/kv_blend.h"

namespace strata::engine::cuda {

BlendPlacement BuildBlendPlacement(const StepPlan& plan, int64_t block_size) {
  BlendPlacement placement;
  for (const SequenceStep& seq : plan.sequences) {
    if (!seq.blend.has_value()) continue;
    for (const BlendChunk& chunk : seq.blend->chunks) {
      for (int64_t t = 0; t < chunk.length; ++t) {
        const int64_t from = chunk.source_position + t, to = chunk.position + t;
        placement.src_slots.push_back(static_cast<int32_t>(
            chunk.blocks[static_cast<size_t>(from / block_size)] * block_size + from % block_size));
        placement.dst_slots.push_back(static_cast<int32_t>(
            seq.block_table[static_cast<size_t>(to / block_size)] * block_size + to % block_size));
        placement.from_positions.push_back(static_cast<int32_t>(from));
        placement.to_positions.push_back(static_cast<int32_t>(to));
      }
    }
  }
  return placement;
}

BlendRows::BlendRows(const StepPlan& plan) : runs_(plan.sequences.size()) {
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    const int64_t end = seq.start_position + static_cast<int64_t>(seq.token_ids.size());
    Run& run = runs_[s];
    if (seq.blend.has_value()) {
      run.spec = &*seq.blend;
      for (const BlendChunk& chunk : run.spec->chunks) run.chunk_total += chunk.length;
    }
    size_t next_chunk = 0;
    for (int64_t pos = seq.start_position; pos < end; ++pos) {
      bool chunk = false;
      if (run.spec != nullptr) {
        const std::vector<BlendChunk>& chunks = run.spec->chunks;
        while (next_chunk < chunks.size() &&
               chunks[next_chunk].position + chunks[next_chunk].length <= pos) {
          ++next_chunk;
        }
        chunk = next_chunk < chunks.size() && chunks[next_chunk].position <= pos;
      }
      const bool candidate = chunk && pos != end - 1;
      // Without check layers a chunk token is never recomputed.
      if (candidate && run.spec->check_layers.empty()) continue;
      rows_.push_back({static_cast<int32_t>(s), static_cast<int32_t>(pos)});
      candidate_.push_back(candidate ? 1 : 0);
      chunk_.push_back(chunk ? 1 : 0);
    }
  }
}

std::vector<int32_t> BlendRows::Candidates(int layer) const {
  std::vector<int32_t> out;
  for (size_t r = 0; r < rows_.size(); ++r) {
    if (candidate_[r] == 0) continue;
    const Run& run = runs_[static_cast<size_t>(rows_[r].sequence)];
    if (run.next_check < run.spec->check_layers.size() &&
        run.spec->check_layers[run.next_check] == layer) {
      out.push_back(static_cast<int32_t>(r));
    }
  }
  return out;
}

std::vector<int32_t> BlendRows::Select(int layer, const std::vector<double>& deviation) {
  const std::vector<int32_t> candidates = Candidates(layer);
  CHECK_EQ(candidates.size(), deviation.size());
  std::vector<char> keep(rows_.size(), 1);
  // Candidates are grouped by sequence (rows are); select within each group.
  for (size_t begin = 0; begin < candidates.size();) {
    const int32_t s = rows_[static_cast<size_t>(candidates[begin])].sequence;
    size_t end = begin + 1;
    while (end < candidates.size() && rows_[static_cast<size_t>(candidates[end])].sequence == s) {
      ++end;
    }
    const Run& run = runs_[static_cast<size_t>(s)];
    const auto count = static_cast<int64_t>(run.spec->check_layers.size());
    const float ratio = cpu::CheckLayerRatio(run.spec->recompute_ratio,
                                             static_cast<int64_t>(run.next_check), count);
    const std::vector<double> group(deviation.begin() + static_cast<std::ptrdiff_t>(begin),
                                    deviation.begin() + static_cast<std::ptrdiff_t>(end));
    for (size_t i = begin; i < end; ++i) keep[static_cast<size_t>(candidates[i])] = 0;
    for (int64_t i : cpu::SelectMostDeviating(group, cpu::KeptCount(ratio, run.chunk_total))) {
      keep[static_cast<size_t>(candidates[begin + static_cast<size_t>(i)])] = 1;
    }
    begin = end;
  }
  // Every sequence checking here moves on, also one with no candidates left.
  for (Run& run : runs_) {
    if (run.spec != nullptr && run.next_check < run.spec->check_layers.size() &&
        run.spec->check_layers[run.next_check] == layer) {
      ++run.next_check;
    }
  }
  std::vector<int32_t> kept;
  size_t w = 0;
  for (size_t r = 0; r < rows_.size(); ++r) {
    if (keep[r] == 0) continue;
    kept.push_back(static_cast<int32_t>(r));
    rows_[w] = rows_[r];
    candidate_[w] = candidate_[r];
    chunk_[w] = chunk_[r];
    ++w;
  }
  rows_.resize(w);
  candidate_.resize(w);
  chunk_.resize(w);
  return kept;
}

std::vector<BlendOutcomeCounts> BlendRows::Outcomes() const {
  std::vector<BlendOutcomeCounts> out(runs_.size());
  for (size_t r = 0; r < rows_.size(); ++r) {
    if (chunk_[r] != 0) ++out[static_cast<size_t>(rows_[r].sequence)].recomputed_tokens;
  }
  for (size_t s = 0; s < runs_.size(); ++s) {
    if (runs_[s].spec == nullptr) continue;
    out[s].reused_tokens = runs_[s].chunk_total - out[s].recomputed_tokens;
  }
  return out;
}

}  // namespace strata::engine::cuda
