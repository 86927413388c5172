// The batch-invariant GEMM (engine/cpu/gemm.h) on every path this machine
// supports, the AVX2 and scalar paths forced explicitly so that AVX-512
// machines cover them too: accuracy against a double-precision reference for
// every precision mode, N and K tails, and the property the backend relies
// on, that a row's output is bitwise independent of m, of its position in the
// batch, of the other rows and of the thread count.
#include "engine/cpu/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/simd.h"
#include "engine/cpu/thread_pool.h"
#include "gtest/gtest.h"

namespace strata::engine::cpu {
namespace {

enum class Mode { kBf16, kBf16Split, kF32 };

struct Shape {
  int64_t m, n, k;
};

// Random inputs in the layout one mode's GEMM takes.
struct Problem {
  Mode mode;
  Shape shape;
  std::vector<float> w;       // [n, k], bf16-representable unless kF32
  std::vector<uint16_t> hi;   // [m, k] bf16 activations (bf16 modes)
  std::vector<uint16_t> lo;   // [m, k] residuals (split)
  std::vector<float> a32;     // [m, k] (kF32)
  PackedMatrix packed;

  const void* a() const { return mode == Mode::kF32 ? static_cast<const void*>(a32.data())
                                                    : static_cast<const void*>(hi.data()); }
  const uint16_t* a_lo() const { return mode == Mode::kBf16Split ? lo.data() : nullptr; }
  double Activation(int64_t row, int64_t col) const {
    const size_t i = static_cast<size_t>(row * shape.k + col);
    if (mode == Mode::kF32) return a32[i];
    float h, l = 0.0f;
    ConvertBf16ToF32(&hi[i], &h, 1);
    if (mode == Mode::kBf16Split) ConvertBf16ToF32(&lo[i], &l, 1);
    return static_cast<double>(h) + static_cast<double>(l);
  }
};

Problem MakeProblem(Mode mode, Shape s, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  Problem p{mode, s, {}, {}, {}, {}, {}};
  p.w.resize(static_cast<size_t>(s.n * s.k));
  for (float& v : p.w) v = dist(rng);
  if (mode != Mode::kF32) {  // make the weights exactly bf16
    std::vector<uint16_t> bits(p.w.size());
    ConvertF32ToBf16(p.w.data(), bits.data(), static_cast<int64_t>(bits.size()));
    ConvertBf16ToF32(bits.data(), p.w.data(), static_cast<int64_t>(bits.size()));
  }
  std::vector<float> a(static_cast<size_t>(s.m * s.k));
  for (float& v : a) v = dist(rng);
  if (mode == Mode::kF32) {
    p.a32 = a;
  } else {
    p.hi.resize(a.size());
    p.lo.resize(a.size());
    ConvertF32ToBf16Split(a.data(), p.hi.data(), p.lo.data(), static_cast<int64_t>(a.size()));
  }
  p.packed = PackedMatrix::Pack(s.n, s.k, mode == Mode::kF32 ? DType::kF32 : DType::kBF16,
                                [&](int64_t row, float* dst) {
                                  std::memcpy(dst, p.w.data() + row * s.k,
                                              static_cast<size_t>(s.k) * 4);
                                });
  return p;
}

// Rows [first, first + m) of the problem's A, one GEMM call.
std::vector<float> RunGemm(const Problem& p, GemmPath path, ThreadPool* pool, int64_t first,
                       int64_t m, const std::vector<float>* initial = nullptr) {
  const int64_t k = p.shape.k, n = p.shape.n;
  const int64_t size = p.mode == Mode::kF32 ? 4 : 2;
  GemmArgs args;
  args.a = static_cast<const std::byte*>(p.a()) + first * k * size;
  args.a_lo = p.a_lo() != nullptr ? p.a_lo() + first * k : nullptr;
  args.lda = k;
  args.m = m;
  std::vector<float> c(static_cast<size_t>(m * n), -7.0f);
  if (initial != nullptr) {
    std::copy(initial->begin() + first * n, initial->begin() + (first + m) * n, c.begin());
    args.accumulate = true;
  }
  args.c = c.data();
  args.ldc = n;
  Gemm(p.packed, args, pool, path);
  return c;
}

std::vector<GemmPath> SupportedPaths() {
  std::vector<GemmPath> paths;
  for (GemmPath path : {GemmPath::kAmxBf16, GemmPath::kAvx512Bf16, GemmPath::kAvx2,
                        GemmPath::kScalar}) {
    if (GemmPathSupported(path)) paths.push_back(path);
  }
  return paths;
}

const Shape kShapes[] = {{1, 1, 1},     {1, 32, 64},    {2, 33, 7},    {3, 100, 127},
                         {4, 64, 2},    {5, 31, 65},    {13, 130, 96}, {30, 200, 33},
                         {1, 1000, 96}, {100, 40, 257}, {257, 96, 64}, {16, 300, 768},
                         // Several 32-row blocks over several k ranges (AMX).
                         {80, 300, 1000}};

std::string Describe(GemmPath path, Mode mode, Shape s) {
  return std::string(GemmPathName(path)) + " mode " + std::to_string(static_cast<int>(mode)) +
         " m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k);
}

class GemmTest : public ::testing::TestWithParam<Mode> {};

TEST_P(GemmTest, MatchesDoublePrecisionReference) {
  ThreadPool pool(2);
  for (GemmPath path : SupportedPaths()) {
    for (const Shape& s : kShapes) {
      const Problem p = MakeProblem(GetParam(), s, 17);
      const std::vector<float> c = RunGemm(p, path, &pool, 0, s.m);
      double worst = 0.0;
      for (int64_t r = 0; r < s.m; ++r) {
        for (int64_t j = 0; j < s.n; ++j) {
          double want = 0.0, magnitude = 0.0;
          for (int64_t i = 0; i < s.k; ++i) {
            const double term = p.Activation(r, i) * p.w[static_cast<size_t>(j * s.k + i)];
            want += term;
            magnitude += std::fabs(term);
          }
          // fp32 accumulation over k terms: a few ulps of the magnitude.
          const double bound = 2.0 * static_cast<double>(s.k + 2) * 0x1p-24 * magnitude + 1e-30;
          const double error = std::fabs(c[static_cast<size_t>(r * s.n + j)] - want);
          worst = std::max(worst, error / bound);
          ASSERT_LE(error, bound) << Describe(path, GetParam(), s) << " at " << r << "," << j;
        }
      }
      if (s.k >= 256) {
        std::printf("%s: worst error %.3f of the bound\n", Describe(path, GetParam(), s).c_str(),
                    worst);
      }
    }
  }
}

TEST_P(GemmTest, RowsAreBitwiseIndependentOfTheBatch) {
  ThreadPool pool(2);
  std::mt19937 rng(5);
  for (GemmPath path : SupportedPaths()) {
    for (const Shape& s : kShapes) {
      const Problem p = MakeProblem(GetParam(), s, 23);
      const std::vector<float> whole = RunGemm(p, path, &pool, 0, s.m);
      const std::string what = Describe(path, GetParam(), s);
      // Every row alone (m = 1), on one thread.
      for (int64_t r = 0; r < s.m; ++r) {
        const std::vector<float> alone = RunGemm(p, path, nullptr, r, 1);
        ASSERT_EQ(0, std::memcmp(alone.data(), whole.data() + r * s.n, alone.size() * 4))
            << what << " row " << r;
      }
      // Random sub-batches at other offsets, so rows move between kernels.
      for (int trial = 0; trial < 4 && s.m > 1; ++trial) {
        const int64_t first = std::uniform_int_distribution<int64_t>(0, s.m - 1)(rng);
        const int64_t m = std::uniform_int_distribution<int64_t>(1, s.m - first)(rng);
        const std::vector<float> part = RunGemm(p, path, trial % 2 ? &pool : nullptr, first, m);
        ASSERT_EQ(0, std::memcmp(part.data(), whole.data() + first * s.n, part.size() * 4))
            << what << " rows " << first << "+" << m;
      }
      // Accumulating adds the same product: c + (A . W^T).
      std::vector<float> initial(whole.size());
      std::normal_distribution<float> dist;
      for (float& v : initial) v = dist(rng);
      const std::vector<float> summed = RunGemm(p, path, &pool, 0, s.m, &initial);
      for (size_t i = 0; i < summed.size(); ++i) {
        const float want = initial[i] + whole[i];
        ASSERT_EQ(0, std::memcmp(&summed[i], &want, 4)) << what << " element " << i;
      }
    }
  }
}

TEST_P(GemmTest, PackedRowsReadBack) {
  const Problem p = MakeProblem(GetParam(), {1, 45, 13}, 3);
  std::vector<float> row(13);
  for (int64_t r = 0; r < 45; ++r) {
    p.packed.RowToFloat(r, row.data());
    for (int64_t i = 0; i < 13; ++i) {
      EXPECT_EQ(row[static_cast<size_t>(i)], p.w[static_cast<size_t>(r * 13 + i)]);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, GemmTest,
                         ::testing::Values(Mode::kBf16, Mode::kBf16Split, Mode::kF32));

TEST(GemmPathTest, ScalarAndBestAreSupported) {
  EXPECT_TRUE(GemmPathSupported(GemmPath::kScalar));
  EXPECT_TRUE(GemmPathSupported(BestGemmPath()));
}

}  // namespace
}  // namespace strata::engine::cpu
