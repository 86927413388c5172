#include "engine/cuda/cuda_backend.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/cuda/blend_layout.h"
#include "engine/step_validation.h"
#include "engine/cuda/cuda_status.h"
#include "engine/cuda/device_probe.h"
#include "kernels/attention_decode.h"
#include "kernels/blend.h"
#include "kernels/dispatch.h"

namespace strata::engine::cuda {
namespace {

// Decode partitions per query at most: 32 x 256 keys covers 8k tokens with
// one chunk per partition; longer contexts give each partition more chunks.
constexpr int kMaxDecodePartitions = 32;

absl::StatusOr<int64_t> ArenaBlocks(const BackendOptions& options, const KvCacheSpec& spec,
                                    int64_t max_position_embeddings) {
  if (options.num_kv_blocks > 0) return options.num_kv_blocks;
  int64_t bytes = options.kv_bytes;
  if (bytes == 0 && options.kv_memory_fraction > 0) {
    size_t free = 0, total = 0;
    STRATA_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free, &total));
    bytes = static_cast<int64_t>(options.kv_memory_fraction * static_cast<double>(free));
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

absl::Status ValidateOptions(const ModelConfig& c, const BackendOptions& options) {
  if (options.block_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("block_size must be positive, got ", options.block_size));
  }
  if (!(options.kv_memory_fraction >= 0 && options.kv_memory_fraction < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_memory_fraction must be in [0, 1), got ", options.kv_memory_fraction));
  }
  if (options.precision == Precision::kF32) {
    return absl::InvalidArgumentError(
        "precision f32 is not offered by the cuda backend (its GEMMs are bf16 with fp32 "
        "accumulation); use split or bf16");
  }
  const kernels::DType kv =
      options.kv_dtype == DType::kBF16 ? kernels::DType::kBF16 : kernels::DType::kF32;
  if (!kernels::IsSupported(static_cast<int>(c.head_dim), kv)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the cuda kernels do not support head_dim ", c.head_dim, " with a ",
                     std::string(DTypeName(options.kv_dtype)),
                     " KV cache; supported: ", kernels::SupportedCombinations()));
  }
  return absl::OkStatus();
}

int NextPowerOfTwo(int64_t v) {
  return static_cast<int>(std::bit_ceil(static_cast<uint64_t>(std::max<int64_t>(v, 1))));
}

}  // namespace

absl::StatusOr<std::unique_ptr<CudaBackend>> CudaBackend::Create(
    const LoadedModel& model, const BackendOptions& options,
    const CudaBackendOptions& cuda_options) {
  const CudaProbe& probe = ProbeCudaDevices();
  if (!probe.available()) {
    return absl::FailedPreconditionError(absl::StrCat("CUDA backend unavailable: ", probe.error));
  }
  const ModelConfig& c = model.config;
  STRATA_RETURN_IF_ERROR(ValidateOptions(c, options));
  STRATA_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  auto backend = std::unique_ptr<CudaBackend>(new CudaBackend());
  backend->options_ = cuda_options;
  backend->options_.max_graph_batch = std::clamp(cuda_options.max_graph_batch, 1, 1024);
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaDeviceGetAttribute(&backend->num_sms_, cudaDevAttrMultiProcessorCount, 0));
  absl::StatusOr<Stream> stream = Stream::Create();
  if (!stream.ok()) return stream.status();
  backend->compute_ = *std::move(stream);
  stream = Stream::Create();
  if (!stream.ok()) return stream.status();
  backend->transfer_ = *std::move(stream);
  absl::StatusOr<Event> event = Event::Create();
  if (!event.ok()) return event.status();
  backend->moves_done_ = *std::move(event);

  absl::StatusOr<std::unique_ptr<CudaDecoder>> decoder = CudaDecoder::Create(model);
  if (!decoder.ok()) return decoder.status();
  backend->decoder_ = *std::move(decoder);
  const KvCacheSpec spec{c.num_layers, c.num_kv_heads, c.head_dim, options.block_size,
                         options.kv_dtype};
  absl::StatusOr<int64_t> blocks = ArenaBlocks(options, spec, c.max_position_embeddings);
  if (!blocks.ok()) return blocks.status();
  absl::StatusOr<std::unique_ptr<DeviceKvArena>> arena = DeviceKvArena::Create(spec, *blocks);
  if (!arena.ok()) return arena.status();
  backend->arena_ = *std::move(arena);
  backend->sampler_ = std::make_unique<GpuSampler>(static_cast<int>(c.vocab_size));
  return backend;
}

CudaBackend::~CudaBackend() {
  if (compute_.get() != nullptr) (void)cudaStreamSynchronize(compute_.get());
  if (transfer_.get() != nullptr) (void)cudaStreamSynchronize(transfer_.get());
  DropGraphs();
}

void CudaBackend::DropGraphs() {
  for (auto& [key, graph] : graphs_) {
    if (graph.exec != nullptr) (void)cudaGraphExecDestroy(graph.exec);
    graph.exec = nullptr;
    graph.runs = 0;
  }
}

absl::Status CudaBackend::Validate(const StepPlan& plan) const {
  STRATA_RETURN_IF_ERROR(arena_->ValidateMoves(plan.block_moves));
  const ModelConfig& c = decoder_->config();
  return ValidateStepPlan(plan, StepLimits{.vocab_size = c.vocab_size,
                                           .max_position_embeddings = c.max_position_embeddings,
                                           .num_layers = c.num_layers,
                                           .block_size = arena_->spec().block_size,
                                           .num_blocks = arena_->num_blocks()});
}

int CudaBackend::Partitions(int queries, int max_context) const {
  return kernels::DecodePartitions(queries, static_cast<int>(decoder_->config().num_kv_heads),
                                   max_context, num_sms_, kMaxDecodePartitions);
}

absl::Status CudaBackend::Upload(const HostStep& host, const PackedLayout& layout,
                                 DeviceBuffer& device) {
  if (staging_ == nullptr || staging_->size() < layout.bytes) {
    absl::StatusOr<std::unique_ptr<PinnedBuffer>> grown =
        PinnedBuffer::Allocate(std::max<size_t>(layout.bytes, size_t{1} << 16));
    if (!grown.ok()) return grown.status();
    staging_ = *std::move(grown);
  }
  PackHostStep(host, layout, staging_->data());
  absl::StatusOr<bool> grown = device.Reserve(layout.bytes);
  if (!grown.ok()) return grown.status();
  STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device.data(), staging_->data(), layout.bytes,
                                              cudaMemcpyHostToDevice, compute_.get()));
  return absl::OkStatus();
}

absl::StatusOr<DeviceStep> CudaBackend::RunEager(const HostStep& host, cudaEvent_t kv_ready) {
  const PackedLayout layout = LayoutOf(host);
  const int queries = static_cast<int>(host.decode_rows.size());
  const int partitions = Partitions(queries, host.max_context);
  const int logit_rows =
      std::min<int>(static_cast<int>(host.logit_rows.size()), CudaDecoder::kLogitChunk);
  absl::StatusOr<bool> moved =
      decoder_->Reserve(host.rows, logit_rows, decoder_->DecodeWorkspaceBytes(queries, partitions));
  if (!moved.ok()) return moved.status();
  if (*moved) DropGraphs();
  STRATA_RETURN_IF_ERROR(Upload(host, layout, step_meta_));
  const DeviceStep step = DeviceStepOf(host, layout, step_meta_.as<std::byte>(), partitions);
  STRATA_RETURN_IF_ERROR(decoder_->LaunchBody(step, arena_->view(), kv_ready, compute_.get()));
  return step;
}

absl::Status CudaBackend::CaptureGraph(Graph& graph, const DeviceStep& step) {
  cudaStream_t stream = compute_.get();
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  absl::Status status = decoder_->LaunchBody(step, arena_->view(), nullptr, stream);
  if (status.ok()) status = decoder_->LaunchHead(step, 0, step.logit_rows, stream);
  cudaGraph_t captured = nullptr;
  const cudaError_t end = cudaStreamEndCapture(stream, &captured);
  if (status.ok()) status = CudaStatus(end, "cudaStreamEndCapture");
  if (status.ok()) {
    status = CudaStatus(cudaGraphInstantiate(&graph.exec, captured, 0), "cudaGraphInstantiate");
  }
  if (captured != nullptr) (void)cudaGraphDestroy(captured);
  if (!status.ok()) {
    graph.exec = nullptr;
    (void)cudaGetLastError();
    return status;
  }
  ++graphs_captured_;
  return absl::OkStatus();
}

absl::StatusOr<DeviceStep> CudaBackend::RunGraph(const StepPlan& plan, HostStep& host,
                                                 cudaEvent_t kv_ready, bool* ran) {
  *ran = false;
  const int64_t block_size = arena_->spec().block_size;
  int64_t needed = 1;
  for (const SequenceStep& seq : plan.sequences) {
    needed = std::max(needed, (seq.start_position + 1 + block_size - 1) / block_size);
  }
  const int bucket = NextPowerOfTwo(static_cast<int64_t>(plan.sequences.size()));
  const int width = NextPowerOfTwo(needed);
  host = BuildHostStep(plan, Shape(), bucket, width);
  const PackedLayout layout = LayoutOf(host);
  const int partitions =
      Partitions(bucket, static_cast<int>(std::min<int64_t>(width * block_size, 1 << 30)));
  absl::StatusOr<bool> moved =
      decoder_->Reserve(bucket, bucket, decoder_->DecodeWorkspaceBytes(bucket, partitions));
  if (!moved.ok()) return moved.status();
  if (*moved) DropGraphs();
  Graph& graph = graphs_[{bucket, width}];
  void* const old_meta = graph.meta.data();
  STRATA_RETURN_IF_ERROR(Upload(host, layout, graph.meta));
  if (graph.meta.data() != old_meta && graph.exec != nullptr) {
    (void)cudaGraphExecDestroy(graph.exec);
    graph.exec = nullptr;
  }
  cudaStream_t stream = compute_.get();
  if (kv_ready != nullptr) STRATA_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, kv_ready, 0));
  const DeviceStep step = DeviceStepOf(host, layout, graph.meta.as<std::byte>(), partitions);
  if (graph.exec == nullptr && graph.runs > 0) {
    if (absl::Status captured = CaptureGraph(graph, step); !captured.ok()) {
      // Graphs are an optimisation: run this and every later step eagerly.
      options_.use_graphs = false;
      DropGraphs();
    }
  }
  if (graph.exec != nullptr) {
    STRATA_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graph.exec, stream));
  } else {
    STRATA_RETURN_IF_ERROR(decoder_->LaunchBody(step, arena_->view(), nullptr, stream));
    STRATA_RETURN_IF_ERROR(decoder_->LaunchHead(step, 0, step.logit_rows, stream));
  }
  ++graph.runs;
  *ran = true;
  return step;
}

StepShape CudaBackend::Shape() const {
  return {arena_->spec().block_size,
          static_cast<int>(decoder_->config().num_heads / decoder_->config().num_kv_heads),
          arena_->scratch_block()};
}

absl::Status CudaBackend::PlaceChunks(const StepPlan& plan, cudaStream_t stream) {
  const BlendPlacement placement = BuildBlendPlacement(plan, arena_->spec().block_size);
  const size_t n = placement.src_slots.size();
  if (n == 0) return absl::OkStatus();
  absl::StatusOr<bool> grown = blend_place_.Reserve(4 * n * 4);
  if (!grown.ok()) return grown.status();
  int32_t* base = blend_place_.as<int32_t>();
  const std::vector<int32_t>* arrays[] = {&placement.src_slots, &placement.dst_slots,
                                          &placement.from_positions, &placement.to_positions};
  for (size_t i = 0; i < 4; ++i) {
    // From pageable memory: staged before the call returns, ordered on the stream.
    STRATA_CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(base + i * n, arrays[i]->data(), n * 4, cudaMemcpyHostToDevice, stream));
  }
  kernels::BlendPlaceParams p;
  p.kv = arena_->view();
  p.src_slots = base;
  p.dst_slots = base + n;
  p.from_positions = base + 2 * n;
  p.to_positions = base + 3 * n;
  p.inv_freq = decoder_->inv_freq();
  p.tokens = static_cast<int>(n);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchBlendPlace(p, stream));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<double>> CudaBackend::MeasureDeviation(
    const HostStep& host, const std::vector<int32_t>& candidates, int layer, cudaStream_t stream) {
  const size_t n = candidates.size();
  std::vector<double> deviation(n);
  if (n == 0) return deviation;
  std::vector<int32_t> slots(n);
  for (size_t i = 0; i < n; ++i) slots[i] = host.slots[static_cast<size_t>(candidates[i])];
  // [rows | slots] ints, then the doubles 8-byte aligned.
  const size_t ints = (2 * n + 1) / 2 * 2;
  absl::StatusOr<bool> grown = blend_check_.Reserve(ints * 4 + n * 8);
  if (!grown.ok()) return grown.status();
  int32_t* rows_dev = blend_check_.as<int32_t>();
  double* out = reinterpret_cast<double*>(rows_dev + ints);
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(rows_dev, candidates.data(), n * 4, cudaMemcpyHostToDevice, stream));
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(rows_dev + n, slots.data(), n * 4, cudaMemcpyHostToDevice, stream));
  STRATA_RETURN_IF_ERROR(decoder_->LaunchDeviation(arena_->view(), layer, rows_dev, rows_dev + n,
                                                   static_cast<int>(n), out, stream));
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(deviation.data(), out, n * 8, cudaMemcpyDeviceToHost, stream));
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  return deviation;
}

absl::StatusOr<DeviceStep> CudaBackend::RunBlend(const StepPlan& plan, cudaEvent_t kv_ready,
                                                 HostStep& host,
                                                 std::vector<BlendOutcomeCounts>& outcomes) {
  cudaStream_t stream = compute_.get();
  const StepShape shape = Shape();
  const kernels::PagedKv kv = arena_->view();
  BlendRows rows(plan);
  host = BuildRowsStep(plan, rows.rows(), shape);
  const int logit_rows =
      std::min<int>(static_cast<int>(host.logit_rows.size()), CudaDecoder::kLogitChunk);
  absl::StatusOr<bool> moved = decoder_->Reserve(host.rows, logit_rows, 0);
  if (!moved.ok()) return moved.status();
  if (*moved) DropGraphs();
  PackedLayout layout = LayoutOf(host);
  STRATA_RETURN_IF_ERROR(Upload(host, layout, step_meta_));
  DeviceStep step = DeviceStepOf(host, layout, step_meta_.as<std::byte>(), 1);
  STRATA_RETURN_IF_ERROR(decoder_->LaunchEmbedding(step, stream));
  if (kv_ready != nullptr) STRATA_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, kv_ready, 0));
  // The chunks' K/V in place before any layer reads or writes the arena.
  STRATA_RETURN_IF_ERROR(PlaceChunks(plan, stream));
  for (int l = 0; l < static_cast<int>(decoder_->config().num_layers); ++l) {
    STRATA_RETURN_IF_ERROR(decoder_->LaunchLayerQkv(step, l, stream));
    // A check compares the fresh K/V with the placed cache before the store
    // overwrites it; every row still present stores its fresh K/V.
    absl::StatusOr<std::vector<double>> deviation =
        MeasureDeviation(host, rows.Candidates(l), l, stream);
    if (!deviation.ok()) return deviation.status();
    const size_t before = rows.rows().size();
    const std::vector<int32_t> kept = rows.Select(l, *deviation);
    STRATA_RETURN_IF_ERROR(decoder_->LaunchKvStore(step, kv, l, stream));
    if (kept.size() < before) {
      absl::StatusOr<bool> grown = blend_kept_.Reserve(kept.size() * 4);
      if (!grown.ok()) return grown.status();
      STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(blend_kept_.data(), kept.data(), kept.size() * 4,
                                                  cudaMemcpyHostToDevice, stream));
      STRATA_RETURN_IF_ERROR(
          decoder_->CompactRows(blend_kept_.as<int32_t>(), static_cast<int>(kept.size()), stream));
      // The pinned staging buffer is rewritten: its last upload must be done.
      STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
      host = BuildRowsStep(plan, rows.rows(), shape);
      layout = LayoutOf(host);
      STRATA_RETURN_IF_ERROR(Upload(host, layout, step_meta_));
      step = DeviceStepOf(host, layout, step_meta_.as<std::byte>(), 1);
      STRATA_RETURN_IF_ERROR(decoder_->LaunchRopeTable(step, stream));
    }
    STRATA_RETURN_IF_ERROR(decoder_->LaunchLayerRest(step, kv, l, stream));
  }
  outcomes = rows.Outcomes();
  return step;
}

absl::Status CudaBackend::Finish(const StepPlan& plan, const HostStep& host, const DeviceStep& step,
                                 bool heads_done, StepResult& result) {
  cudaStream_t stream = compute_.get();
  const int64_t vocab = decoder_->config().vocab_size;
  std::vector<SampleRequest> requests;
  std::vector<int> request_of(plan.sequences.size(), -1);
  bool any_logits = false;
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    const SequenceStep& seq = plan.sequences[s];
    any_logits |= seq.return_logits;
    if (!seq.sample) continue;
    const int last = host.first_logit[s] + host.logit_count[s] - 1;
    request_of[s] = static_cast<int>(requests.size());
    requests.push_back({&seq, last});
  }
  STRATA_RETURN_IF_ERROR(sampler_->Prepare(requests, stream));
  const int total = step.logit_rows;
  size_t next_request = 0;
  for (int first = 0; first < total; first += CudaDecoder::kLogitChunk) {
    const int count = std::min(CudaDecoder::kLogitChunk, total - first);
    if (!heads_done) STRATA_RETURN_IF_ERROR(decoder_->LaunchHead(step, first, count, stream));
    const size_t begin = next_request;
    while (next_request < requests.size() && requests[next_request].logit_index < first + count) {
      ++next_request;
    }
    STRATA_RETURN_IF_ERROR(sampler_->Launch(decoder_->logits(), static_cast<int>(begin),
                                            static_cast<int>(next_request - begin), first, stream));
    if (!any_logits) continue;
    const size_t bytes = static_cast<size_t>(count) * static_cast<size_t>(vocab) * 4;
    if (logits_host_ == nullptr || logits_host_->size() < bytes) {
      absl::StatusOr<std::unique_ptr<PinnedBuffer>> grown = PinnedBuffer::Allocate(
          static_cast<size_t>(CudaDecoder::kLogitChunk) * static_cast<size_t>(vocab) * 4);
      if (!grown.ok()) return grown.status();
      logits_host_ = *std::move(grown);
    }
    STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(logits_host_->data(), decoder_->logits(), bytes,
                                                cudaMemcpyDeviceToHost, stream));
    STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    const float* chunk = logits_host_->as<float>();
    for (size_t s = 0; s < plan.sequences.size(); ++s) {
      const SequenceStep& seq = plan.sequences[s];
      if (!seq.return_logits) continue;
      const int rows = host.logit_count[s];
      const int lo = std::max(first, host.first_logit[s]);
      const int hi = std::min(first + count, host.first_logit[s] + rows);
      if (lo >= hi) continue;
      std::vector<float>& out = result.outputs[s].logits;
      out.insert(out.end(), chunk + (lo - first) * vocab, chunk + (hi - first) * vocab);
    }
  }
  STRATA_RETURN_IF_ERROR(sampler_->Fetch(stream));
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  for (size_t s = 0; s < plan.sequences.size(); ++s) {
    if (request_of[s] >= 0) result.outputs[s].token = sampler_->Result(request_of[s]);
  }
  return absl::OkStatus();
}

absl::StatusOr<StepResult> CudaBackend::Execute(const StepPlan& plan) {
  STRATA_RETURN_IF_ERROR(Validate(plan));
  StepResult result;
  result.moves_completed = static_cast<int64_t>(plan.block_moves.size());
  cudaEvent_t kv_ready = nullptr;
  if (!plan.block_moves.empty()) {
    STRATA_RETURN_IF_ERROR(arena_->EnqueueMoves(plan.block_moves, transfer_.get()));
    STRATA_CUDA_RETURN_IF_ERROR(cudaEventRecord(moves_done_.get(), transfer_.get()));
    kv_ready = moves_done_.get();
  }
  for (const SequenceStep& seq : plan.sequences) result.outputs.push_back({seq.seq_id, {}, {}});
  const bool blend = std::any_of(plan.sequences.begin(), plan.sequences.end(),
                                 [](const SequenceStep& seq) { return seq.blend.has_value(); });
  if (blend) {
    HostStep host;
    std::vector<BlendOutcomeCounts> outcomes;
    absl::StatusOr<DeviceStep> ran = RunBlend(plan, kv_ready, host, outcomes);
    if (!ran.ok()) return ran.status();
    STRATA_RETURN_IF_ERROR(Finish(plan, host, *ran, false, result));
    for (size_t s = 0; s < outcomes.size(); ++s) {
      result.outputs[s].blend_reused_tokens = outcomes[s].reused_tokens;
      result.outputs[s].blend_recomputed_tokens = outcomes[s].recomputed_tokens;
    }
  } else if (!plan.sequences.empty()) {
    HostStep host;
    DeviceStep step;
    bool graph_ran = false;
    if (options_.use_graphs && IsDecodeOnly(plan) &&
        static_cast<int>(plan.sequences.size()) <= options_.max_graph_batch) {
      absl::StatusOr<DeviceStep> ran = RunGraph(plan, host, kv_ready, &graph_ran);
      if (!ran.ok()) return ran.status();
      step = *ran;
    }
    if (!graph_ran) {
      host = BuildHostStep(plan, Shape());
      absl::StatusOr<DeviceStep> ran = RunEager(host, kv_ready);
      if (!ran.ok()) return ran.status();
      step = *ran;
    }
    STRATA_RETURN_IF_ERROR(Finish(plan, host, step, graph_ran, result));
  }
  // Demotions must have landed in host memory before the scheduler reads them.
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(transfer_.get()));
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(compute_.get()));
  return result;
}

absl::Status CudaBackend::CopyBlocks(absl::Span<const BlockMove> moves) {
  STRATA_RETURN_IF_ERROR(arena_->EnqueueMoves(moves, transfer_.get()));
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(transfer_.get()));
  return absl::OkStatus();
}

absl::Status CudaBackend::Synchronize() {
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(transfer_.get()));
  STRATA_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(compute_.get()));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HostBuffer>> CudaBackend::AllocateHostBuffer(size_t bytes) {
  absl::StatusOr<std::unique_ptr<PinnedBuffer>> buffer = PinnedBuffer::Allocate(bytes);
  if (!buffer.ok()) return buffer.status();
  return std::unique_ptr<HostBuffer>(std::move(*buffer));
}

absl::StatusOr<std::unique_ptr<Backend>> CreateCudaBackend(const LoadedModel& model,
                                                           const BackendOptions& options) {
  absl::StatusOr<std::unique_ptr<CudaBackend>> backend = CudaBackend::Create(model, options);
  if (!backend.ok()) return backend.status();
  return std::unique_ptr<Backend>(std::move(*backend));
}

}  // namespace strata::engine::cuda
