#include "engine/cuda/cuda_decoder.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cpu/decoder.h"
#include "engine/cuda/cuda_status.h"
#include "kernels/attention_decode.h"
#include "kernels/blend.h"
#include "kernels/dispatch.h"
#include "kernels/embedding.h"
#include "kernels/kv_append.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

namespace strata::engine::cuda {
namespace {

// cuBLASLt workspace: what its Hopper kernels ask for at most.
constexpr size_t kGemmWorkspaceBytes = size_t{32} << 20;

template <typename T>
const T* At(const std::byte* base, size_t offset) {
  return reinterpret_cast<const T*>(base + offset);
}

}  // namespace

DeviceStep DeviceStepOf(const HostStep& host, const PackedLayout& layout, const std::byte* base,
                        int decode_partitions) {
  DeviceStep step;
  step.rows = host.rows;
  step.token_ids = At<int32_t>(base, layout.token_ids);
  step.positions = At<int32_t>(base, layout.positions);
  step.slots = At<int32_t>(base, layout.slots);
  step.decode_queries = static_cast<int>(host.decode_rows.size());
  step.decode_rows = At<int32_t>(base, layout.decode_rows);
  step.decode_context = At<int32_t>(base, layout.decode_context);
  step.decode_partitions = decode_partitions;
  step.num_tiles = static_cast<int>(host.tiles.size());
  step.prefill = At<kernels::PrefillSequence>(base, layout.prefill);
  step.tiles = At<kernels::PrefillTile>(base, layout.tiles);
  step.tables.tables = At<int32_t>(base, layout.tables);
  step.tables.stride = host.table_stride;
  step.logit_rows = static_cast<int>(host.logit_rows.size());
  step.logit_row_ids = At<int32_t>(base, layout.logit_rows);
  if (host.row_positions) step.row_positions = step.positions;
  return step;
}

absl::StatusOr<std::unique_ptr<CudaDecoder>> CudaDecoder::Create(const LoadedModel& model) {
  const ModelConfig& c = model.config;
  if (c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_heads ", c.num_heads, " is not a multiple of num_kv_heads ", c.num_kv_heads));
  }
  if (!kernels::IsSupportedHeadDim(static_cast<int>(c.head_dim))) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim ", c.head_dim,
                     " is not supported by the cuda kernels: ", kernels::SupportedCombinations()));
  }
  auto decoder = std::unique_ptr<CudaDecoder>(new CudaDecoder());
  decoder->config_ = c;
  absl::StatusOr<DeviceWeights> weights = UploadWeights(model);
  if (!weights.ok()) return weights.status();
  decoder->weights_ = *std::move(weights);
  absl::StatusOr<std::unique_ptr<CublasLtGemm>> gemm = CublasLtGemm::Create(kGemmWorkspaceBytes);
  if (!gemm.ok()) return gemm.status();
  decoder->gemm_ = *std::move(gemm);
  // The CPU's inverse frequencies (rope scaling included), so both
  // backends rotate by the same fp32 angles.
  const std::vector<float> inv_freq = cpu::RopeInverseFrequencies(c);
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(inv_freq.size() * 4);
  if (!buffer.ok()) return buffer.status();
  decoder->inv_freq_ = *std::move(buffer);
  STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpy(decoder->inv_freq_.data(), inv_freq.data(),
                                         inv_freq.size() * 4, cudaMemcpyHostToDevice));
  return decoder;
}

int64_t CudaDecoder::DecodeWorkspaceBytes(int decode_queries, int partitions) const {
  return kernels::DecodeAttentionWorkspaceBytes(decode_queries, static_cast<int>(config_.num_heads),
                                                static_cast<int>(config_.head_dim), partitions);
}

absl::StatusOr<bool> CudaDecoder::Reserve(int rows, int logit_rows,
                                          int64_t decode_workspace_bytes) {
  const ModelConfig& c = config_;
  bool moved = false;
  const auto reserve = [&](DeviceBuffer& buffer, int64_t bytes) -> absl::Status {
    absl::StatusOr<bool> grown = buffer.Reserve(static_cast<size_t>(std::max<int64_t>(bytes, 256)));
    if (!grown.ok()) return grown.status();
    moved |= *grown;
    return absl::OkStatus();
  };
  if (rows > rows_capacity_) {
    // Grow geometrically so a slowly rising row count reallocates rarely.
    const int64_t r = std::max<int64_t>(rows, std::min<int64_t>(2 * rows_capacity_, 1 << 16));
    const int64_t q_width = c.num_heads * c.head_dim;
    const int64_t qkv_width = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
    const int64_t act_width = std::max({c.hidden_size, q_width, c.intermediate_size});
    STRATA_RETURN_IF_ERROR(reserve(x_, r * c.hidden_size * 4));
    STRATA_RETURN_IF_ERROR(reserve(delta_, r * c.hidden_size * 4));
    STRATA_RETURN_IF_ERROR(reserve(act_, r * act_width * 2));
    STRATA_RETURN_IF_ERROR(reserve(qkv_, r * qkv_width * 4));
    STRATA_RETURN_IF_ERROR(reserve(attn_, r * q_width * 2));
    STRATA_RETURN_IF_ERROR(reserve(gate_up_, r * 2 * c.intermediate_size * 4));
    STRATA_RETURN_IF_ERROR(reserve(cos_, r * (c.head_dim / 2) * 4));
    STRATA_RETURN_IF_ERROR(reserve(sin_, r * (c.head_dim / 2) * 4));
    rows_capacity_ = static_cast<int>(r);
  }
  if (logit_rows > logit_capacity_) {
    STRATA_RETURN_IF_ERROR(reserve(logits_, int64_t{kLogitChunk} * c.vocab_size * 4));
    logit_capacity_ = kLogitChunk;
  }
  STRATA_RETURN_IF_ERROR(reserve(decode_workspace_, decode_workspace_bytes));
  return moved;
}

absl::Status CudaDecoder::LaunchAttention(const DeviceStep& step, const kernels::PagedKv& kv,
                                          int layer, cudaStream_t stream) {
  const ModelConfig& c = config_;
  const int heads = static_cast<int>(c.num_heads);
  const int d = static_cast<int>(c.head_dim);
  const int qkv_width = (heads + 2 * static_cast<int>(c.num_kv_heads)) * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  if (step.decode_queries > 0) {
    kernels::DecodeAttentionParams p;
    p.kv = kv;
    p.layer = layer;
    p.q = qkv_.as<float>();
    p.q_row_stride = qkv_width;
    p.out = attn_.as<__nv_bfloat16>();
    p.out_row_stride = heads * d;
    p.rows = step.decode_rows;
    p.context_lens = step.decode_context;
    p.tables = step.tables;
    p.num_queries = step.decode_queries;
    p.num_heads = heads;
    p.scale = scale;
    p.num_partitions = step.decode_partitions;
    p.workspace = decode_workspace_.as<float>();
    STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchDecodeAttention(p, stream));
  }
  if (step.num_tiles > 0) {
    kernels::PrefillAttentionParams p;
    p.kv = kv;
    p.layer = layer;
    p.q = qkv_.as<float>();
    p.q_row_stride = qkv_width;
    p.out = attn_.as<__nv_bfloat16>();
    p.out_row_stride = heads * d;
    p.sequences = step.prefill;
    p.tiles = step.tiles;
    p.tables = step.tables;
    p.num_tiles = step.num_tiles;
    p.num_heads = heads;
    p.scale = scale;
    p.positions = step.row_positions;
    STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchPrefillAttention(p, stream));
  }
  return absl::OkStatus();
}

absl::Status CudaDecoder::LaunchMlp(const DeviceLayer& layer, int rows, cudaStream_t stream) {
  const ModelConfig& c = config_;
  kernels::RmsNormParams norm;
  norm.residual = x_.as<float>();
  norm.delta = delta_.as<float>();
  norm.weight = layer.post_attention_norm.as<float>();
  norm.out = act_.as<__nv_bfloat16>();
  norm.rows = rows;
  norm.n = static_cast<int>(c.hidden_size);
  norm.eps = static_cast<float>(c.rms_norm_eps);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchRmsNorm(norm, stream));
  STRATA_RETURN_IF_ERROR(gemm_->Matmul({.weight = layer.gate_up.get(),
                                        .act = act_.data(),
                                        .out = gate_up_.data(),
                                        .m = rows,
                                        .n = layer.gate_up.rows,
                                        .k = layer.gate_up.cols},
                                       stream));
  kernels::SwiGluParams swiglu;
  swiglu.gate_up = gate_up_.as<float>();
  swiglu.out = act_.as<__nv_bfloat16>();
  swiglu.rows = rows;
  swiglu.n = static_cast<int>(c.intermediate_size);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchSwiGlu(swiglu, stream));
  return gemm_->Matmul({.weight = layer.down.get(),
                        .act = act_.data(),
                        .out = delta_.data(),
                        .m = rows,
                        .n = layer.down.rows,
                        .k = layer.down.cols},
                       stream);
}

absl::Status CudaDecoder::LaunchEmbedding(const DeviceStep& step, cudaStream_t stream) {
  kernels::EmbeddingParams embed;
  embed.table = weights_.embedding_table();
  embed.token_ids = step.token_ids;
  embed.out = x_.as<float>();
  embed.rows = step.rows;
  embed.hidden = static_cast<int>(config_.hidden_size);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchEmbedding(embed, stream));
  return LaunchRopeTable(step, stream);
}

absl::Status CudaDecoder::LaunchRopeTable(const DeviceStep& step, cudaStream_t stream) {
  kernels::RopeTableParams table;
  table.positions = step.positions;
  table.inv_freq = inv_freq_.as<float>();
  table.cos = cos_.as<float>();
  table.sin = sin_.as<float>();
  table.rows = step.rows;
  table.half = static_cast<int>(config_.head_dim / 2);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchRopeTable(table, stream));
  return absl::OkStatus();
}

absl::Status CudaDecoder::LaunchLayerQkv(const DeviceStep& step, int l, cudaStream_t stream) {
  const ModelConfig& c = config_;
  const DeviceLayer& layer = weights_.layers[static_cast<size_t>(l)];
  kernels::RmsNormParams norm;
  norm.residual = x_.as<float>();
  norm.delta = l > 0 ? delta_.as<float>() : nullptr;  // the previous layer's down_proj
  norm.weight = layer.input_norm.as<float>();
  norm.out = act_.as<__nv_bfloat16>();
  norm.rows = step.rows;
  norm.n = static_cast<int>(c.hidden_size);
  norm.eps = static_cast<float>(c.rms_norm_eps);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchRmsNorm(norm, stream));
  STRATA_RETURN_IF_ERROR(gemm_->Matmul({.weight = layer.qkv.get(),
                                        .act = act_.data(),
                                        .out = qkv_.data(),
                                        .m = step.rows,
                                        .n = layer.qkv.rows,
                                        .k = layer.qkv.cols},
                                       stream));
  kernels::QkvRopeParams rope;
  rope.qkv = qkv_.as<float>();
  rope.bias = layer.qkv_bias.size() > 0 ? layer.qkv_bias.as<float>() : nullptr;
  rope.q_norm = layer.q_norm.size() > 0 ? layer.q_norm.as<float>() : nullptr;
  rope.k_norm = layer.k_norm.size() > 0 ? layer.k_norm.as<float>() : nullptr;
  rope.cos = cos_.as<float>();
  rope.sin = sin_.as<float>();
  rope.rows = step.rows;
  rope.num_heads = static_cast<int>(c.num_heads);
  rope.num_kv_heads = static_cast<int>(c.num_kv_heads);
  rope.head_dim = static_cast<int>(c.head_dim);
  rope.eps = static_cast<float>(c.rms_norm_eps);
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchQkvRope(rope, stream));
  return absl::OkStatus();
}

absl::Status CudaDecoder::LaunchKvStore(const DeviceStep& step, const kernels::PagedKv& kv, int l,
                                        cudaStream_t stream) {
  const int heads = static_cast<int>(config_.num_heads);
  const int kv_heads = static_cast<int>(config_.num_kv_heads);
  const int d = static_cast<int>(config_.head_dim);
  kernels::KvAppendParams append;
  append.kv = kv;
  append.layer = l;
  append.qkv = qkv_.as<float>();
  append.row_stride = (heads + 2 * kv_heads) * d;
  append.k_offset = heads * d;
  append.v_offset = (heads + kv_heads) * d;
  append.slots = step.slots;
  append.rows = step.rows;
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchKvAppend(append, stream));
  return absl::OkStatus();
}

absl::Status CudaDecoder::LaunchLayerRest(const DeviceStep& step, const kernels::PagedKv& kv, int l,
                                          cudaStream_t stream) {
  const DeviceLayer& layer = weights_.layers[static_cast<size_t>(l)];
  STRATA_RETURN_IF_ERROR(LaunchAttention(step, kv, l, stream));
  STRATA_RETURN_IF_ERROR(gemm_->Matmul({.weight = layer.o.get(),
                                        .act = attn_.data(),
                                        .out = delta_.data(),
                                        .m = step.rows,
                                        .n = layer.o.rows,
                                        .k = layer.o.cols},
                                       stream));
  return LaunchMlp(layer, step.rows, stream);
}

absl::Status CudaDecoder::LaunchBody(const DeviceStep& step, const kernels::PagedKv& kv,
                                     cudaEvent_t kv_ready, cudaStream_t stream) {
  STRATA_RETURN_IF_ERROR(LaunchEmbedding(step, stream));
  for (int l = 0; l < static_cast<int>(config_.num_layers); ++l) {
    STRATA_RETURN_IF_ERROR(LaunchLayerQkv(step, l, stream));
    if (l == 0 && kv_ready != nullptr) {
      STRATA_CUDA_RETURN_IF_ERROR(cudaStreamWaitEvent(stream, kv_ready, 0));
    }
    STRATA_RETURN_IF_ERROR(LaunchKvStore(step, kv, l, stream));
    STRATA_RETURN_IF_ERROR(LaunchLayerRest(step, kv, l, stream));
  }
  return absl::OkStatus();
}

absl::Status CudaDecoder::LaunchDeviation(const kernels::PagedKv& kv, int layer,
                                          const int32_t* rows, const int32_t* slots, int count,
                                          double* out, cudaStream_t stream) {
  const int heads = static_cast<int>(config_.num_heads);
  const int kv_heads = static_cast<int>(config_.num_kv_heads);
  const int d = static_cast<int>(config_.head_dim);
  kernels::KvDeviationParams p;
  p.kv = kv;
  p.layer = layer;
  p.qkv = qkv_.as<float>();
  p.row_stride = (heads + 2 * kv_heads) * d;
  p.k_offset = heads * d;
  p.v_offset = (heads + kv_heads) * d;
  p.rows = rows;
  p.slots = slots;
  p.deviation = out;
  p.tokens = count;
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchKvDeviation(p, stream));
  return absl::OkStatus();
}

absl::Status CudaDecoder::CompactRows(const int32_t* kept, int count, cudaStream_t stream) {
  if (count <= 0) return absl::OkStatus();
  const ModelConfig& c = config_;
  const int64_t qkv_width = (c.num_heads + 2 * c.num_kv_heads) * c.head_dim;
  const int64_t width = std::max(c.hidden_size, qkv_width);
  absl::StatusOr<bool> grown =
      compact_.Reserve(static_cast<size_t>(std::max<int64_t>(count * width * 4, 256)));
  if (!grown.ok()) return grown.status();
  // Gather into the staging buffer, then copy back: rows move towards the
  // front, so an in-place gather would race.
  for (const auto& [buffer, row_floats] :
       {std::pair<DeviceBuffer*, int64_t>{&x_, c.hidden_size}, {&qkv_, qkv_width}}) {
    kernels::RowGatherParams gather;
    gather.src = buffer->as<std::byte>();
    gather.dst = compact_.as<std::byte>();
    gather.src_row_bytes = gather.dst_row_bytes = gather.copy_bytes = row_floats * 4;
    gather.rows = kept;
    gather.count = count;
    STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchRowGather(gather, stream));
    STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(buffer->data(), compact_.data(),
                                                static_cast<size_t>(count * row_floats * 4),
                                                cudaMemcpyDeviceToDevice, stream));
  }
  return absl::OkStatus();
}

absl::Status CudaDecoder::LaunchHead(const DeviceStep& step, int first, int count,
                                     cudaStream_t stream) {
  if (count <= 0) return absl::OkStatus();
  if (count > kLogitChunk || first + count > step.logit_rows) {
    return absl::InternalError(absl::StrCat("logit chunk [", first, ", ", first + count,
                                            ") outside the step's ", step.logit_rows, " rows"));
  }
  const ModelConfig& c = config_;
  kernels::RmsNormParams norm;
  norm.residual = x_.as<float>();
  norm.delta = c.num_layers > 0 ? delta_.as<float>() : nullptr;
  norm.row_index = step.logit_row_ids + first;
  norm.weight = weights_.final_norm.as<float>();
  norm.out = act_.as<__nv_bfloat16>();
  norm.rows = count;
  norm.n = static_cast<int>(c.hidden_size);
  norm.eps = static_cast<float>(c.rms_norm_eps);
  norm.write_residual = false;
  STRATA_CUDA_RETURN_IF_ERROR(kernels::LaunchRmsNorm(norm, stream));
  return gemm_->Matmul({.weight = weights_.lm_head.get(),
                        .act = act_.data(),
                        .out = logits_.data(),
                        .m = count,
                        .n = weights_.lm_head.rows,
                        .k = weights_.lm_head.cols},
                       stream);
}

}  // namespace strata::engine::cuda
