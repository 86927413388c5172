#include "engine/cpu/linear.h"

#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/check.h"
#include "engine/cpu/simd.h"

namespace strata::engine::cpu {

AlignedBuffer::AlignedBuffer(size_t bytes) : size_(bytes) {
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
  CHECK(p != nullptr);
  data_.reset(static_cast<std::byte*>(p));
}

void AlignedBuffer::Free::operator()(std::byte* p) const { std::free(p); }

absl::StatusOr<Linear> Linear::Create(const std::vector<const TensorView*>& parts,
                                      DType compute) {
  if (compute != DType::kBF16 && compute != DType::kF32) {
    return absl::InvalidArgumentError("compute dtype must be BF16 or F32");
  }
  Linear linear;
  linear.dtype_ = compute;
  for (const TensorView* part : parts) {
    if (part->shape.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("weight ", part->name, " is not 2-D"));
    }
    if (linear.k_ == 0) linear.k_ = part->shape[1];
    if (part->shape[1] != linear.k_) {
      return absl::InvalidArgumentError(absl::StrCat("weight ", part->name, " has ",
                                                     part->shape[1], " columns, expected ",
                                                     linear.k_));
    }
    linear.n_ += part->shape[0];
  }
  const size_t elements = static_cast<size_t>(linear.n_ * linear.k_);
  linear.weights_ = AlignedBuffer(elements * DTypeSize(compute));
  size_t offset = 0;
  std::vector<float> row(static_cast<size_t>(linear.k_));
  for (const TensorView* part : parts) {
    const int64_t count = part->NumElements();
    if (part->dtype == compute) {  // bit copy: bf16 checkpoints lose nothing
      std::memcpy(linear.weights_.data() + offset * DTypeSize(compute), part->data,
                  static_cast<size_t>(count) * DTypeSize(compute));
    } else {
      for (int64_t r = 0; r < part->shape[0]; ++r) {
        for (int64_t c = 0; c < linear.k_; ++c)
          row[static_cast<size_t>(c)] = part->ElementAsFloat(r * linear.k_ + c);
        const size_t at = offset + static_cast<size_t>(r * linear.k_);
        if (compute == DType::kBF16) {
          ConvertF32ToBf16(row.data(), linear.weights_.as<uint16_t>() + at, linear.k_);
        } else {
          std::memcpy(linear.weights_.as<float>() + at, row.data(), row.size() * 4);
        }
      }
    }
    offset += static_cast<size_t>(count);
  }
  return linear;
}

dnnl::matmul& Linear::Primitive(GemmContext& context, int64_t m, bool accumulate) {
  const int64_t key = m * 2 + (accumulate ? 1 : 0);
  auto it = primitives_.find(key);
  if (it != primitives_.end()) return it->second;
  // Bounded: step sizes repeat, but never let a long run grow without limit.
  if (primitives_.size() > 256) primitives_.clear();
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const dt in = dtype_ == DType::kBF16 ? dt::bf16 : dt::f32;
  dnnl::memory::desc src({m, k_}, in, tag::ab);
  dnnl::memory::desc weights({k_, n_}, in, tag::ba);  // our [n, k] rows, transposed
  dnnl::memory::desc dst({m, n_}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (accumulate) {
    dnnl::post_ops ops;
    ops.append_sum(1.0f);
    attr.set_post_ops(ops);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src, weights, dst), attr, context.engine);
  return primitives_.emplace(key, dnnl::matmul(pd)).first->second;
}

void Linear::Forward(GemmContext& context, const void* src, const uint16_t* src_lo, int64_t m,
                     float* dst, bool accumulate) {
  if (m <= 0) return;
  if (dtype_ == DType::kBF16 && m <= context.gemv_max_rows) {
    const auto* x = static_cast<const uint16_t*>(src);
    const auto* w = weights_.as<uint16_t>();
    context.pool->ParallelFor(n_, 16, [&](int64_t begin, int64_t end) {
      GemvBf16(x, src_lo, m, k_, w, begin, end, dst, n_, accumulate);
    });
    return;
  }
  Matmul(context, src, m, dst, accumulate);
  if (src_lo != nullptr) Matmul(context, src_lo, m, dst, true);
}

void Linear::Matmul(GemmContext& context, const void* src, int64_t m, float* dst,
                    bool accumulate) {
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  const dt in = dtype_ == DType::kBF16 ? dt::bf16 : dt::f32;
  dnnl::memory src_mem({{m, k_}, in, tag::ab}, context.engine, const_cast<void*>(src));
  dnnl::memory w_mem({{k_, n_}, in, tag::ba}, context.engine, weights_.data());
  dnnl::memory dst_mem({{m, n_}, dt::f32, tag::ab}, context.engine, dst);
  Primitive(context, m, accumulate)
      .execute(context.stream,
               {{DNNL_ARG_SRC, src_mem}, {DNNL_ARG_WEIGHTS, w_mem}, {DNNL_ARG_DST, dst_mem}});
  context.stream.wait();
}

}  // namespace strata::engine::cpu
