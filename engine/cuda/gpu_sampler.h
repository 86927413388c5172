// The host side of GPU sampling (kernels/sampling.h): turns the sampled
// sequences of a step into SampleRows and their token histories, uploads
// them with one copy, launches the kernel over a chunk of logit rows, and
// converts the results back to SampledToken.
//
// The draw's uniform is the CPU sampler's: PhiloxUniform(seed, number of
// outputs so far) for a seeded request, so the same seed gives the same
// uniform on either backend; unseeded requests draw from a per-process
// Philox stream with a random key. Not thread-safe: the engine thread.
#ifndef STRATA_ENGINE_CUDA_GPU_SAMPLER_H_
#define STRATA_ENGINE_CUDA_GPU_SAMPLER_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "engine/cuda/device_memory.h"
#include "engine/sampling/sampler.h"
#include "engine/step.h"
#include "kernels/sampling.h"

namespace strata::engine::cuda {

struct SampleRequest {
  const SequenceStep* sequence = nullptr;  // borrowed for the step
  int logit_index = 0;                     // index into the step's logit rows
};

class GpuSampler {
 public:
  explicit GpuSampler(int vocab) : vocab_(vocab) {}

  // Builds and uploads (on `stream`) the rows of `requests`, in order.
  absl::Status Prepare(const std::vector<SampleRequest>& requests, cudaStream_t stream);
  // Samples requests [first, first + count), whose logit rows lie in
  // logits rows [0, chunk) as logit_index - chunk_first. Results stay on
  // the device until Fetch.
  absl::Status Launch(const float* logits, int first, int count, int chunk_first,
                      cudaStream_t stream);
  // Enqueues the copy of every result to pinned memory; after the stream
  // has run it, Result(i) is valid.
  absl::Status Fetch(cudaStream_t stream);
  SampledToken Result(int i) const;

 private:
  int vocab_;
  std::vector<kernels::SampleRow> rows_;
  std::vector<int32_t> history_;
  std::vector<const SequenceStep*> sequences_;
  std::unique_ptr<PinnedBuffer> staging_;  // rows, then history
  std::unique_ptr<PinnedBuffer> results_host_;
  DeviceBuffer rows_device_;  // rows, then history
  DeviceBuffer results_;
  DeviceBuffer work_;    // [count, vocab] fp32 (penalties only)
  DeviceBuffer counts_;  // [count, vocab] int32
  size_t history_offset_bytes_ = 0;
};

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_GPU_SAMPLER_H_
