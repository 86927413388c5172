// The dispatcher over kernels/dispatch.h's table: calls f with the head dim
// as a compile-time constant, or returns cudaErrorInvalidValue for a
// combination outside the table (host code checks IsSupported first, so this
// is a guard, not a path).
#ifndef STRATA_KERNELS_DISPATCH_CUH_
#define STRATA_KERNELS_DISPATCH_CUH_

#include <cuda_runtime.h>

#include <type_traits>

#include "kernels/dispatch.h"

namespace strata::kernels {

template <typename F, int... Dims>
cudaError_t DispatchHeadDimIn(HeadDimList<Dims...>, int head_dim, F&& f) {
  cudaError_t result = cudaErrorInvalidValue;
  // Exactly one Dims matches a supported head_dim; the fold stops there.
  (void)((head_dim == Dims ? (result = f(std::integral_constant<int, Dims>{}), true) : false) ||
         ...);
  return result;
}

// f(std::integral_constant<int, D>) for the table's D == head_dim, when
// kv_dtype is in the table too.
template <typename F>
cudaError_t DispatchHeadDim(int head_dim, DType kv_dtype, F&& f) {
  if (!IsSupported(head_dim, kv_dtype)) return cudaErrorInvalidValue;
  return DispatchHeadDimIn(SupportedHeadDimList{}, head_dim, static_cast<F&&>(f));
}

}  // namespace strata::kernels

#endif  // STRATA_KERNELS_DISPATCH_CUH_
