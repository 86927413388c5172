#include "engine/cuda/plan_support.h"

#include "absl/strings/str_cat.h"

namespace strata::engine::cuda {

absl::Status CheckPlanSupported(const StepPlan& plan) {
  for (const SequenceStep& seq : plan.sequences) {
    if (seq.blend.has_value()) {
      return absl::UnimplementedError(absl::StrCat(
          "sequence ", seq.seq_id, ": CacheBlend steps run on the CPU backend only for now"));
    }
  }
  return absl::OkStatus();
}

}  // namespace strata::engine::cuda
