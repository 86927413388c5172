// RMSNorm fused with the residual add against the CPU's RmsNormRow on the
// same sums, rounded to bf16 like the kernel's output.
#include "kernels/rmsnorm.h"

#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;

class RmsNormKernelTest : public ::testing::TestWithParam<int> {};

TEST_P(RmsNormKernelTest, MatchesCpuAndUpdatesTheResidual) {
  const int n = GetParam();
  constexpr int kRows = 7;
  constexpr float kEps = 1e-5f;
  const std::vector<float> x = testing::RandomNormal(kRows * n, 2, 3.0f);
  const std::vector<float> delta = testing::RandomNormal(kRows * n, 3);
  const std::vector<float> weight = testing::RandomNormal(n, 4);
  DeviceArray<float> d_x(x), d_delta(delta), d_weight(weight);
  DeviceArray<uint16_t> d_out(kRows * n);
  RmsNormParams p;
  p.residual = d_x.get();
  p.delta = d_delta.get();
  p.weight = d_weight.get();
  p.out = reinterpret_cast<__nv_bfloat16*>(d_out.get());
  p.rows = kRows;
  p.n = n;
  p.eps = kEps;
  ExpectRan(LaunchRmsNorm(p, nullptr));
  const std::vector<float> residual = d_x.Download();
  const std::vector<float> out = testing::FromBf16(d_out.Download());
  std::vector<float> sum(x.size()), expected(x.size());
  for (size_t i = 0; i < x.size(); ++i) sum[i] = x[i] + delta[i];
  for (int r = 0; r < kRows; ++r) {
    engine::cpu::RmsNormRow(sum.data() + r * n, weight.data(), n, kEps, expected.data() + r * n);
  }
  EXPECT_EQ(residual, sum);  // the fp32 add is exact and stored back
  for (size_t i = 0; i < out.size(); ++i) {
    // One bf16 rounding of a value whose fp32 sums differ in order only.
    ASSERT_NEAR(out[i], expected[i], std::fabs(expected[i]) * 8e-3f + 1e-6f) << i;
  }
}

TEST_P(RmsNormKernelTest, GathersRowsWithoutTouchingTheResidual) {
  const int n = GetParam();
  constexpr int kRows = 5;
  const std::vector<float> x = testing::RandomNormal(kRows * n, 5);
  const std::vector<float> delta = testing::RandomNormal(kRows * n, 6);
  const std::vector<float> weight = testing::RandomNormal(n, 7);
  const std::vector<int32_t> rows = {4, 0, 2};
  DeviceArray<float> d_x(x), d_delta(delta), d_weight(weight);
  DeviceArray<int32_t> d_rows(rows);
  DeviceArray<uint16_t> d_out(rows.size() * n);
  RmsNormParams p;
  p.residual = d_x.get();
  p.delta = d_delta.get();
  p.row_index = d_rows.get();
  p.weight = d_weight.get();
  p.out = reinterpret_cast<__nv_bfloat16*>(d_out.get());
  p.rows = static_cast<int>(rows.size());
  p.n = n;
  p.write_residual = false;
  ExpectRan(LaunchRmsNorm(p, nullptr));
  EXPECT_EQ(d_x.Download(), x);
  const std::vector<float> out = testing::FromBf16(d_out.Download());
  std::vector<float> sum(n), expected(n);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int j = 0; j < n; ++j) sum[j] = x[rows[i] * n + j] + delta[rows[i] * n + j];
    engine::cpu::RmsNormRow(sum.data(), weight.data(), n, p.eps, expected.data());
    for (int j = 0; j < n; ++j) {
      ASSERT_NEAR(out[i * n + j], expected[j], std::fabs(expected[j]) * 8e-3f + 1e-6f);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Widths, RmsNormKernelTest, ::testing::Values(64, 172, 4096));

}  // namespace
}  // namespace strata::kernels
