#include "engine/cpu/kv_blend.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "common/check.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {
void RerotationAngles(int64_t from, int64_t to, absl::Span<const float> inv_freq, float* cos_out,
                      float* sin_out) {
  for (size_t i = 0; i < inv_freq.size(); ++i) {
    // The forward pass's angles are fp32 products (decoder.cc, RopeTables);
    // their difference is exact in double.
    const float angle_from = static_cast<float>(from) * inv_freq[i];
    const float angle_to = static_cast<float>(to) * inv_freq[i];
    const double delta = static_cast<double>(angle_to) - static_cast<double>(angle_from);
    cos_out[i] = static_cast<float>(std::cos(delta));
    sin_out[i] = static_cast<float>(std::sin(delta));
  }
}

void PlaceChunk(const BlendChunk& chunk, absl::Span<const BlockId> table,
                absl::Span<const float> inv_freq, KvArena& arena, ThreadPool& pool) {
  const KvCacheSpec& spec = arena.spec();
  const int64_t d = spec.head_dim, half = d / 2, bs = spec.block_size;
  const int64_t length = chunk.length;
  const int64_t source = chunk.source_position;
  const bool shift = chunk.position != source;
  std::vector<float> cos_table, sin_table;
  if (shift) {
    cos_table.resize(static_cast<size_t>(length * half));
    sin_table.resize(static_cast<size_t>(length * half));
    for (int64_t t = 0; t < length; ++t) {
      RerotationAngles(source + t, chunk.position + t, inv_freq, cos_table.data() + t * half,
                       sin_table.data() + t * half);
    }
  }
  // One work item per (layer, k|v, kv head): disjoint destination bytes.
  const int64_t items = spec.num_layers * 2 * spec.num_kv_heads;
  pool.ParallelForDynamic(items, [&](int64_t item) {
    const int64_t layer = item / (2 * spec.num_kv_heads);
    const bool is_value = (item / spec.num_kv_heads) % 2 == 1;
    const int64_t head = item % spec.num_kv_heads;
    std::vector<float> scratch(static_cast<size_t>(d));
    for (int64_t t = 0; t < length; ++t) {
      const int64_t from = source + t, to = chunk.position + t;
      // Through fp32 rows whatever the arena's layout: bf16 -> fp32 -> bf16
      // gives back the same bits, so an unrotated row is copied exactly.
      arena.ReadRow(chunk.blocks[static_cast<size_t>(from / bs)], layer, is_value, head, from % bs,
                    scratch.data());
      if (!is_value && shift) {
        RotateHalves(scratch.data(), cos_table.data() + t * half, sin_table.data() + t * half,
                     half);
      }
      arena.WriteRow(table[static_cast<size_t>(to / bs)], layer, is_value, head, to % bs,
                     scratch.data());
    }
  });
}

double KvDeviation(const float* fresh_k, const float* fresh_v, const KvArena& arena, int64_t layer,
                   BlockId block, int64_t slot) {
  const KvCacheSpec& spec = arena.spec();
  const int64_t d = spec.head_dim;
  thread_local std::vector<float> cached;
  cached.resize(static_cast<size_t>(d));
  double sum = 0.0;
  for (int64_t head = 0; head < spec.num_kv_heads; ++head) {
    for (int is_value = 0; is_value < 2; ++is_value) {
      const float* fresh = (is_value == 1 ? fresh_v : fresh_k) + head * d;
      arena.ReadRow(block, layer, is_value == 1, head, slot, cached.data());
      double local = 0.0, norm = 0.0;
      for (int64_t i = 0; i < d; ++i) {
        const double diff = static_cast<double>(fresh[i]) - static_cast<double>(cached[i]);
        local += diff * diff;
        norm += static_cast<double>(cached[i]) * cached[i];
      }
      // Relative to the cached vector's size, so that every head counts
      // whatever the scale of its K or V.
      sum += local / (norm + 1e-6);
    }
  }
  return sum;
}

float CheckLayerRatio(float recompute_ratio, int64_t index, int64_t count) {
  CHECK_GT(count, 0);
  if (count == 1) return recompute_ratio;
  const float first = std::min(1.0f, 2.0f * recompute_ratio);
  const float t = static_cast<float>(index) / static_cast<float>(count - 1);
  return first + (recompute_ratio - first) * t;
}

int64_t KeptCount(float ratio, int64_t total) {
  if (ratio >= 1.0f) return total;
  if (ratio <= 0.0f) return 0;
  // A float ratio is off by up to 6e-8 relative (0.15f is 0.15000001): shave
  // more than that so 0.15 of 100 keeps 15, not 16.
  const double exact = static_cast<double>(ratio) * static_cast<double>(total);
  const auto kept = static_cast<int64_t>(std::ceil(exact * (1.0 - 1e-6)));
  return std::clamp<int64_t>(kept, 0, total);
}

std::vector<int64_t> SelectMostDeviating(absl::Span<const double> deviation, int64_t keep) {
  const auto n = static_cast<int64_t>(deviation.size());
  keep = std::clamp<int64_t>(keep, 0, n);
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  // Largest first; equal deviations (and NaN-free ties) by lower index.
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return deviation[static_cast<size_t>(a)] > deviation[static_cast<size_t>(b)];
  });
  order.resize(static_cast<size_t>(keep));
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace strata::engine::cpu
