// A model's weights in device memory for the CUDA backend. Linear layers are
// bf16 [n, k] row-major, with q/k/v and gate/up stacked into one matrix each
// (one GEMM apiece); norms and biases are fp32. bf16 checkpoint tensors are
// copied straight from the safetensors mapping into device memory; other
// dtypes are rounded to bf16 on the host first, a chunk at a time.
// Owns its device memory; immutable after upload, so any thread may read it.
#ifndef STRATA_ENGINE_CUDA_DEVICE_WEIGHTS_H_
#define STRATA_ENGINE_CUDA_DEVICE_WEIGHTS_H_

#include <cuda_bf16.h>

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/cuda/device_memory.h"
#include "engine/model_weights.h"

namespace strata::engine::cuda {

struct DeviceMatrix {
  DeviceBuffer data;  // bf16 [rows, cols]
  int64_t rows = 0, cols = 0;
  const __nv_bfloat16* get() const { return data.as<__nv_bfloat16>(); }
};

struct DeviceLayer {
  DeviceBuffer input_norm, post_attention_norm;  // fp32 [hidden]
  DeviceBuffer qkv_bias;                         // fp32, empty unless qkv_bias
  DeviceBuffer q_norm, k_norm;                   // fp32 [head_dim], empty unless qk_norm
  DeviceMatrix qkv, o, gate_up, down;
};

struct DeviceWeights {
  std::vector<DeviceLayer> layers;
  DeviceBuffer final_norm;
  DeviceMatrix lm_head;
  DeviceMatrix embed;  // empty when tied: the embedding table is lm_head
  int64_t bytes = 0;   // device bytes held

  const __nv_bfloat16* embedding_table() const {
    return embed.rows > 0 ? embed.get() : lm_head.get();
  }
};

// Uploads `model` (validated by LoadModel or MakeRandomModel).
// INVALID_ARGUMENT for missing optional tensors the config asks for or
// mismatched shapes; RESOURCE_EXHAUSTED when the device is full.
absl::StatusOr<DeviceWeights> UploadWeights(const LoadedModel& model);

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_DEVICE_WEIGHTS_H_
