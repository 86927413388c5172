#include "engine/cuda/device_weights.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/cpu/simd.h"
#include "engine/cuda/cuda_status.h"

namespace strata::engine::cuda {
namespace {

// Elements converted per host chunk for non-bf16 tensors.
constexpr int64_t kConvertChunk = int64_t{1} << 22;

// Copies `view` as bf16 to dst (device), converting when needed.
absl::Status CopyAsBf16(const TensorView& view, std::byte* dst) {
  if (view.dtype == DType::kBF16) {
    STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst, view.data, view.nbytes, cudaMemcpyHostToDevice));
    return absl::OkStatus();
  }
  const int64_t n = view.NumElements();
  std::vector<uint16_t> chunk(static_cast<size_t>(std::min(n, kConvertChunk)));
  std::vector<float> floats(chunk.size());
  for (int64_t first = 0; first < n; first += kConvertChunk) {
    const int64_t count = std::min(kConvertChunk, n - first);
    if (view.dtype == DType::kF32) {
      std::memcpy(floats.data(), view.data + first * 4, static_cast<size_t>(count) * 4);
    } else {
      for (int64_t i = 0; i < count; ++i)
        floats[static_cast<size_t>(i)] = view.ElementAsFloat(first + i);
    }
    cpu::ConvertF32ToBf16(floats.data(), chunk.data(), count);
    STRATA_CUDA_RETURN_IF_ERROR(cudaMemcpy(dst + first * 2, chunk.data(),
                                           static_cast<size_t>(count) * 2, cudaMemcpyHostToDevice));
  }
  return absl::OkStatus();
}

// Stacks the rows of `parts` (same column count) into one bf16 matrix.
absl::StatusOr<DeviceMatrix> UploadMatrix(const std::vector<const TensorView*>& parts) {
  DeviceMatrix matrix;
  for (const TensorView* part : parts) {
    if (part->empty() || part->shape.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("weight ", part->name, " is missing or not 2-D"));
    }
    if (matrix.cols == 0) matrix.cols = part->shape[1];
    if (part->shape[1] != matrix.cols) {
      return absl::InvalidArgumentError(absl::StrCat("weight ", part->name, " has ", part->shape[1],
                                                     " columns, expected ", matrix.cols));
    }
    matrix.rows += part->shape[0];
  }
  absl::StatusOr<DeviceBuffer> data =
      DeviceBuffer::Allocate(static_cast<size_t>(matrix.rows * matrix.cols * 2));
  if (!data.ok()) return data.status();
  matrix.data = *std::move(data);
  int64_t row = 0;
  for (const TensorView* part : parts) {
    STRATA_RETURN_IF_ERROR(CopyAsBf16(*part, matrix.data.as<std::byte>() + row * matrix.cols * 2));
    row += part->shape[0];
  }
  return matrix;
}

// Concatenates `parts` as fp32 into one device vector.
absl::StatusOr<DeviceBuffer> UploadFloats(const std::vector<const TensorView*>& parts) {
  std::vector<float> host;
  for (const TensorView* part : parts) {
    if (part->empty())
      return absl::InvalidArgumentError(absl::StrCat("tensor ", part->name, " is missing"));
    for (int64_t i = 0; i < part->NumElements(); ++i) host.push_back(part->ElementAsFloat(i));
  }
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(host.size() * 4);
  if (!buffer.ok()) return buffer.status();
  STRATA_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(buffer->data(), host.data(), host.size() * 4, cudaMemcpyHostToDevice));
  return buffer;
}

absl::StatusOr<DeviceLayer> UploadLayer(const ModelConfig& c, const LayerWeights& w) {
  DeviceLayer layer;
  absl::StatusOr<DeviceBuffer> buffer = UploadFloats({&w.input_norm});
  if (!buffer.ok()) return buffer.status();
  layer.input_norm = *std::move(buffer);
  buffer = UploadFloats({&w.post_attention_norm});
  if (!buffer.ok()) return buffer.status();
  layer.post_attention_norm = *std::move(buffer);
  if (c.qkv_bias) {
    buffer = UploadFloats({&w.q_bias, &w.k_bias, &w.v_bias});
    if (!buffer.ok()) return buffer.status();
    layer.qkv_bias = *std::move(buffer);
  }
  if (c.qk_norm) {
    buffer = UploadFloats({&w.q_norm});
    if (!buffer.ok()) return buffer.status();
    layer.q_norm = *std::move(buffer);
    buffer = UploadFloats({&w.k_norm});
    if (!buffer.ok()) return buffer.status();
    layer.k_norm = *std::move(buffer);
  }
  absl::StatusOr<DeviceMatrix> matrix = UploadMatrix({&w.q_proj, &w.k_proj, &w.v_proj});
  if (!matrix.ok()) return matrix.status();
  layer.qkv = *std::move(matrix);
  matrix = UploadMatrix({&w.o_proj});
  if (!matrix.ok()) return matrix.status();
  layer.o = *std::move(matrix);
  matrix = UploadMatrix({&w.gate_proj, &w.up_proj});
  if (!matrix.ok()) return matrix.status();
  layer.gate_up = *std::move(matrix);
  matrix = UploadMatrix({&w.down_proj});
  if (!matrix.ok()) return matrix.status();
  layer.down = *std::move(matrix);
  return layer;
}

int64_t MatrixBytes(const DeviceMatrix& m) { return m.rows * m.cols * 2; }

}  // namespace

absl::StatusOr<DeviceWeights> UploadWeights(const LoadedModel& model) {
  const ModelConfig& c = model.config;
  if (static_cast<int64_t>(model.weights.layers.size()) != c.num_layers) {
    return absl::InvalidArgumentError("layer count differs from the config");
  }
  DeviceWeights weights;
  for (const LayerWeights& w : model.weights.layers) {
    absl::StatusOr<DeviceLayer> layer = UploadLayer(c, w);
    if (!layer.ok()) return layer.status();
    weights.bytes += MatrixBytes(layer->qkv) + MatrixBytes(layer->o) + MatrixBytes(layer->gate_up) +
                     MatrixBytes(layer->down);
    weights.layers.push_back(*std::move(layer));
  }
  absl::StatusOr<DeviceBuffer> norm = UploadFloats({&model.weights.final_norm});
  if (!norm.ok()) return norm.status();
  weights.final_norm = *std::move(norm);
  const TensorView& head =
      model.weights.lm_head.empty() ? model.weights.embed_tokens : model.weights.lm_head;
  absl::StatusOr<DeviceMatrix> lm_head = UploadMatrix({&head});
  if (!lm_head.ok()) return lm_head.status();
  weights.lm_head = *std::move(lm_head);
  weights.bytes += MatrixBytes(weights.lm_head);
  if (head.data != model.weights.embed_tokens.data) {
    absl::StatusOr<DeviceMatrix> embed = UploadMatrix({&model.weights.embed_tokens});
    if (!embed.ok()) return embed.status();
    weights.embed = *std::move(embed);
    weights.bytes += MatrixBytes(weights.embed);
  }
  return weights;
}

}  // namespace strata::engine::cuda
