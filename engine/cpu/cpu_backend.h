// The CPU implementation of Backend: bf16 weights and batch-invariant GEMMs (or fp32
// for exact small models), a paged KV arena in host memory, and sampling
// through engine/sampling. Registered as "cpu" (see engine/backend.h).
#ifndef STRATA_ENGINE_CPU_CPU_BACKEND_H_
#define STRATA_ENGINE_CPU_CPU_BACKEND_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/cpu/decoder.h"
#include "engine/cpu/kv_arena.h"
#include "engine/cpu/thread_pool.h"

namespace strata::engine::cpu {

// Not thread-safe except where Backend says so: one engine thread drives it.
class CpuBackend : public Backend {
 public:
  // Converts `model`'s weights (which may be destroyed afterwards) and
  // allocates the arena. INVALID_ARGUMENT for bad options or shapes,
  // RESOURCE_EXHAUSTED if the arena does not fit in memory.
  static absl::StatusOr<std::unique_ptr<CpuBackend>> Create(const LoadedModel& model,
                                                            const BackendOptions& options);

  absl::StatusOr<StepResult> Execute(const StepPlan& plan) override;
  absl::Status CopyBlocks(absl::Span<const BlockMove> moves) override;
  absl::Status Synchronize() override { return absl::OkStatus(); }
  absl::StatusOr<std::unique_ptr<HostBuffer>> AllocateHostBuffer(size_t bytes) override;
  KvArenaInfo kv_arena_info() const override { return arena_->info(); }
  const ModelConfig& model_config() const override { return decoder_->config(); }
  std::string name() const override { return "cpu"; }

  // The arena, for tests: tier moves reach it through StepPlan::block_moves.
  KvArena& arena() { return *arena_; }
  int threads() const { return pool_->size(); }

 private:
  CpuBackend() = default;
  absl::Status Validate(const StepPlan& plan) const;

  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Decoder> decoder_;  // borrows pool_
  std::unique_ptr<KvArena> arena_;
};

// The factory registered as "cpu".
absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const LoadedModel& model,
                                                          const BackendOptions& options);

}  // namespace strata::engine::cpu

#endif  // STRATA_ENGINE_CPU_CPU_BACKEND_H_
