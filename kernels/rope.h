// Rotary position embeddings, in two launches like the CPU decoder:
//  - LaunchRopeTable, once per step: cos/sin of every row's angles
//    position * inv_freq[i] (the fp32 product, then cos/sin in double and
//    rounded, as the CPU does). inv_freq carries the rope scaling (default,
//    linear, llama3): the host computes it once with
//    engine::cpu::RopeInverseFrequencies, so every scaling type is the CPU's.
//  - LaunchQkvRope, once per layer, in place on the fused QKV GEMM output:
//    optional bias on q, k and v; optional per-head RMSNorm on q and k
//    (Qwen3); then rotate-half RoPE on q and k.
// Launchers return the launch's cudaError_t (cudaErrorInvalidValue for a
// head_dim outside kernels/dispatch.h). Thread-safe.
#ifndef STRATA_KERNELS_ROPE_H_
#define STRATA_KERNELS_ROPE_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace strata::kernels {

struct RopeTableParams {
  const int32_t* positions = nullptr;  // [rows]
  const float* inv_freq = nullptr;     // [half]
  float* cos = nullptr;                // [rows, half]
  float* sin = nullptr;                // [rows, half]
  int rows = 0;
  int half = 0;  // head_dim / 2
};

cudaError_t LaunchRopeTable(const RopeTableParams& params, cudaStream_t stream);

struct QkvRopeParams {
  float* qkv = nullptr;           // [rows, (num_heads + 2 * num_kv_heads) * head_dim]: q | k | v
  const float* bias = nullptr;    // optional, one per qkv column
  const float* q_norm = nullptr;  // optional [head_dim] (then k_norm too)
  const float* k_norm = nullptr;
  const float* cos = nullptr;  // [rows, head_dim / 2] from LaunchRopeTable
  const float* sin = nullptr;
  int rows = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float eps = 1e-6f;
};

cudaError_t LaunchQkvRope(const QkvRopeParams& params, cudaStream_t stream);

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_ROPE_H_
