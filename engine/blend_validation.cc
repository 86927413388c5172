#include "engine/blend_validation.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/kv_cache_spec.h"

namespace strata::engine {
namespace {

absl::Status ValidateChunk(const BlendChunk& chunk, const SequenceStep& seq,
                           const std::string& what, int64_t previous_end, int64_t block_size,
                           int64_t num_blocks) {
  const int64_t end = seq.start_position + static_cast<int64_t>(seq.token_ids.size());
  if (chunk.length <= 0 || chunk.position < previous_end || chunk.position + chunk.length > end) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, "positions [", chunk.position, ", ", chunk.position + chunk.length,
                     ") are empty, overlap the previous chunk or leave the span [",
                     seq.start_position, ", ", end, ")"));
  }
  const int64_t source_end = chunk.source_position + chunk.length;
  if (chunk.source_position < 0 ||
      static_cast<int64_t>(chunk.blocks.size()) != BlocksFor(source_end, block_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, chunk.blocks.size(), " blocks for ", source_end,
                     " standalone positions (source position ", chunk.source_position, ")"));
  }
  const int64_t first_written = seq.start_position / block_size;
  const int64_t last_written = (end - 1) / block_size;
  for (BlockId id : chunk.blocks) {
    if (id < 0 || id >= num_blocks) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, "block id ", id, " is outside the arena of ", num_blocks, " blocks"));
    }
    for (int64_t b = first_written; b <= last_written; ++b) {
      if (seq.block_table[static_cast<size_t>(b)] == id) {
        return absl::InvalidArgumentError(
            absl::StrCat(what, "block ", id, " is also written by the step"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateBlend(const SequenceStep& seq, int64_t num_layers, int64_t block_size,
                           int64_t num_blocks) {
  if (!seq.blend.has_value()) return absl::OkStatus();
  const BlendSpec& blend = *seq.blend;
  const std::string who = absl::StrCat("sequence ", seq.seq_id, ": ");
  if (!(blend.recompute_ratio >= 0.0f && blend.recompute_ratio <= 1.0f)) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "blend recompute ratio ", blend.recompute_ratio, " is outside [0, 1]"));
  }
  for (size_t i = 0; i < blend.check_layers.size(); ++i) {
    const int32_t layer = blend.check_layers[i];
    if (layer < 0 || layer >= num_layers || (i > 0 && layer <= blend.check_layers[i - 1])) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, "blend check layer ", layer, " is not ascending within [0, ", num_layers, ")"));
    }
  }
  int64_t previous_end = seq.start_position;
  for (size_t c = 0; c < blend.chunks.size(); ++c) {
    const BlendChunk& chunk = blend.chunks[c];
    absl::Status status = ValidateChunk(chunk, seq, absl::StrCat(who, "blend chunk ", c, ": "),
                                        previous_end, block_size, num_blocks);
    if (!status.ok()) return status;
    previous_end = chunk.position + chunk.length;
  }
  return absl::OkStatus();
}

}  // namespace strata::engine
