// The shape of the paged KV cache: the one thing the engine (which owns the
// arena) and cache/ and storage/ (which count, move and store its blocks)
// must agree on. Header-only and free of engine headers, so that cache/ and
// storage/ need not include or link the model library to size a block.
#ifndef STRATA_COMMON_KV_CACHE_SPEC_H_
#define STRATA_COMMON_KV_CACHE_SPEC_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace strata {

// Element types of tensors and of the KV cache.
enum class DType { kF32, kF16, kBF16 };

// Bytes per element of `dtype`.
constexpr size_t DTypeSize(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

// "F32", "F16", "BF16": the safetensors spelling.
constexpr std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
  }
  return "?";
}

// Blocks of `block_size` tokens needed to hold `num_tokens` tokens (> 0 block
// size; 0 tokens need 0 blocks).
constexpr int64_t BlocksFor(int64_t num_tokens, int64_t block_size) {
  return (num_tokens + block_size - 1) / block_size;
}

struct KvCacheSpec {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 0;  // tokens per block
  DType dtype = DType::kBF16;

  // One block holds K and V of every layer for block_size tokens. Outside
  // a backend's arena it is one contiguous region (its image): the unit
  // every tier moves, stores and checksums. (The CPU arena keeps the
  // block's head slices apart: engine/cpu/kv_arena.h.)
  constexpr int64_t BytesPerBlock() const {
    return 2 * num_layers * num_kv_heads * block_size * head_dim *
           static_cast<int64_t>(DTypeSize(dtype));
  }
};

}  // namespace strata

#endif  // STRATA_COMMON_KV_CACHE_SPEC_H_
