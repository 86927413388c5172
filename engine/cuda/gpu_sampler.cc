#include "engine/cuda/gpu_sampler.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>

#include "engine/cuda/cuda_status.h"
#include "engine/sampling/philox.h"

namespace strata::engine::cuda {
namespace {

// Unseeded draws: a random key fixed at first use and an atomic counter.
double UnseededUniform() {
  static const uint64_t key = [] {
    std::random_device device;
    return static_cast<uint64_t>(device()) << 32 | device();
  }();
  static std::atomic<uint64_t> counter{0};
  return PhiloxUniform(key, counter.fetch_add(1, std::memory_order_relaxed));
}

absl::Status EnsurePinned(std::unique_ptr<PinnedBuffer>& buffer, size_t bytes) {
  if (buffer != nullptr && buffer->size() >= bytes) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<PinnedBuffer>> grown =
      PinnedBuffer::Allocate(std::max<size_t>(bytes, 4096));
  if (!grown.ok()) return grown.status();
  buffer = *std::move(grown);
  return absl::OkStatus();
}

}  // namespace

absl::Status GpuSampler::Prepare(const std::vector<SampleRequest>& requests, cudaStream_t stream) {
  rows_.clear();
  history_.clear();
  sequences_.clear();
  bool penalties = false;
  for (const SampleRequest& request : requests) {
    const SequenceStep& seq = *request.sequence;
    const SamplingParams& p = seq.sampling;
    kernels::SampleRow row;
    row.logits_row = request.logit_index;
    row.temperature = p.temperature;
    row.top_k = p.top_k;
    row.top_p = p.top_p;
    row.min_p = p.min_p;
    row.repetition_penalty = p.repetition_penalty;
    row.presence_penalty = p.presence_penalty;
    row.frequency_penalty = p.frequency_penalty;
    if (p.temperature > 0.0f) {
      row.uniform =
          p.seed.has_value() ? PhiloxUniform(*p.seed, seq.output_ids.size()) : UnseededUniform();
    }
    row.top_logprobs = std::min(p.top_logprobs, kernels::kMaxSampledTopLogprobs);
    row.return_logprob = p.return_logprob ? 1 : 0;
    const bool has_penalty =
        p.repetition_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
    if (has_penalty) {
      penalties = true;
      row.history_offset = static_cast<int32_t>(history_.size());
      row.prompt_count = static_cast<int32_t>(seq.prompt_ids.size());
      row.output_count = static_cast<int32_t>(seq.output_ids.size());
      history_.insert(history_.end(), seq.prompt_ids.begin(), seq.prompt_ids.end());
      history_.insert(history_.end(), seq.output_ids.begin(), seq.output_ids.end());
    }
    rows_.push_back(row);
    sequences_.push_back(&seq);
  }
  if (rows_.empty()) return absl::OkStatus();
  const size_t rows_bytes = rows_.size() * sizeof(kernels::SampleRow);
  history_offset_bytes_ = (rows_bytes + 255) / 256 * 256;
  const size_t bytes = history_offset_bytes_ + std::max<size_t>(history_.size(), 1) * 4;
  STRATA_RETURN_IF_ERROR(EnsurePinned(staging_, bytes));
  std::memcpy(staging_->data(), rows_.data(), rows_bytes);
  if (!history_.empty()) {
    std::memcpy(staging_->data() + history_offset_bytes_, history_.data(), history_.size() * 4);
  }
  absl::StatusOr<bool> grown = rows_device_.Reserve(bytes);
  if (!grown.ok()) return grown.status();
  grown = results_.Reserve(rows_.size() * sizeof(kernels::SampleResult));
  if (!grown.ok()) return grown.status();
  if (penalties) {
    const size_t scratch = rows_.size() * static_cast<size_t>(vocab_) * 4;
    grown = work_.Reserve(scratch);
    if (!grown.ok()) return grown.status();
    grown = counts_.Reserve(scratch);
    if (!grown.ok()) return grown.status();
  }
  STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(rows_device_.data(), staging_->data(), bytes,
                                              cudaMemcpyHostToDevice, stream));
  return absl::OkStatus();
}

absl::Status GpuSampler::Launch(const float* logits, int first, int count, int chunk_first,
                                cudaStream_t stream) {
  if (count == 0) return absl::OkStatus();
  // The rows' logits_row counts logit rows across the whole step; `logits`
  // holds the chunk starting at chunk_first.
  kernels::SampleParams params;
  params.logits = logits;
  params.first_logits_row = chunk_first;
  params.vocab = vocab_;
  params.rows = rows_device_.as<kernels::SampleRow>() + first;
  params.num_rows = count;
  params.history =
      reinterpret_cast<const int32_t*>(rows_device_.as<std::byte>() + history_offset_bytes_);
  if (work_.data() != nullptr) {  // only rows with penalties use the scratch
    params.work = work_.as<float>() + static_cast<int64_t>(first) * vocab_;
    params.counts = counts_.as<int32_t>() + static_cast<int64_t>(first) * vocab_;
  }
  params.results = results_.as<kernels::SampleResult>() + first;
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchSample(params, stream));
  return absl::OkStatus();
}

absl::Status GpuSampler::Fetch(cudaStream_t stream) {
  if (rows_.empty()) return absl::OkStatus();
  const size_t bytes = rows_.size() * sizeof(kernels::SampleResult);
  STRATA_RETURN_IF_ERROR(EnsurePinned(results_host_, bytes));
  STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(results_host_->data(), results_.data(), bytes,
                                              cudaMemcpyDeviceToHost, stream));
  return absl::OkStatus();
}

SampledToken GpuSampler::Result(int i) const {
  const auto& result = results_host_->as<kernels::SampleResult>()[i];
  const SamplingParams& params = sequences_[static_cast<size_t>(i)]->sampling;
  SampledToken token;
  token.id = result.token;
  if (params.return_logprob) token.logprob = result.logprob;
  const int n = std::min(rows_[static_cast<size_t>(i)].top_logprobs, vocab_);
  for (int j = 0; j < n; ++j)
    token.top_logprobs.push_back({result.top_ids[j], result.top_logprobs[j]});
  return token;
}

}  // namespace strata::engine::cuda
