#include "engine/step_validation.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/kv_cache_spec.h"
#include "engine/blend_validation.h"
#include "engine/sampling/sampling_params.h"

namespace strata::engine {
namespace {

absl::Status ValidateSpan(const SequenceStep& seq, const StepLimits& limits,
                          const std::string& who) {
  if (seq.token_ids.empty()) return absl::InvalidArgumentError(who + "no tokens to compute");
  if (seq.start_position < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "negative start position ", seq.start_position));
  }
  for (size_t i = 0; i < seq.token_ids.size(); ++i) {
    const TokenId id = seq.token_ids[i];
    if (id < 0 || id >= limits.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(who, "token id ", id, " at index ", i,
                                                     " is outside the vocabulary of ",
                                                     limits.vocab_size));
    }
  }
  const int64_t end = seq.start_position + static_cast<int64_t>(seq.token_ids.size());
  if (limits.max_position_embeddings > 0 && end > limits.max_position_embeddings) {
    return absl::InvalidArgumentError(absl::StrCat(who, "position ", end - 1,
                                                   " is beyond the model's maximum context of ",
                                                   limits.max_position_embeddings));
  }
  return absl::OkStatus();
}

absl::Status ValidateBlockTable(const SequenceStep& seq, const StepLimits& limits,
                                const std::string& who) {
  const int64_t end = seq.start_position + static_cast<int64_t>(seq.token_ids.size());
  const int64_t needed = BlocksFor(end, limits.block_size);
  if (static_cast<int64_t>(seq.block_table.size()) < needed) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, "position ", end - 1, " needs ", needed, " blocks of ", limits.block_size,
                     " tokens but the block table has ", seq.block_table.size()));
  }
  for (int64_t b = 0; b < needed; ++b) {
    const BlockId id = seq.block_table[static_cast<size_t>(b)];
    if (id < 0 || id >= limits.num_blocks) {
      return absl::InvalidArgumentError(absl::StrCat(who, "block id ", id, " at table index ", b,
                                                     " is outside the arena of ", limits.num_blocks,
                                                     " blocks"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateStepPlan(const StepPlan& plan, const StepLimits& limits) {
  absl::flat_hash_set<SequenceId> seen;
  for (const SequenceStep& seq : plan.sequences) {
    const std::string who = absl::StrCat("sequence ", seq.seq_id, ": ");
    if (!seen.insert(seq.seq_id).second) {
      return absl::InvalidArgumentError(who + "appears more than once in the plan");
    }
    if (absl::Status status = ValidateSpan(seq, limits, who); !status.ok()) return status;
    if (absl::Status status = ValidateBlockTable(seq, limits, who); !status.ok()) return status;
    if (seq.sample) {
      if (absl::Status status = ValidateSamplingParams(seq.sampling, limits.vocab_size);
          !status.ok()) {
        return status;
      }
    }
    if (absl::Status status =
            ValidateBlend(seq, limits.num_layers, limits.block_size, limits.num_blocks);
        !status.ok()) {
      return status;
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::engine
