// RoPE kernels (kernels/rope.h).
#ifndef STRATA_KERNELS_ROPE_CUH_
#define STRATA_KERNELS_ROPE_CUH_

#include "kernels/common.cuh"
#include "kernels/rope.h"

namespace strata::kernels::detail {

__global__ void RopeTableKernel(RopeTableParams p) {
  const int64_t total = static_cast<int64_t>(p.rows) * p.half;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = i / p.half;
    const int col = static_cast<int>(i - row * p.half);
    // fp32 angle like transformers; __fmul_rn keeps it a plain product.
    const float angle = __fmul_rn(static_cast<float>(p.positions[row]), p.inv_freq[col]);
    double s, c;
    sincos(static_cast<double>(angle), &s, &c);
    p.cos[i] = static_cast<float>(c);
    p.sin[i] = static_cast<float>(s);
  }
}

// One warp per head of one row. Lane j holds the pairs (i, i + half) for
// i = j, j + 32, ...: the rotate-half partners, so RoPE needs no shuffles.
template <int kHeadDim>
__global__ void QkvRopeKernel(QkvRopeParams p) {
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kPairs = (kHalf + 31) / 32;
  const int lane = threadIdx.x & 31;
  const int head = blockIdx.y * (blockDim.x / 32) + (threadIdx.x >> 5);
  const int total_heads = p.num_heads + 2 * p.num_kv_heads;
  if (head >= total_heads) return;
  const int64_t row = blockIdx.x;
  const int width = total_heads * kHeadDim;
  float* v = p.qkv + row * width + static_cast<int64_t>(head) * kHeadDim;
  const float* bias = p.bias != nullptr ? p.bias + head * kHeadDim : nullptr;
  float a[kPairs], b[kPairs];
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < kPairs; ++k) {
    const int i = lane + 32 * k;
    a[k] = 0.0f;
    b[k] = 0.0f;
    if (i < kHalf) {
      a[k] = v[i];
      b[k] = v[i + kHalf];
      if (bias != nullptr) {
        a[k] += bias[i];
        b[k] += bias[i + kHalf];
      }
      sum += a[k] * a[k] + b[k] * b[k];
    }
  }
  const bool is_value = head >= p.num_heads + p.num_kv_heads;
  if (!is_value && p.q_norm != nullptr) {  // Qwen3: RMSNorm over each q and k head
    const float* w = head < p.num_heads ? p.q_norm : p.k_norm;
    const float scale = 1.0f / sqrtf(WarpSum(sum) / static_cast<float>(kHeadDim) + p.eps);
#pragma unroll
    for (int k = 0; k < kPairs; ++k) {
      const int i = lane + 32 * k;
      if (i < kHalf) {
        a[k] = w[i] * (a[k] * scale);
        b[k] = w[i + kHalf] * (b[k] * scale);
      }
    }
  }
  const float* cos_row = p.cos + row * kHalf;
  const float* sin_row = p.sin + row * kHalf;
#pragma unroll
  for (int k = 0; k < kPairs; ++k) {
    const int i = lane + 32 * k;
    if (i >= kHalf) continue;
    if (is_value) {
      v[i] = a[k];
      v[i + kHalf] = b[k];
    } else {
      const float c = cos_row[i], s = sin_row[i];
      v[i] = a[k] * c - b[k] * s;
      v[i + kHalf] = b[k] * c + a[k] * s;
    }
  }
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_ROPE_CUH_
