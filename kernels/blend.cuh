// CacheBlend kernels (kernels/blend.h).
#ifndef STRATA_KERNELS_BLEND_CUH_
#define STRATA_KERNELS_BLEND_CUH_

#include "kernels/blend.h"
#include "kernels/common.cuh"

namespace strata::kernels::detail {

constexpr int kBlendPlaceThreads = 128;
constexpr int kDeviationWarps = 4;  // tokens per block
constexpr int kGatherThreads = 128;

__device__ __forceinline__ void SlotOf(const PagedKv& kv, int32_t slot, int32_t* block,
                                       int* offset) {
  *block = slot / kv.block_size;
  *offset = slot - *block * kv.block_size;
}

// grid: (token, layer). The block first forms the token's rotation (the
// CPU's RerotationAngles), then copies the layer's V heads and K heads,
// rotating K by (i, i + head_dim/2) pairs: a thread owns 8 consecutive
// pairs, i.e. one 16-byte vector of each half. The products are the
// CPU's unfused ones (__fmul_rn, no FMA contraction), so a token's bf16 K
// matches cpu::PlaceChunk bit for bit unless the device's double cos/sin
// and the host's round to different fp32 values (2 ulp in double).
template <int kHeadDim>
__global__ void __launch_bounds__(kBlendPlaceThreads) BlendPlaceKernel(BlendPlaceParams p) {
  constexpr int kHalf = kHeadDim / 2;
  constexpr int kChunks = kHeadDim / 8;   // 16-byte vectors per head
  constexpr int kPairChunks = kHalf / 8;  // rotation items per K head
  __shared__ float cos_s[kHalf], sin_s[kHalf];
  const int token = blockIdx.x;
  const int layer = blockIdx.y;
  const int from = p.from_positions[token], to = p.to_positions[token];
  const bool rotate = from != to;  // uniform over the block
  if (rotate) {
    for (int i = threadIdx.x; i < kHalf; i += blockDim.x) {
      const float inv = p.inv_freq[i];
      const float angle_from = __fmul_rn(static_cast<float>(from), inv);
      const float angle_to = __fmul_rn(static_cast<float>(to), inv);
      const double delta = static_cast<double>(angle_to) - static_cast<double>(angle_from);
      double s, c;
      sincos(delta, &s, &c);
      cos_s[i] = static_cast<float>(c);
      sin_s[i] = static_cast<float>(s);
    }
  }
  __syncthreads();
  int32_t src_block, dst_block;
  int src_offset, dst_offset;
  SlotOf(p.kv, p.src_slots[token], &src_block, &src_offset);
  SlotOf(p.kv, p.dst_slots[token], &dst_block, &dst_offset);
  const int heads = p.kv.num_kv_heads;
  const int k_items = heads * (rotate ? kPairChunks : kChunks);
  const int items = k_items + heads * kChunks;
  for (int w = threadIdx.x; w < items; w += blockDim.x) {
    if (!rotate || w >= k_items) {  // a 16-byte bit copy of K or V
      const bool value = w >= k_items;
      const int rest = value ? w - k_items : w;
      const int head = rest / kChunks, chunk = rest - (rest / kChunks) * kChunks;
      const __nv_bfloat16* src =
          PagedHead(p.kv, src_block, layer, value, head) + src_offset * kHeadDim + chunk * 8;
      __nv_bfloat16* dst =
          PagedHead(p.kv, dst_block, layer, value, head) + dst_offset * kHeadDim + chunk * 8;
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
      continue;
    }
    const int head = w / kPairChunks, chunk = w - (w / kPairChunks) * kPairChunks;
    const __nv_bfloat16* src =
        PagedHead(p.kv, src_block, layer, false, head) + src_offset * kHeadDim + chunk * 8;
    __nv_bfloat16* dst =
        PagedHead(p.kv, dst_block, layer, false, head) + dst_offset * kHeadDim + chunk * 8;
    float a[8], b[8], lo[8], hi[8];
    Bf16x8ToFloat(*reinterpret_cast<const uint4*>(src), a);
    Bf16x8ToFloat(*reinterpret_cast<const uint4*>(src + kHalf), b);
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const float c = cos_s[chunk * 8 + j], s = sin_s[chunk * 8 + j];
      lo[j] = __fsub_rn(__fmul_rn(a[j], c), __fmul_rn(b[j], s));
      hi[j] = __fadd_rn(__fmul_rn(b[j], c), __fmul_rn(a[j], s));
    }
    *reinterpret_cast<uint4*>(dst) = FloatToBf16x8(lo);
    *reinterpret_cast<uint4*>(dst + kHalf) = FloatToBf16x8(hi);
  }
}

// One warp per token. Lane l takes the (kv head, k|v) vectors l, l + 32, ...
// in the CPU's order [kv head][k|v]; each vector's squared distance and
// squared size are summed in double over its elements in order, as the CPU
// does, and the vector adds distance / (size + 1e-6). Then a fixed
// xor-shuffle tree (commutative pairs, so every lane ends with the same
// bits) and lane 0 stores. Only the order across vectors differs from the
// CPU's (a few ulps in double).
template <int kHeadDim>
__global__ void __launch_bounds__(kDeviationWarps * 32) KvDeviationKernel(KvDeviationParams p) {
  constexpr int kChunks = kHeadDim / 8;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int token = blockIdx.x * kDeviationWarps + warp;
  if (token >= p.tokens) return;  // the whole warp leaves together
  int32_t block;
  int offset;
  SlotOf(p.kv, p.slots[token], &block, &offset);
  const float* row = p.qkv + static_cast<int64_t>(p.rows[token]) * p.row_stride;
  const int vectors = p.kv.num_kv_heads * 2;
  double sum = 0.0;
  for (int v = lane; v < vectors; v += 32) {
    const int head = v / 2;
    const bool value = v % 2 == 1;
    const float* fresh = row + (value ? p.v_offset : p.k_offset) + head * kHeadDim;
    const uint16_t* stored = reinterpret_cast<const uint16_t*>(
        PagedHead(p.kv, block, p.layer, value, head) + offset * kHeadDim);
    double distance = 0.0, size = 0.0;
    for (int chunk = 0; chunk < kChunks; ++chunk) {
      const float4 f0 = *reinterpret_cast<const float4*>(fresh + chunk * 8);
      const float4 f1 = *reinterpret_cast<const float4*>(fresh + chunk * 8 + 4);
      const float f[8] = {f0.x, f0.y, f0.z, f0.w, f1.x, f1.y, f1.z, f1.w};
      float cached[8];
      Bf16x8ToFloat(*reinterpret_cast<const uint4*>(stored + chunk * 8), cached);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const double c = static_cast<double>(cached[j]);
        const double diff = __dsub_rn(static_cast<double>(f[j]), c);
        distance = __dadd_rn(distance, __dmul_rn(diff, diff));
        size = __dadd_rn(size, __dmul_rn(c, c));
      }
    }
    sum = __dadd_rn(sum, __ddiv_rn(distance, __dadd_rn(size, 1e-6)));
  }
#pragma unroll
  for (int offset_lanes = 16; offset_lanes > 0; offset_lanes >>= 1) {
    sum = __dadd_rn(sum, __shfl_xor_sync(kFullMask, sum, offset_lanes));
  }
  if (lane == 0) p.deviation[token] = sum;
}

// One block per destination row, 16-byte copies.
__global__ void __launch_bounds__(kGatherThreads) RowGatherKernel(RowGatherParams p) {
  const int64_t row = blockIdx.x;
  const uint4* src = reinterpret_cast<const uint4*>(p.src + p.rows[row] * p.src_row_bytes);
  uint4* dst = reinterpret_cast<uint4*>(p.dst + row * p.dst_row_bytes);
  const int64_t vectors = p.copy_bytes / 16;
  for (int64_t i = threadIdx.x; i < vectors; i += blockDim.x) dst[i] = src[i];
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_BLEND_CUH_
