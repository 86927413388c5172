// The CUDA implementation of Backend (engine/backend.h), held to the CPU
// backend as its reference: the same decoder arithmetic (fp32 residual,
// bf16 GEMMs through cuBLASLt), the same KV block layout (so tier blocks
// are byte-compatible), the same sampling rules on the GPU.
//
// Streams: a compute stream runs the forward pass, sampling and metadata
// uploads; a transfer stream runs plan.block_moves (host <-> device block
// copies and in-arena copies), and the compute stream waits on its event
// only right before the first write to the arena, so the moves overlap the
// embedding, RoPE table, first norm and QKV GEMM of the step.
//
// CUDA graphs: a step in which every sequence computes one token (decode)
// with at most kMaxGraphBatch sequences runs as a graph captured for its
// batch bucket (1, 2, 4, ..., 128) and block-table width; a bucket's graph
// is captured the second time it is seen (the first run is eager and warms
// every kernel and cuBLASLt plan). A failed capture turns graphs off for
// the backend and the step runs eagerly.
//
// CacheBlend: a plan with a blend sequence runs eagerly, never as a graph:
// the chunks' K/V placed with K re-rotated on the GPU, then the layers one
// by one; at a check layer the deviations of the candidate rows come back
// to the host, which selects with the CPU's rules (blend_layout.h), and the
// residual and QKV rows are compacted on the GPU (kernels/blend.h). The
// kept rows attend with per-row positions. One stream sync per check layer.
//
// Registered as "cuda"; needs a device (FAILED_PRECONDITION "CUDA backend
// unavailable: <runtime error>" otherwise). Not thread-safe except
// AllocateHostBuffer: one engine thread drives it.
#ifndef STRATA_ENGINE_CUDA_CUDA_BACKEND_H_
#define STRATA_ENGINE_CUDA_CUDA_BACKEND_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/backend.h"
#include "engine/cuda/blend_layout.h"
#include "engine/cuda/cuda_decoder.h"
#include "engine/cuda/device_kv_arena.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/gpu_sampler.h"

namespace strata::engine::cuda {

// Knobs of the CUDA backend that BackendOptions does not carry.
struct CudaBackendOptions {
  bool use_graphs = true;
  // Largest decode batch run as a graph.
  int max_graph_batch = 128;
};

class CudaBackend : public Backend {
 public:
  // FAILED_PRECONDITION without a usable device; INVALID_ARGUMENT for
  // options or shapes outside what the kernels support (kernels/dispatch.h:
  // a BF16 KV cache and head_dim in the table; precision kF32 is not
  // offered); RESOURCE_EXHAUSTED when weights or arena do not fit.
  static absl::StatusOr<std::unique_ptr<CudaBackend>> Create(
      const LoadedModel& model, const BackendOptions& options,
      const CudaBackendOptions& cuda_options = {});
  ~CudaBackend() override;

  absl::StatusOr<StepResult> Execute(const StepPlan& plan) override;
  absl::Status CopyBlocks(absl::Span<const BlockMove> moves) override;
  absl::Status Synchronize() override;
  absl::StatusOr<std::unique_ptr<HostBuffer>> AllocateHostBuffer(size_t bytes) override;
  KvArenaInfo kv_arena_info() const override { return arena_->info(); }
  const ModelConfig& model_config() const override { return decoder_->config(); }
  std::string name() const override { return "cuda"; }

  // For tests and benchmarks.
  DeviceKvArena& arena() { return *arena_; }
  int graphs_captured() const { return graphs_captured_; }
  bool graphs_enabled() const { return options_.use_graphs; }

 private:
  struct Graph {
    cudaGraphExec_t exec = nullptr;
    DeviceBuffer meta;  // the step arrays the graph's kernels read
    int runs = 0;
  };

  CudaBackend() = default;
  absl::Status Validate(const StepPlan& plan) const;
  // Uploads `host` into `device` through the pinned staging buffer.
  absl::Status Upload(const HostStep& host, const PackedLayout& layout, DeviceBuffer& device);
  absl::StatusOr<DeviceStep> RunEager(const HostStep& host, cudaEvent_t kv_ready);
  absl::StatusOr<DeviceStep> RunGraph(const StepPlan& plan, HostStep& host, cudaEvent_t kv_ready,
                                      bool* ran);
  absl::Status CaptureGraph(Graph& graph, const DeviceStep& step);
  StepShape Shape() const;
  // CacheBlend (a plan with a blend sequence), eagerly: chunks placed, the
  // layers run with a host selection at each check layer (blend_layout.h),
  // rows compacted and the step's arrays rebuilt after each. `host` ends as
  // the final rows' layout, for Finish.
  absl::StatusOr<DeviceStep> RunBlend(const StepPlan& plan, cudaEvent_t kv_ready, HostStep& host,
                                      std::vector<BlendOutcomeCounts>& outcomes);
  absl::Status PlaceChunks(const StepPlan& plan, cudaStream_t stream);
  // The deviations of `candidates` (rows of `host`) at `layer`, on the host
  // (synchronises the stream).
  absl::StatusOr<std::vector<double>> MeasureDeviation(const HostStep& host,
                                                       const std::vector<int32_t>& candidates,
                                                       int layer, cudaStream_t stream);
  void DropGraphs();
  // Heads, sampling and logits for the step's logit rows.
  absl::Status Finish(const StepPlan& plan, const HostStep& host, const DeviceStep& step,
                      bool heads_done, StepResult& result);
  int Partitions(int queries, int max_context) const;

  CudaBackendOptions options_;
  int num_sms_ = 1;
  Stream compute_, transfer_;
  Event moves_done_;
  std::unique_ptr<CudaDecoder> decoder_;
  std::unique_ptr<DeviceKvArena> arena_;
  std::unique_ptr<GpuSampler> sampler_;
  std::unique_ptr<PinnedBuffer> staging_;                // step metadata on its way up
  std::unique_ptr<PinnedBuffer> logits_host_;            // one lm_head chunk on its way down
  DeviceBuffer step_meta_;                               // eager steps' metadata
  DeviceBuffer blend_place_, blend_check_, blend_kept_;  // blend steps' arrays
  std::map<std::pair<int, int>, Graph> graphs_;          // (batch bucket, table width)
  int graphs_captured_ = 0;
};

// True once "cuda" is in the registry (engine/cuda/register_cuda_backend.cc
// registers it at static initialisation); calling it links that object into
// binaries that do not link strata_engine whole.
bool CudaBackendRegistered();

// The factory registered as "cuda".
absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const LoadedModel& model,
                                                           const BackendOptions& options);

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_CUDA_BACKEND_H_
