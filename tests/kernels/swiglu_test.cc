// SwiGLU against the CPU's SiluMul, rounded to bf16.
#include "kernels/swiglu.h"

#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;

TEST(SwiGluKernelTest, MatchesCpuSiluMul) {
  constexpr int kRows = 9, kN = 344;
  const std::vector<float> gate_up = testing::RandomNormal(kRows * 2 * kN, 8, 4.0f);
  DeviceArray<float> d_in(gate_up);
  DeviceArray<uint16_t> d_out(kRows * kN);
  SwiGluParams p;
  p.gate_up = d_in.get();
  p.out = reinterpret_cast<__nv_bfloat16*>(d_out.get());
  p.rows = kRows;
  p.n = kN;
  ExpectRan(LaunchSwiGlu(p, nullptr));
  const std::vector<float> out = testing::FromBf16(d_out.Download());
  std::vector<float> expected(kN);
  for (int r = 0; r < kRows; ++r) {
    const float* row = gate_up.data() + r * 2 * kN;
    engine::cpu::SiluMul(row, row + kN, kN, expected.data());
    for (int i = 0; i < kN; ++i) {
      ASSERT_NEAR(out[r * kN + i], expected[i], std::fabs(expected[i]) * 8e-3f + 1e-6f);
    }
  }
}

}  // namespace
}  // namespace strata::kernels
