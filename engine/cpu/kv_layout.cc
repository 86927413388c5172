#include "engine/cpu/kv_layout.h"

#include <cstring>

#include "common/check.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {

namespace {
constexpr int64_t kMaxChunkedHeadDim = 512;  // the bf16 kernels' limit
}  // namespace

KvLayout KvLayoutFor(const KvCacheSpec& spec) {
  const bool chunks = spec.dtype == DType::kBF16 && spec.block_size % kKvChunkRows == 0 &&
                      spec.head_dim % 32 == 0 && spec.head_dim <= kMaxChunkedHeadDim;
  return chunks ? KvLayout::kChunks : KvLayout::kRows;
}

void ReadKvRow(const std::byte* head, DType dtype, KvLayout layout, bool is_value, int64_t t,
               int64_t d, float* out) {
  if (dtype == DType::kF32) {  // always rows
    std::memcpy(out, reinterpret_cast<const float*>(head) + t * d, static_cast<size_t>(d) * 4);
    return;
  }
  const auto* elements = reinterpret_cast<const uint16_t*>(head);
  if (layout == KvLayout::kRows) {
    ConvertBf16ToF32(elements + t * d, out, d);
    return;
  }
  CHECK_LE(d, kMaxChunkedHeadDim);
  uint16_t row[kMaxChunkedHeadDim];
  for (int64_t i = 0; i < d; ++i) row[i] = elements[KvElementIndex(layout, is_value, t, i, d)];
  ConvertBf16ToF32(row, out, d);
}

void WriteKvRow(std::byte* head, DType dtype, KvLayout layout, bool is_value, int64_t t, int64_t d,
                const float* row) {
  if (dtype == DType::kF32) {
    std::memcpy(reinterpret_cast<float*>(head) + t * d, row, static_cast<size_t>(d) * 4);
    return;
  }
  auto* elements = reinterpret_cast<uint16_t*>(head);
  if (layout == KvLayout::kRows) {
    ConvertF32ToBf16(row, elements + t * d, d);
    return;
  }
  CHECK_LE(d, kMaxChunkedHeadDim);
  uint16_t converted[kMaxChunkedHeadDim];
  ConvertF32ToBf16(row, converted, d);
  for (int64_t i = 0; i < d; ++i) {
    elements[KvElementIndex(layout, is_value, t, i, d)] = converted[i];
  }
}

}  // namespace strata::engine::cpu
