// The CUDA backend's forward pass: the CPU decoder's arithmetic
// (engine/cpu/decoder.h) as a sequence of kernel launches and cuBLASLt
// GEMMs on one stream. The residual stream is fp32; every GEMM takes bf16
// activations and weights and accumulates in fp32 (the CPU's kBf16
// precision); attention reads the paged arena through block tables.
//
// A step's metadata lives in device memory (DeviceStep); LaunchBody and
// LaunchHead only enqueue work, so the same calls run eagerly or inside a
// CUDA graph capture. Scratch buffers are sized by Reserve; when it
// reallocates, graphs that captured the old addresses must be dropped.
// Not thread-safe: one engine thread.
#ifndef STRATA_ENGINE_CUDA_CUDA_DECODER_H_
#define STRATA_ENGINE_CUDA_CUDA_DECODER_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/cuda/cublaslt_gemm.h"
#include "engine/cuda/device_memory.h"
#include "engine/cuda/device_weights.h"
#include "engine/cuda/step_layout.h"
#include "engine/model_weights.h"
#include "kernels/attention_prefill.h"
#include "kernels/paged_kv.h"

namespace strata::engine::cuda {

// HostStep's arrays in device memory, with their counts.
struct DeviceStep {
  int rows = 0;
  const int32_t* token_ids = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* slots = nullptr;
  int decode_queries = 0;
  const int32_t* decode_rows = nullptr;
  const int32_t* decode_context = nullptr;
  int decode_partitions = 1;
  int num_tiles = 0;
  const kernels::PrefillSequence* prefill = nullptr;
  const kernels::PrefillTile* tiles = nullptr;
  kernels::BlockTables tables;
  int logit_rows = 0;
  const int32_t* logit_row_ids = nullptr;
  // Set for a step given row by row (HostStep::row_positions): the prefill
  // kernel's per-row positions (`positions`).
  const int32_t* row_positions = nullptr;
};

DeviceStep DeviceStepOf(const HostStep& host, const PackedLayout& layout, const std::byte* base,
                        int decode_partitions);

class CudaDecoder {
 public:
  // Logit rows computed per lm_head launch.
  static constexpr int kLogitChunk = 256;

  // Uploads the weights. INVALID_ARGUMENT for shapes the kernels do not
  // support (kernels/dispatch.h), RESOURCE_EXHAUSTED when the device is full.
  static absl::StatusOr<std::unique_ptr<CudaDecoder>> Create(const LoadedModel& model);

  const ModelConfig& config() const { return config_; }
  int64_t weight_bytes() const { return weights_.bytes; }

  // Grows the scratch for `rows` batch rows, `logit_rows` rows of one
  // lm_head chunk, and the decode attention workspace. True when anything
  // moved (graphs holding old addresses are then stale).
  absl::StatusOr<bool> Reserve(int rows, int logit_rows, int64_t decode_workspace_bytes);
  // Bytes of decode workspace `step`'s shape needs.
  int64_t DecodeWorkspaceBytes(int decode_queries, int partitions) const;

  // Embedding through the last layer for every row of `step`. When
  // `kv_ready` is set, the stream waits for it before the first write to
  // the arena, so tier moves on another stream overlap the work before it.
  absl::Status LaunchBody(const DeviceStep& step, const kernels::PagedKv& kv, cudaEvent_t kv_ready,
                          cudaStream_t stream);
  // LaunchBody in pieces, for steps that act between a layer's QKV and its
  // KV store (CacheBlend): embedding and RoPE table; the RoPE table alone
  // (after rows were compacted); a layer's norm, QKV GEMM and RoPE; its KV
  // store; its attention, o_proj and MLP.
  absl::Status LaunchEmbedding(const DeviceStep& step, cudaStream_t stream);
  absl::Status LaunchRopeTable(const DeviceStep& step, cudaStream_t stream);
  absl::Status LaunchLayerQkv(const DeviceStep& step, int layer, cudaStream_t stream);
  absl::Status LaunchKvStore(const DeviceStep& step, const kernels::PagedKv& kv, int layer,
                             cudaStream_t stream);
  absl::Status LaunchLayerRest(const DeviceStep& step, const kernels::PagedKv& kv, int layer,
                               cudaStream_t stream);

  // CacheBlend, between LaunchLayerQkv and LaunchKvStore of `layer`: the
  // deviation of `count` rows' fresh K/V (device `rows`) from what the
  // arena holds at their device `slots`, into device `out` (kernels/blend.h).
  absl::Status LaunchDeviation(const kernels::PagedKv& kv, int layer, const int32_t* rows,
                               const int32_t* slots, int count, double* out, cudaStream_t stream);
  // Keeps the residual stream and QKV rows listed in device `kept`
  // (ascending, `count` of them) as rows 0 .. count - 1. Grows a scratch
  // buffer (cudaMalloc) on first use: eager steps only, never in a graph.
  absl::Status CompactRows(const int32_t* kept, int count, cudaStream_t stream);
  // HF's inverse RoPE frequencies, fp32 [head_dim / 2], device memory.
  const float* inv_freq() const { return inv_freq_.as<float>(); }

  // Final norm and lm_head for step logit rows [first, first + count) into
  // logits() rows [0, count). count <= kLogitChunk.
  absl::Status LaunchHead(const DeviceStep& step, int first, int count, cudaStream_t stream);
  const float* logits() const { return logits_.as<float>(); }

 private:
  CudaDecoder() = default;
  absl::Status LaunchAttention(const DeviceStep& step, const kernels::PagedKv& kv, int layer,
                               cudaStream_t stream);
  absl::Status LaunchMlp(const DeviceLayer& layer, int rows, cudaStream_t stream);

  ModelConfig config_;
  DeviceWeights weights_;
  std::unique_ptr<CublasLtGemm> gemm_;
  DeviceBuffer inv_freq_;  // fp32 [head_dim / 2]
  int rows_capacity_ = 0, logit_capacity_ = 0;
  // Scratch.
  DeviceBuffer x_;          // fp32 [rows, hidden] residual stream
  DeviceBuffer delta_;      // fp32 [rows, hidden] o_proj / down_proj outputs
  DeviceBuffer act_;        // bf16 [rows, max(hidden, q width, intermediate)] GEMM inputs
  DeviceBuffer qkv_;        // fp32 [rows, (heads + 2 kv_heads) * head_dim]
  DeviceBuffer attn_;       // bf16 [rows, heads * head_dim]
  DeviceBuffer gate_up_;    // fp32 [rows, 2 * intermediate]
  DeviceBuffer cos_, sin_;  // fp32 [rows, head_dim / 2]
  DeviceBuffer logits_;     // fp32 [kLogitChunk, vocab]
  DeviceBuffer decode_workspace_;
  DeviceBuffer compact_;  // CompactRows' staging: fp32 [rows, max(hidden, qkv width)]
};

}  // namespace strata::engine::cuda

#endif  // STRATA_ENGINE_CUDA_CUDA_DECODER_H_
