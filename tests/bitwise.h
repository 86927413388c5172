// The one comparison for tests that claim two computations give the same
// bits. A max-abs-difference of 0 is not that: it takes -0 for +0, and it
// passes a NaN (NaN - x is NaN, never greater than a tolerance). This
// compares the bytes of every element, and says where they first differ.
#ifndef STRATA_TESTS_BITWISE_H_
#define STRATA_TESTS_BITWISE_H_

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "absl/types/span.h"
#include "gtest/gtest.h"

namespace strata::testing {

template <typename T>
::testing::AssertionResult BitwiseEqual(absl::Span<const T> got, absl::Span<const T> want) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << want.size();
  }
  size_t first = got.size();
  size_t differing = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &want[i], sizeof(T)) == 0) continue;
    if (differing++ == 0) first = i;
  }
  if (differing == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differing << " of " << got.size()
                                       << " elements differ in their bits; the first at index "
                                       << first << ": " << got[first] << " vs " << want[first];
}

template <typename T>
::testing::AssertionResult BitwiseEqual(const std::vector<T>& got, const std::vector<T>& want) {
  return BitwiseEqual(absl::MakeConstSpan(got), absl::MakeConstSpan(want));
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_BITWISE_H_
