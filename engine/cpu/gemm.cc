#include "engine/cpu/gemm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "common/check.h"
#include "engine/cpu/gemm_kernels.h"
#include "engine/cpu/simd.h"
#include "engine/cpu/weight_slabs.h"

namespace strata::engine::cpu {
namespace {

using gemm_internal::Kernel;
using gemm_internal::KernelArgs;
using gemm_internal::KernelSet;
using gemm_internal::Mode;

inline float Bf16ToFloat(uint16_t v) {
  const uint32_t bits = static_cast<uint32_t>(v) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

// One row against one panel, element by element, in the same per-element
// order as the AVX2 kernels (k in order, hi before lo), without FMA.
template <Mode kMode>
void ScalarKernel(const KernelArgs& p) {
  const int64_t cols = std::min<int64_t>(kPanel, p.n_left);
  for (int64_t col = 0; col < cols; ++col) {
    float acc = 0.0f;
    if constexpr (kMode == Mode::kF32) {
      const auto* a = static_cast<const float*>(p.a);
      const auto* b = static_cast<const float*>(p.b) + col;
      for (int64_t k = 0; k < p.k; ++k) acc += a[k] * b[k * kPanel];
    } else {
      const auto* a = static_cast<const uint16_t*>(p.a);
      const auto* b = static_cast<const uint16_t*>(p.b) + 2 * col;
      for (int64_t k = 0; k < p.k; ++k) {
        const float w = Bf16ToFloat(b[(k / 2) * 2 * kPanel + k % 2]);
        acc += Bf16ToFloat(a[k]) * w;
        if constexpr (kMode == Mode::kBf16Split) acc += Bf16ToFloat(p.a_lo[k]) * w;
      }
    }
    p.c[col] = p.accumulate ? p.c[col] + acc : acc;
  }
}

KernelSet ScalarSet(Kernel kernel) {
  KernelSet set;
  set.rows[1] = kernel;
  return set;
}

}  // namespace

namespace gemm_internal {

const KernelSet& ScalarKernels(Mode mode) {
  static const KernelSet bf16 = ScalarSet(&ScalarKernel<Mode::kBf16>);
  static const KernelSet split = ScalarSet(&ScalarKernel<Mode::kBf16Split>);
  static const KernelSet f32 = ScalarSet(&ScalarKernel<Mode::kF32>);
  switch (mode) {
    case Mode::kBf16:
      return bf16;
    case Mode::kBf16Split:
      return split;
    case Mode::kF32:
      return f32;
  }
  return bf16;
}

}  // namespace gemm_internal

namespace {

const KernelSet& KernelsFor(GemmPath path, Mode mode) {
  switch (path) {
    case GemmPath::kAmxBf16:  // its bf16 modes bypass the kernel sets
    case GemmPath::kAvx512Bf16:
      return gemm_internal::Avx512Kernels(mode);
    case GemmPath::kAvx2:
      return gemm_internal::Avx2Kernels(mode);
    case GemmPath::kScalar:
      break;
  }
  return gemm_internal::ScalarKernels(mode);
}

// Up to this many rows, a GEMM is bound by streaming the weights.
constexpr int64_t kStreamRows = 32;

// Rows of A kept hot in L2 while every panel of a thread's range passes
// over them: about 512 KiB of A (and its residuals).
int64_t RowBlock(const KernelSet& set, int64_t k, int64_t a_bytes) {
  const int64_t rows = (int64_t{512} << 10) / std::max<int64_t>(1, k * a_bytes);
  return std::max<int64_t>(set.max_rows, rows / set.max_rows * set.max_rows);
}

struct Problem {
  bool amx;  // AMX tiles for the whole range (bf16 modes on kAmxBf16)
  gemm_internal::AmxProblem amx_problem;
  const PackedMatrix* w;
  const GemmArgs* g;
  const KernelSet* set;
  int64_t a_bytes;  // per A element, including the split residual
  int64_t a_size;   // bytes of one A element
  int64_t b_size;   // bytes of one packed weight
};

void CallKernel(const Problem& pr, Kernel kernel, int64_t row, int64_t panel) {
  const GemmArgs& g = *pr.g;
  KernelArgs args;
  args.a = static_cast<const std::byte*>(g.a) + row * g.lda * pr.a_size;
  args.a_lo = g.a_lo != nullptr ? g.a_lo + row * g.lda : nullptr;
  args.lda = g.lda;
  args.b = pr.w->data() + panel * pr.w->panel_stride() * pr.b_size;
  args.panel_stride = pr.w->panel_stride();
  args.k = pr.w->k();
  args.c = g.c + row * g.ldc + panel * kPanel;
  args.ldc = g.ldc;
  args.n_left = pr.w->n() - panel * kPanel;
  args.accumulate = g.accumulate;
  kernel(args);
}

// Rows [m0, m1) against panels [p0, p1). Which kernel computes a row never
// changes its result (see gemm_kernels.h), so blocking is free to follow m.
void RunRange(const Problem& pr, int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
  if (pr.amx) {
    gemm_internal::AmxRange(pr.amx_problem, m0, m1, p0, p1);
    return;
  }
  const KernelSet& set = *pr.set;
  const int64_t m = m1 - m0;
  if (m <= 0 || p0 >= p1) return;
  if (m <= set.wide_max_rows) {  // bandwidth-bound: stream panels once
    int64_t p = p0;
    for (; p + set.wide_panels <= p1; p += set.wide_panels) CallKernel(pr, set.wide[m], m0, p);
    for (; p < p1; ++p) CallKernel(pr, set.rows[m], m0, p);
    return;
  }
  const int64_t block = RowBlock(set, pr.w->k(), pr.a_bytes);
  for (int64_t mb = m0; mb < m1; mb += block) {
    const int64_t me = std::min(m1, mb + block);
    // One panel (<= 64 KiB for k <= 1024) stays in L1/L2 across the rows.
    for (int64_t p = p0; p < p1; ++p) {
      for (int64_t r = mb; r < me; r += set.max_rows) {
        const int64_t rows = std::min<int64_t>(set.max_rows, me - r);
        CallKernel(pr, set.rows[rows], r, p);
      }
    }
  }
}

}  // namespace

bool GemmPathSupported(GemmPath path) {
  __builtin_cpu_init();
  switch (path) {
    case GemmPath::kAmxBf16:
      return GemmPathSupported(GemmPath::kAvx512Bf16) && gemm_internal::AmxUsable();
    case GemmPath::kAvx512Bf16:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("fma");
    case GemmPath::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case GemmPath::kScalar:
      return true;
  }
  return false;
}

GemmPath BestGemmPath() {
  static const GemmPath best = [] {
    for (GemmPath path : {GemmPath::kAmxBf16, GemmPath::kAvx512Bf16, GemmPath::kAvx2}) {
      if (GemmPathSupported(path)) return path;
    }
    return GemmPath::kScalar;
  }();
  return best;
}

const char* GemmPathName(GemmPath path) {
  switch (path) {
    case GemmPath::kAmxBf16:
      return "amx";
    case GemmPath::kAvx512Bf16:
      return "avx512bf16";
    case GemmPath::kAvx2:
      return "avx2";
    case GemmPath::kScalar:
      return "scalar";
  }
  return "?";
}

PackedMatrix PackedMatrix::Pack(int64_t n, int64_t k, DType dtype,
                                const std::function<void(int64_t, float*)>& row) {
  CHECK(dtype == DType::kBF16 || dtype == DType::kF32);
  CHECK(n > 0 && k > 0);
  PackedMatrix out;
  out.n_ = n;
  out.k_ = k;
  out.dtype_ = dtype;
  const bool bf16 = dtype == DType::kBF16;
  out.panel_stride_ = bf16 ? ((k + 1) / 2 + 15) / 16 * 16 * 2 * kPanel : k * kPanel;
  const size_t bytes = static_cast<size_t>(out.panels() * out.panel_stride_) * DTypeSize(dtype);
  out.data_ = AllocateWeightMemory(bytes);
  std::memset(out.data_.get(), 0, bytes);  // padding columns and the odd-k partner
  std::vector<float> values(static_cast<size_t>(k));
  std::vector<uint16_t> rounded(static_cast<size_t>(k));
  for (int64_t i = 0; i < n; ++i) {
    row(i, values.data());
    const int64_t base = (i / kPanel) * out.panel_stride_;
    const int64_t col = i % kPanel;
    if (bf16) {
      ConvertF32ToBf16(values.data(), rounded.data(), k);
      uint16_t* dst = reinterpret_cast<uint16_t*>(out.data_.get()) + base + 2 * col;
      for (int64_t j = 0; j < k; ++j) dst[(j / 2) * 2 * kPanel + j % 2] = rounded[j];
    } else {
      float* dst = reinterpret_cast<float*>(out.data_.get()) + base + col;
      for (int64_t j = 0; j < k; ++j) dst[j * kPanel] = values[j];
    }
  }
  return out;
}

void PackedMatrix::RowToFloat(int64_t row, float* dst) const {
  const int64_t base = (row / kPanel) * panel_stride_;
  const int64_t col = row % kPanel;
  if (dtype_ == DType::kBF16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(data_.get()) + base + 2 * col;
    for (int64_t j = 0; j < k_; ++j) dst[j] = Bf16ToFloat(src[(j / 2) * 2 * kPanel + j % 2]);
  } else {
    const float* src = reinterpret_cast<const float*>(data_.get()) + base + col;
    for (int64_t j = 0; j < k_; ++j) dst[j] = src[j * kPanel];
  }
}

void Gemm(const PackedMatrix& w, const GemmArgs& args, ThreadPool* pool, GemmPath path) {
  if (args.m <= 0) return;
  CHECK(GemmPathSupported(path));
  CHECK(args.lda >= w.k() && args.ldc >= w.n());
  const bool f32 = w.dtype() == DType::kF32;
  CHECK(!(f32 && args.a_lo != nullptr));
  const Mode mode = f32 ? Mode::kF32 : (args.a_lo != nullptr ? Mode::kBf16Split : Mode::kBf16);
  const KernelSet& set = KernelsFor(path, mode);
  const int64_t a_size = f32 ? 4 : 2;
  Problem pr{path == GemmPath::kAmxBf16 && !f32,
             {static_cast<const uint16_t*>(args.a), args.a_lo, args.lda,
              reinterpret_cast<const uint16_t*>(w.data()), w.panel_stride(), w.n(), w.k(),
              args.c, args.ldc, args.accumulate},
             &w,
             &args,
             &set,
             a_size * (args.a_lo != nullptr ? 2 : 1),
             a_size,
             static_cast<int64_t>(DTypeSize(w.dtype()))};
  const int64_t m = args.m;
  const int64_t panels = w.panels();
  const int threads = pool != nullptr ? pool->size() : 1;
  // Below ~100k multiply-adds a second thread costs more than it saves.
  if (threads == 1 || m * w.n() * w.k() < (int64_t{1} << 17)) {
    RunRange(pr, 0, m, 0, panels);
    return;
  }
  // Few rows (decode): the weights stream from memory once, in pieces of a
  // few panels handed out dynamically, so that a thread the OS preempts (a
  // shared host) holds up the step by one piece rather than by its half.
  // A piece repacks its rows of A, which is free at this m.
  if (m <= kStreamRows && panels >= 2 * threads) {
    const int64_t pieces = std::min<int64_t>(panels, 8 * threads);
    pool->ParallelForDynamic(pieces, [&](int64_t piece) {
      RunRange(pr, 0, m, panels * piece / pieces, panels * (piece + 1) / pieces);
    });
    return;
  }
  // Split the columns while every thread gets a few panels; else the rows
  // (tiny models with long prompts), in whole groups of the main kernel.
  if (panels >= 4 * threads || m <= set.max_rows) {
    pool->Run([&](int t) {
      RunRange(pr, 0, m, panels * t / threads, panels * (t + 1) / threads);
    });
    return;
  }
  const int64_t groups = (m + set.max_rows - 1) / set.max_rows;
  pool->Run([&](int t) {
    const int64_t m0 = std::min(m, groups * t / threads * set.max_rows);
    const int64_t m1 = std::min(m, groups * (t + 1) / threads * set.max_rows);
    RunRange(pr, m0, m1, 0, panels);
  });
}

}  // namespace strata::engine::cpu
