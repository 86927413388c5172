#include "engine/cpu/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/cpu/kv_blend.h"
#include "engine/cpu/linear.h"
#include "engine/sampling/sampler.h"
#include "engine/step_validation.h"

namespace strata::engine::cpu {
namespace {

class CpuHostBuffer : public HostBuffer {
 public:
  CpuHostBuffer(std::byte* data, size_t bytes) : data_(data), size_(bytes) {}
  ~CpuHostBuffer() override { std::free(data_); }
  CpuHostBuffer(const CpuHostBuffer&) = delete;
  CpuHostBuffer& operator=(const CpuHostBuffer&) = delete;
  std::byte* data() override { return data_; }
  size_t size() const override { return size_; }

 private:
  std::byte* data_;  // owned, std::free
  size_t size_;
};

// Host RAM the kernel says is available without swapping (MemAvailable):
// the CPU backend's "free device memory".
absl::StatusOr<int64_t> AvailableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return absl::UnavailableError("MemAvailable not found in /proc/meminfo");
}

// The arena's block count from the options, measured after the weights are
// resident so that a memory fraction counts what is really left.
absl::StatusOr<int64_t> ArenaBlocks(const BackendOptions& options, const KvCacheSpec& spec,
                                    int64_t max_position_embeddings) {
  if (options.num_kv_blocks > 0) return options.num_kv_blocks;
  int64_t bytes = options.kv_bytes;
  if (bytes == 0 && options.kv_memory_fraction > 0) {
    absl::StatusOr<int64_t> available = AvailableMemoryBytes();
    if (!available.ok()) return available.status();
    bytes = static_cast<int64_t>(options.kv_memory_fraction * static_cast<double>(*available));
  }
  if (bytes == 0) {
    return (std::max<int64_t>(max_position_embeddings, 1) + spec.block_size - 1) / spec.block_size;
  }
  const int64_t blocks = bytes / spec.BytesPerBlock();
  if (blocks <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV arena of ", bytes, " bytes holds no block of ", spec.BytesPerBlock(), " bytes"));
  }
  return blocks;
}

}  // namespace

absl::StatusOr<std::unique_ptr<CpuBackend>> CpuBackend::Create(const LoadedModel& model,
                                                               const BackendOptions& options) {
  const ModelConfig& c = model.config;
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_size must be positive, got ", options.block_size));
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(absl::StrCat("threads must be >= 0, got ", options.threads));
  }
  KvCacheSpec spec{c.num_layers, c.num_kv_heads, c.head_dim, options.block_size, options.kv_dtype};
  if (!(options.kv_memory_fraction >= 0 && options.kv_memory_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_memory_fraction must be in [0, 1), got ", options.kv_memory_fraction));
  }
  auto backend = std::unique_ptr<CpuBackend>(new CpuBackend());
  int threads = options.threads;
  if (threads == 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  backend->pool_ = std::make_unique<ThreadPool>(threads);
  auto decoder = Decoder::Create(model, options.precision, backend->pool_.get());
  if (!decoder.ok()) return decoder.status();
  backend->decoder_ = *std::move(decoder);
  absl::StatusOr<int64_t> blocks = ArenaBlocks(options, spec, c.max_position_embeddings);
  if (!blocks.ok()) return blocks.status();
  auto arena = KvArena::Create(spec, *blocks);
  if (!arena.ok()) return arena.status();
  backend->arena_ = *std::move(arena);
  return backend;
}

absl::Status CpuBackend::Validate(const StepPlan& plan) const {
  if (absl::Status moves = arena_->ValidateMoves(plan.block_moves); !moves.ok()) return moves;
  const ModelConfig& c = decoder_->config();
  return ValidateStepPlan(plan, StepLimits{.vocab_size = c.vocab_size,
                                           .max_position_embeddings = c.max_position_embeddings,
                                           .num_layers = c.num_layers,
                                           .block_size = arena_->spec().block_size,
                                           .num_blocks = arena_->num_blocks()});
}

absl::StatusOr<StepResult> CpuBackend::Execute(const StepPlan& plan) {
  absl::Status status = Validate(plan);
  if (!status.ok()) return status;
  status = arena_->CopyBlocks(plan.block_moves, pool_.get());
  if (!status.ok()) return status;
  for (const SequenceStep& seq : plan.sequences) {
    if (!seq.blend) continue;
    for (const BlendChunk& chunk : seq.blend->chunks) {
      PlaceChunk(chunk, seq.block_table, decoder_->inv_freq(), *arena_, *pool_);
    }
  }

  DecoderBatch batch;
  int64_t row = 0;
  // Where each sequence's logits start in the decoder's output, or -1.
  std::vector<int64_t> first_logit(plan.sequences.size(), -1);
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    const int64_t n = static_cast<int64_t>(seq.token_ids.size());
    batch.sequences.push_back(
        {seq.token_ids, seq.start_position, seq.block_table, seq.blend ? &*seq.blend : nullptr});
    if (seq.return_logits || seq.sample) {
      first_logit[s] = static_cast<int64_t>(batch.logit_rows.size());
      // A blend step computes only its selected rows to the end: the last.
      const int64_t from = seq.return_logits && !seq.blend ? 0 : n - 1;
      for (int64_t i = from; i < n; ++i) batch.logit_rows.push_back(row + i);
    }
    row += n;
  }
  std::vector<float> logits;
  std::vector<BlendOutcome> blend_outcomes;
  if (row > 0) logits = decoder_->Forward(batch, *arena_, &blend_outcomes);

  const int64_t vocab = decoder_->config().vocab_size;
  StepResult result;
  result.moves_completed = static_cast<int64_t>(plan.block_moves.size());
  result.outputs.reserve(plan.sequences.size());
  std::vector<std::pair<size_t, const float*>> to_sample;  // (sequence, its last logits)
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    const int64_t n = static_cast<int64_t>(seq.token_ids.size());
    SequenceOutput out;
    out.seq_id = seq.seq_id;
    if (s < blend_outcomes.size()) {
      out.blend_reused_tokens = blend_outcomes[s].reused_tokens;
      out.blend_recomputed_tokens = blend_outcomes[s].recomputed_tokens;
    }
    if (first_logit[s] >= 0) {
      const float* begin = logits.data() + first_logit[s] * vocab;
      const int64_t count = seq.return_logits && !seq.blend ? n : 1;
      if (seq.return_logits) out.logits.assign(begin, begin + count * vocab);
      if (seq.sample) to_sample.emplace_back(s, begin + (count - 1) * vocab);
    }
    result.outputs.push_back(std::move(out));
  }
  // Each sequence's token depends only on its own logits and parameters (a
  // seeded draw on its seed and position), so the pool may take them in any
  // order: a batch's whole-vocabulary passes no longer run one after another
  // on this thread.
  pool_->ParallelFor(static_cast<int64_t>(to_sample.size()), 1, [&](int64_t first, int64_t end) {
    for (int64_t i = first; i < end; ++i) {
      const auto [s, last] = to_sample[static_cast<size_t>(i)];
      const SequenceStep& seq = plan.sequences[s];
      TokenHistory history{seq.prompt_ids, seq.output_ids};
      result.outputs[s].token = SampleToken(
          absl::Span<const float>(last, static_cast<size_t>(vocab)), seq.sampling, history);
    }
  });
  return result;
}

absl::Status CpuBackend::CopyBlocks(absl::Span<const BlockMove> moves) {
  return arena_->CopyBlocks(moves, pool_.get());
}

absl::StatusOr<std::unique_ptr<HostBuffer>> CpuBackend::AllocateHostBuffer(size_t bytes) {
  if (bytes == 0) return absl::InvalidArgumentError("host buffer of 0 bytes");
  std::byte* data = AllocateHostBlockMemory(bytes);
  if (data == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate ", bytes, " host bytes"));
  }
  return std::unique_ptr<HostBuffer>(new CpuHostBuffer(data, bytes));
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const LoadedModel& model,
                                                          const BackendOptions& options) {
  auto backend = CpuBackend::Create(model, options);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<Backend>(std::move(*backend));
}

}  // namespace strata::engine::cpu
