#include "engine/cpu/onednn_reference.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cpu/aligned_buffer.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace strata::engine::cpu {
namespace {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// The timing loop; oneDNN reports failures by exception, which stays here.
MatmulThroughput Time(int64_t m, int64_t n, int64_t k, int reps) {
  dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  dnnl::stream stream(engine);
  dnnl::memory::desc src_md({m, k}, dt::bf16, tag::ab);
  dnnl::memory::desc any_weights({k, n}, dt::bf16, tag::any);
  dnnl::memory::desc dst_md({m, n}, dt::f32, tag::ab);
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, any_weights, dst_md), engine);
  // Every buffer in huge pages, as the forward pass's own activations and
  // packed weights are (aligned_buffer.h): the yardstick gets the same
  // memory. Inputs: small bf16 values (0x3f80 is 1.0); their values do not
  // matter.
  AlignedBuffer a(static_cast<size_t>(m * k) * 2), b(static_cast<size_t>(k * n) * 2);
  std::fill_n(a.as<uint16_t>(), m * k, uint16_t{0x3f80});
  std::fill_n(b.as<uint16_t>(), k * n, uint16_t{0x3c00});
  AlignedBuffer packed(pd.weights_desc().get_size()), c(static_cast<size_t>(m * n) * 4);
  dnnl::memory src(src_md, engine, a.data());
  dnnl::memory plain_weights({{k, n}, dt::bf16, tag::ba}, engine, b.data());
  dnnl::memory weights(pd.weights_desc(), engine, packed.data());
  dnnl::reorder(plain_weights, weights).execute(stream, plain_weights, weights);
  dnnl::memory dst(dst_md, engine, c.data());
  dnnl::matmul matmul(pd);
  std::vector<double> samples;
  for (int rep = 0; rep <= reps; ++rep) {
    const auto start = std::chrono::steady_clock::now();
    matmul.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    stream.wait();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (rep > 0) samples.push_back(seconds);  // the first run warms caches
  }
  std::sort(samples.begin(), samples.end());
  MatmulThroughput out;
  out.seconds = samples[samples.size() / 2];
  out.gflops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) /
               out.seconds / 1e9;
  out.implementation = pd.impl_info_str();
  return out;
}

}  // namespace

absl::StatusOr<MatmulThroughput> MeasureOnednnBf16Matmul(int64_t m, int64_t n, int64_t k,
                                                          int threads, int reps) {
  if (m <= 0 || n <= 0 || k <= 0 || threads <= 0 || reps <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad matmul shape or repetitions: ", m, "x", n, "x", k, ", ", reps));
  }
  const int saved = omp_get_max_threads();
  omp_set_num_threads(threads);
  absl::StatusOr<MatmulThroughput> result;
  try {
    result = Time(m, n, k, reps);
  } catch (const dnnl::error& e) {
    result = absl::InternalError(absl::StrCat("oneDNN bf16 matmul failed: ", e.what()));
  }
  omp_set_num_threads(saved);
  return result;
}

}  // namespace strata::engine::cpu
