#include "engine/tensor_view.h"

#include <cstring>

#include "common/check.h"

namespace strata::engine {
namespace {

// IEEE half to float, exact for every finite value, infinities and NaN.
float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, sizeof(out));
  return out;
}

}  // namespace

int64_t TensorView::NumElements() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

float TensorView::ElementAsFloat(int64_t i) const {
  CHECK(data != nullptr);
  CHECK_GE(i, 0);
  CHECK_LT(static_cast<size_t>(i) * DTypeSize(dtype), nbytes);
  switch (dtype) {
    case DType::kF32: {
      float value;
      std::memcpy(&value, data + i * 4, 4);
      return value;
    }
    case DType::kF16: {
      uint16_t half;
      std::memcpy(&half, data + i * 2, 2);
      return HalfToFloat(half);
    }
    case DType::kBF16: {
      uint16_t bf16;
      std::memcpy(&bf16, data + i * 2, 2);
      uint32_t bits = static_cast<uint32_t>(bf16) << 16;
      float value;
      std::memcpy(&value, &bits, 4);
      return value;
    }
  }
  return 0.0f;
}

}  // namespace strata::engine
