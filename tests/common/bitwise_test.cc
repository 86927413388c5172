// The bitwise comparison the exactness tests share (tests/bitwise.h) catches
// what a zero tolerance lets through.
#include "tests/bitwise.h"

#include <cmath>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace strata::testing {
namespace {

TEST(BitwiseEqualTest, SignedZerosAndNansAreToldApart) {
  EXPECT_TRUE(BitwiseEqual(std::vector<float>{1.5f, 0.0f}, std::vector<float>{1.5f, 0.0f}));
  // A max-abs-difference of 0 passes both of these.
  EXPECT_FALSE(BitwiseEqual(std::vector<float>{0.0f}, std::vector<float>{-0.0f}));
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(BitwiseEqual(std::vector<float>{nan}, std::vector<float>{1.0f}));
  EXPECT_TRUE(BitwiseEqual(std::vector<float>{nan}, std::vector<float>{nan}));
  EXPECT_FALSE(BitwiseEqual(std::vector<float>{nan}, std::vector<float>{-nan}));
}

TEST(BitwiseEqualTest, SaysWhereAndHowManyDiffer) {
  ::testing::AssertionResult result =
      BitwiseEqual(std::vector<float>{1, 2, 3, 4}, std::vector<float>{1, 2.5f, 3, 4.5f});
  ASSERT_FALSE(result);
  EXPECT_STREQ(result.message(),
               "2 of 4 elements differ in their bits; the first at index 1: 2 vs 2.5");
  EXPECT_FALSE(BitwiseEqual(std::vector<int>{1}, std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace strata::testing
