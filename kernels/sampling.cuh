// GPU sampling kernel (kernels/sampling.h). One block of 1024 threads per
// sampled row; every stage is a pass over the row's logits (which stay in
// L2), with block-wide reductions in between. Selections by rank (top-k)
// and by mass (top-p) are radix selects over a 64-bit key that orders
// tokens exactly like the CPU sampler's Better(): the logit's order-
// preserving bits, then the inverted id, so ties go to the lower id and
// every key is distinct.
#ifndef STRATA_KERNELS_SAMPLING_CUH_
#define STRATA_KERNELS_SAMPLING_CUH_

#include <cfloat>
#include <climits>

#include "kernels/common.cuh"
#include "kernels/sampling.h"

namespace strata::kernels::detail {

constexpr int kSampleThreads = 1024;
constexpr int32_t kCountSeen = 1 << 30;     // the token is in the prompt
constexpr int32_t kCountClaimed = 1 << 29;  // its penalty has been applied
constexpr int32_t kCountMask = kCountClaimed - 1;

struct SampleShared {
  float f[32];
  int32_t i[32];
  double d[32];
  int32_t hist[256];
  double mass[256];
  double prefix[kSampleThreads];
  int32_t digit;
  int32_t remaining;
  int32_t token;
  double above;
};

__device__ __forceinline__ float Sanitize(float v) {
  return isnan(v) ? -INFINITY : fminf(v, FLT_MAX);
}

__device__ __forceinline__ bool Better(float va, int ia, float vb, int ib) {
  return va > vb || (va == vb && ia < ib);
}

__device__ __forceinline__ uint64_t SortKey(float sanitized, int id) {
  const uint32_t bits = __float_as_uint(sanitized);
  const uint32_t ordered = (bits & 0x80000000u) != 0 ? ~bits : (bits | 0x80000000u);
  return (static_cast<uint64_t>(ordered) << 32) | (0xFFFFFFFFu - static_cast<uint32_t>(id));
}

__device__ __forceinline__ double BlockSumDouble(double v, double* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x >> 5) ? scratch[lane] : 0.0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ int BlockSumInt(int v, int32_t* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x >> 5) ? scratch[lane] : 0;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ int BlockMaxInt(int v, int32_t* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kFullMask, v, o));
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x >> 5) ? scratch[lane] : INT_MIN;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = max(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// The best (value, id) of the block under Better(); every thread gets it.
// Threads with nothing pass (-inf, INT_MAX).
__device__ __forceinline__ void BlockBest(float& v, int& id, SampleShared& sh) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, v, o);
    const int oi = __shfl_xor_sync(kFullMask, id, o);
    if (Better(ov, oi, v, id)) {
      v = ov;
      id = oi;
    }
  }
  __syncthreads();
  if (lane == 0) {
    sh.f[warp] = v;
    sh.i[warp] = id;
  }
  __syncthreads();
  const bool has = lane < static_cast<int>(blockDim.x >> 5);
  v = has ? sh.f[lane] : -INFINITY;
  id = has ? sh.i[lane] : INT_MAX;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(kFullMask, v, o);
    const int oi = __shfl_xor_sync(kFullMask, id, o);
    if (Better(ov, oi, v, id)) {
      v = ov;
      id = oi;
    }
  }
}

// Copies the row into `work` and applies the penalties there, once per
// distinct history token, as engine::ApplyPenalties does.
__device__ void ApplyPenalties(const float* raw, float* work, int32_t* counts,
                               const int32_t* history, const SampleRow& row, int vocab) {
  const bool repetition = row.repetition_penalty != 1.0f;
  const int total = row.prompt_count + row.output_count;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) work[i] = raw[i];
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int id = history[i];
    if (id >= 0 && id < vocab) counts[id] = 0;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int id = history[i];
    if (id < 0 || id >= vocab) continue;
    if (i >= row.prompt_count) {
      atomicAdd(&counts[id], 1);
    } else if (repetition) {
      atomicOr(&counts[id], kCountSeen);
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < total; i += blockDim.x) {
    const int id = history[i];
    if (id < 0 || id >= vocab) continue;
    if (i < row.prompt_count && !repetition) continue;  // the prompt only feeds repetition
    const int32_t old = atomicOr(&counts[id], kCountClaimed);
    if ((old & kCountClaimed) != 0) continue;
    const int count = old & kCountMask;
    float v = work[id];
    if (repetition) v = v > 0.0f ? v / row.repetition_penalty : v * row.repetition_penalty;
    if (count > 0) {
      v -= row.frequency_penalty * static_cast<float>(count);
      v -= row.presence_penalty;
    }
    work[id] = v;
  }
  __syncthreads();
}

// The k-th largest key among the finite logits (more than k of them).
__device__ uint64_t KthKey(const float* logits, int vocab, int k, SampleShared& sh) {
  uint64_t prefix = 0, mask = 0;
  int remaining = k;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sh.hist[i] = 0;
    __syncthreads();
    for (int id = threadIdx.x; id < vocab; id += blockDim.x) {
      const float v = Sanitize(logits[id]);
      if (v == -INFINITY) continue;
      const uint64_t key = SortKey(v, id);
      if ((key & mask) == prefix) atomicAdd(&sh.hist[(key >> shift) & 255], 1);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int cum = 0, d = 255;
      for (; d > 0; --d) {
        if (cum + sh.hist[d] >= remaining) break;
        cum += sh.hist[d];
      }
      sh.digit = d;
      sh.remaining = remaining - cum;
    }
    __syncthreads();
    prefix |= static_cast<uint64_t>(sh.digit) << shift;
    mask |= uint64_t{255} << shift;
    remaining = sh.remaining;
  }
  return prefix;
}

struct Candidates {
  const float* logits;  // penalised
  uint64_t floor_key;   // candidates have keys >= floor_key (top-k)
  float max_logit;
  float temperature;
};

// Weight of token `id` if it is a candidate, else -1.
__device__ __forceinline__ float CandidateWeight(const Candidates& c, int id, uint64_t* key) {
  const float v = Sanitize(c.logits[id]);
  if (v == -INFINITY) return -1.0f;
  *key = SortKey(v, id);
  if (*key < c.floor_key) return -1.0f;
  return expf((v - c.max_logit) / c.temperature);
}

// The smallest key K such that the candidates with keys >= K carry at least
// `target` of the mass (double sums, like the CPU). If rounding leaves the
// whole set short of the target, the whole set (floor_key).
__device__ uint64_t NucleusKey(const Candidates& c, int vocab, double target, SampleShared& sh) {
  uint64_t prefix = 0, mask = 0;
  if (threadIdx.x == 0) sh.above = 0.0;
  for (int shift = 56; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) sh.mass[i] = 0.0;
    __syncthreads();
    for (int id = threadIdx.x; id < vocab; id += blockDim.x) {
      uint64_t key = 0;
      const float w = CandidateWeight(c, id, &key);
      if (w >= 0.0f && (key & mask) == prefix) {
        atomicAdd(&sh.mass[(key >> shift) & 255], static_cast<double>(w));
      }
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      double above = sh.above;
      int d = 255;
      for (; d >= 0; --d) {
        if (above + sh.mass[d] >= target) break;
        above += sh.mass[d];
      }
      if (d < 0 && shift != 56) {
        // Rounding between levels: keep the whole bucket chosen above.
        for (d = 0; d < 255 && !(sh.mass[d] > 0.0); ++d) {
        }
        above = sh.above;
      }
      sh.digit = d;
      sh.above = above;
    }
    __syncthreads();
    if (sh.digit < 0) return c.floor_key;  // the whole set falls short
    prefix |= static_cast<uint64_t>(sh.digit) << shift;
    mask |= uint64_t{255} << shift;
  }
  return prefix > c.floor_key ? prefix : c.floor_key;
}

// Inverse-CDF draw in token-id order over the candidates with key >= `key`
// and weight >= min_p; each thread owns a contiguous id range.
__device__ int Draw(const Candidates& c, int vocab, uint64_t nucleus_key, float min_p,
                    double uniform, SampleShared& sh) {
  const int per = (vocab + blockDim.x - 1) / blockDim.x;
  const int begin = min(vocab, static_cast<int>(threadIdx.x) * per);
  const int end = min(vocab, begin + per);
  const auto kept = [&](int id) {
    uint64_t k = 0;
    const float w = CandidateWeight(c, id, &k);
    return (w > 0.0f && k >= nucleus_key && (min_p <= 0.0f || w >= min_p)) ? w : 0.0f;
  };
  double local = 0.0;
  for (int id = begin; id < end; ++id) local += kept(id);
  // Exclusive scan of the per-thread sums through shared memory.
  sh.prefix[threadIdx.x] = local;
  if (threadIdx.x == 0) sh.token = -1;
  __syncthreads();
  if (threadIdx.x == 0) {
    double run = 0.0;
    for (int t = 0; t < static_cast<int>(blockDim.x); ++t) {
      const double v = sh.prefix[t];
      sh.prefix[t] = run;
      run += v;
    }
    sh.above = run;  // the kept mass
  }
  __syncthreads();
  const double total = sh.above;
  if (!(total > 0.0)) return 0;  // nothing kept (min_p above 1): the CPU's fallback
  const double target = uniform * total;
  const double lo = sh.prefix[threadIdx.x];
  const double hi = threadIdx.x + 1 < blockDim.x ? sh.prefix[threadIdx.x + 1] : INFINITY;
  if (local > 0.0 && lo <= target && target < hi) {
    double cum = lo;
    int chosen = -1;
    for (int id = begin; id < end; ++id) {
      const float w = kept(id);
      if (w <= 0.0f) continue;
      cum += w;
      chosen = id;
      if (target < cum) break;
    }
    sh.token = chosen;
  }
  __syncthreads();
  if (sh.token >= 0) return sh.token;
  // Rounding put the target past every range: the last kept token.
  int last = -1;
  for (int i = end - 1; i >= begin && last < 0; --i) {
    if (kept(i) > 0.0f) last = i;
  }
  return BlockMaxInt(last, sh.i);
}

__device__ int Argmax(const float* logits, int vocab, SampleShared& sh) {
  float best = -INFINITY;
  int best_id = INT_MAX;
  for (int id = threadIdx.x; id < vocab; id += blockDim.x) {
    const float v = isnan(logits[id]) ? -INFINITY : logits[id];
    if (Better(v, id, best, best_id)) {
      best = v;
      best_id = id;
    }
  }
  BlockBest(best, best_id, sh);
  return best_id;
}

__device__ int SampleFromDistribution(const float* logits, int vocab, const SampleRow& row,
                                      SampleShared& sh) {
  float max_logit = -INFINITY;
  int finite = 0;
  for (int id = threadIdx.x; id < vocab; id += blockDim.x) {
    const float v = Sanitize(logits[id]);
    if (v == -INFINITY) continue;
    ++finite;
    max_logit = fmaxf(max_logit, v);
  }
  finite = BlockSumInt(finite, sh.i);
  int unused = INT_MAX;
  BlockBest(max_logit, unused, sh);
  if (finite == 0) return 0;  // no logit above -inf: the documented fallback
  Candidates c{logits, 0, max_logit, row.temperature};
  int count = finite;
  if (row.top_k > 0 && row.top_k < finite) {
    c.floor_key = KthKey(logits, vocab, row.top_k, sh);
    count = row.top_k;
  }
  uint64_t nucleus = c.floor_key;
  if (row.top_p < 1.0f && count > 1) {
    double total = 0.0;
    for (int id = threadIdx.x; id < vocab; id += blockDim.x) {
      uint64_t key = 0;
      const float w = CandidateWeight(c, id, &key);
      if (w >= 0.0f) total += w;
    }
    total = BlockSumDouble(total, sh.d);
    nucleus = NucleusKey(c, vocab, static_cast<double>(row.top_p) * total, sh);
  }
  return Draw(c, vocab, nucleus, row.min_p, row.uniform, sh);
}

// Log-softmax of the raw logits, and the top-n alternatives by n argmax
// passes, each over the tokens worse than the previous pick.
__device__ void Logprobs(const float* raw, int vocab, const SampleRow& row, SampleResult& result,
                         SampleShared& sh) {
  float max_v = -INFINITY;
  for (int id = threadIdx.x; id < vocab; id += blockDim.x) max_v = fmaxf(max_v, Sanitize(raw[id]));
  int unused = INT_MAX;
  BlockBest(max_v, unused, sh);
  double log_sum = 0.0;
  if (max_v != -INFINITY) {
    double sum = 0.0;
    for (int id = threadIdx.x; id < vocab; id += blockDim.x) sum += expf(Sanitize(raw[id]) - max_v);
    log_sum = log(BlockSumDouble(sum, sh.d));
  }
  const auto logprob = [&](float raw_logit) {
    if (max_v == -INFINITY) return static_cast<float>(-log(static_cast<double>(vocab)));
    const float v = Sanitize(raw_logit);
    if (v == -INFINITY) return -INFINITY;
    return static_cast<float>(static_cast<double>(v) - max_v - log_sum);
  };
  if (row.return_logprob != 0) result.logprob = logprob(raw[result.token]);
  const int n = min(min(row.top_logprobs, kMaxSampledTopLogprobs), vocab);
  float prev_v = INFINITY;
  int prev_id = -1;
  for (int j = 0; j < n; ++j) {
    float best = -INFINITY;
    int best_id = INT_MAX;
    for (int id = threadIdx.x; id < vocab; id += blockDim.x) {
      const float v = Sanitize(raw[id]);
      if (Better(prev_v, prev_id, v, id) && Better(v, id, best, best_id)) {
        best = v;
        best_id = id;
      }
    }
    BlockBest(best, best_id, sh);
    result.top_ids[j] = best_id;
    result.top_logprobs[j] = logprob(raw[best_id]);
    prev_v = best;
    prev_id = best_id;
  }
}

__global__ void __launch_bounds__(kSampleThreads) SampleKernel(SampleParams p) {
  __shared__ SampleShared sh;
  const SampleRow row = p.rows[blockIdx.x];
  const float* raw = p.logits + static_cast<int64_t>(row.logits_row - p.first_logits_row) * p.vocab;
  const float* logits = raw;
  const bool penalties = row.repetition_penalty != 1.0f || row.presence_penalty != 0.0f ||
                         row.frequency_penalty != 0.0f;
  if (penalties) {
    float* work = p.work + static_cast<int64_t>(blockIdx.x) * p.vocab;
    int32_t* counts = p.counts + static_cast<int64_t>(blockIdx.x) * p.vocab;
    ApplyPenalties(raw, work, counts, p.history + row.history_offset, row, p.vocab);
    logits = work;
  }
  SampleResult result;
  result.token = !(row.temperature > 0.0f) ? Argmax(logits, p.vocab, sh)
                                           : SampleFromDistribution(logits, p.vocab, row, sh);
  if (row.return_logprob != 0 || row.top_logprobs > 0) Logprobs(raw, p.vocab, row, result, sh);
  if (threadIdx.x == 0) p.results[blockIdx.x] = result;
}

}  // namespace strata::kernels::detail

#endif  // STRATA_KERNELS_SAMPLING_CUH_
