// What the CUDA backend executes of the step contract (engine/step.h)
// beyond the shapes Validate checks: a plan asking for a feature it does
// not implement yet is refused with UNIMPLEMENTED before anything runs, so
// the scheduler fails that request with a precise reason and the daemon
// keeps serving. Pure host code (no device needed); thread-safe.
//
// Not implemented yet: CacheBlend steps (SequenceStep::blend). Their kernels
// exist (kernels/blend.h: K re-rotating placement, K/V deviation, row
// gather; per-query positions in kernels/attention_prefill.h) and are tested
// against the CPU reference; the decoder does not drive them yet.
#ifndef STRATA_ENGINE_CUDA_PLAN_SUPPORT_H_
#define STRATA_ENGINE_CUDA_PLAN_SUPPORT_H_

#include "absl/status/status.h"
#include "engine/step.h"

namespace strata::engine::cuda {

// OK, or UNIMPLEMENTED naming the first sequence that asks for a feature the
// CUDA backend lacks.
absl::Status CheckPlanSupported(const StepPlan& plan);

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_PLAN_SUPPORT_H_
