// RotateHalves (engine/cpu/simd.h), the rotary embedding both the decoder
// and the blend re-rotation apply: against a double-precision rotation, for
// head sizes that fill whole vectors and ones that leave a masked tail, and
// leaving the rest of the row alone.
#include "engine/cpu/simd.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace strata::engine::cpu {
namespace {

TEST(RotateHalvesTest, RotatesEachPairLikeDoublePrecision) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> value(-4.0f, 4.0f), angle(-3.14f, 3.14f);
  for (int64_t half : {int64_t{1}, int64_t{3}, int64_t{16}, int64_t{32}, int64_t{40}, int64_t{64}}) {
    std::vector<float> v(static_cast<size_t>(2 * half + 5)), cos(static_cast<size_t>(half)),
        sin(cos.size());
    for (float& x : v) x = value(rng);
    for (size_t i = 0; i < cos.size(); ++i) {
      const float a = angle(rng);
      cos[i] = std::cos(a);
      sin[i] = std::sin(a);
    }
    const std::vector<float> before = v;
    RotateHalves(v.data(), cos.data(), sin.data(), half);
    for (int64_t i = 0; i < half; ++i) {
      const double a = before[static_cast<size_t>(i)], b = before[static_cast<size_t>(i + half)];
      const double c = cos[static_cast<size_t>(i)], s = sin[static_cast<size_t>(i)];
      EXPECT_NEAR(v[static_cast<size_t>(i)], a * c - b * s, 1e-5) << "half " << half << " i " << i;
      EXPECT_NEAR(v[static_cast<size_t>(i + half)], b * c + a * s, 1e-5)
          << "half " << half << " i " << i;
    }
    for (size_t i = static_cast<size_t>(2 * half); i < v.size(); ++i) {
      EXPECT_EQ(v[i], before[i]) << "past the head, half " << half;
    }
  }
}

TEST(RotateHalvesTest, RotatingBackRestoresTheRow) {
  const int64_t half = 40;
  std::vector<float> v(static_cast<size_t>(2 * half)), cos(static_cast<size_t>(half)),
      sin(cos.size()), minus_sin(cos.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.25f - 7.0f;
  for (size_t i = 0; i < cos.size(); ++i) {
    cos[i] = std::cos(0.1f * static_cast<float>(i));
    sin[i] = std::sin(0.1f * static_cast<float>(i));
    minus_sin[i] = -sin[i];
  }
  const std::vector<float> before = v;
  RotateHalves(v.data(), cos.data(), sin.data(), half);
  EXPECT_NE(v, before);
  RotateHalves(v.data(), cos.data(), minus_sin.data(), half);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], before[i], 1e-5) << i;
}

}  // namespace
}  // namespace strata::engine::cpu
