// Borrowed, typed views of tensor bytes (weights in a mapped checkpoint, or
// buffers owned elsewhere). A view never owns memory.
#ifndef STRATA_ENGINE_TENSOR_VIEW_H_
#define STRATA_ENGINE_TENSOR_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/kv_cache_spec.h"

namespace strata::engine {

// Shared with cache/ and storage/ (common/kv_cache_spec.h).
using strata::DType;
using strata::DTypeName;
using strata::DTypeSize;

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  // Borrowed; valid while the owner (checkpoint mapping, buffer) lives.
  // May be unaligned: safetensors only guarantees byte alignment.
  const std::byte* data = nullptr;
  size_t nbytes = 0;

  bool empty() const { return data == nullptr; }
  int64_t NumElements() const;
  // Element i converted to float, whatever the dtype. For tests and slow paths.
  float ElementAsFloat(int64_t i) const;
};

}  // namespace strata::engine

#endif  // STRATA_ENGINE_TENSOR_VIEW_H_
