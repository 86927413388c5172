#include "engine/cpu/linear.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {

absl::StatusOr<Linear> Linear::Create(const std::vector<const TensorView*>& parts,
                                      DType compute) {
  if (compute != DType::kBF16 && compute != DType::kF32) {
    return absl::InvalidArgumentError("compute dtype must be BF16 or F32");
  }
  int64_t n = 0, k = 0;
  for (const TensorView* part : parts) {
    if (part->shape.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("weight ", part->name, " is not 2-D"));
    }
    if (k == 0) k = part->shape[1];
    if (part->shape[1] != k) {
      return absl::InvalidArgumentError(absl::StrCat("weight ", part->name, " has ",
                                                     part->shape[1], " columns, expected ", k));
    }
    n += part->shape[0];
  }
  if (n == 0 || k == 0) return absl::InvalidArgumentError("empty weight matrix");
  // Global row -> (part, local row), walking the parts in order as Pack asks
  // for rows in order.
  size_t part = 0;
  int64_t part_first = 0;
  auto row = [&](int64_t i, float* dst) {
    while (i - part_first >= parts[part]->shape[0]) part_first += parts[part++]->shape[0];
    const TensorView& view = *parts[part];
    const int64_t local = i - part_first;
    if (view.dtype == DType::kBF16) {
      ConvertBf16ToF32(reinterpret_cast<const uint16_t*>(view.data) + local * k, dst, k);
    } else if (view.dtype == DType::kF32) {
      std::memcpy(dst, reinterpret_cast<const float*>(view.data) + local * k,
                  static_cast<size_t>(k) * 4);
    } else {
      for (int64_t c = 0; c < k; ++c) dst[c] = view.ElementAsFloat(local * k + c);
    }
  };
  Linear linear;
  linear.weights_ = PackedMatrix::Pack(n, k, compute, row);
  return linear;
}

void Linear::Forward(const GemmContext& context, const void* src, const uint16_t* src_lo,
                     int64_t m, float* dst, bool accumulate, int64_t dst_stride) const {
  GemmArgs args;
  args.a = src;
  args.a_lo = src_lo;
  args.lda = cols();
  args.m = m;
  args.c = dst;
  args.ldc = dst_stride > 0 ? dst_stride : rows();
  args.accumulate = accumulate;
  Gemm(weights_, args, context.pool, context.path);
}

}  // namespace strata::engine::cpu
