#include "engine/cpu/kv_layout.h"

#include <cstring>

#include "common/check.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {

namespace {

constexpr int64_t kMaxChunkedHeadDim = 512;  // the bf16 kernels' limit

// A chunked row's elements, in the order KvElementIndex gives them, without
// its divisions (StoreKv writes every row of every prefill through here):
// keys as 32-bit dim pairs 16 words apart, values as 16-dim runs of every
// other element.
template <typename Move>
void ForEachChunkedElement(bool is_value, int64_t t, int64_t d, Move&& move) {
  const int64_t base = t / kKvChunkRows * kKvChunkRows * d, r = t % kKvChunkRows;
  if (!is_value) {
    for (int64_t p = 0; p < d / 2; ++p) {
      const int64_t at = base + (p * kKvChunkRows + r) * 2;
      move(2 * p, at);
      move(2 * p + 1, at + 1);
    }
    return;
  }
  for (int64_t tile = 0; tile < d / 16; ++tile) {
    const int64_t at = base + (tile * (kKvChunkRows / 2) + r / 2) * 32 + r % 2;
    for (int64_t j = 0; j < 16; ++j) move(tile * 16 + j, at + 2 * j);
  }
}

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
  ForEachChunkedElement(is_value, t, d, [&](int64_t i, int64_t at) { row[i] = elements[at]; });
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
  ForEachChunkedElement(is_value, t, d,
                        [&](int64_t i, int64_t at) { elements[at] = converted[i]; });
}

}  // namespace strata::engine::cpu
