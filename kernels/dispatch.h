// The one table of what the attention-shaped kernels support: head_dim x KV
// dtype. Host code (engine/cuda) asks IsSupported before creating a backend;
// the launchers (kernels/*.cu) dispatch through DispatchHeadDim
// (kernels/dispatch.cuh), which instantiates exactly these head dims, so a
// combination outside the table is refused in one place, with one message.
// Plain C++: included by host code and by nvcc alike. Thread-safe (constants).
#ifndef STRATA_KERNELS_DISPATCH_H_
#define STRATA_KERNELS_DISPATCH_H_

#include <array>
#include <cstdint>
#include <string>

namespace strata::kernels {

// Element types the kernels name. bf16 is passed as __nv_bfloat16 in device
// code and as its 16-bit pattern where host code fills buffers.
enum class DType : int { kF32 = 0, kBF16 = 1 };

template <int... Dims>
struct HeadDimList {};

// THE table. Head dims every attention, RoPE and KV kernel is compiled for:
// multiples of 16 (the bf16 MMA's k, and 16-byte vector loads of bf16).
using SupportedHeadDimList = HeadDimList<16, 32, 64, 128>;
// The KV cache dtypes the paged kernels read and write.
inline constexpr DType kSupportedKvDTypes[] = {DType::kBF16};

template <int... Dims>
constexpr std::array<int, sizeof...(Dims)> HeadDimArray(HeadDimList<Dims...>) {
  return {Dims...};
}
// The same head dims as values, for host-side checks and messages.
inline constexpr auto kSupportedHeadDims = HeadDimArray(SupportedHeadDimList{});

constexpr bool IsSupportedHeadDim(int head_dim) {
  for (int d : kSupportedHeadDims) {
    if (d == head_dim) return true;
  }
  return false;
}

constexpr bool IsSupportedKvDType(DType dtype) {
  for (DType d : kSupportedKvDTypes) {
    if (d == dtype) return true;
  }
  return false;
}

constexpr bool IsSupported(int head_dim, DType kv_dtype) {
  return IsSupportedHeadDim(head_dim) && IsSupportedKvDType(kv_dtype);
}

// "head_dim in {16, 32, 64, 128} with a BF16 KV cache", for error messages.
inline std::string SupportedCombinations() {
  std::string out = "head_dim in {";
  bool first = true;
  for (int d : kSupportedHeadDims) {
    if (!first) out.append(", ");
    out.append(std::to_string(d));
    first = false;
  }
  out.append("} with a BF16 KV cache");
  return out;
}

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_DISPATCH_H_
