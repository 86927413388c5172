// CHECK macros for invariants. Debian 12's abseil (20220623) predates
// absl/log, so Strata carries these few lines. A failed CHECK is a bug in
// Strata, never a response to bad input: input errors are absl::Status.
#ifndef STRATA_COMMON_CHECK_H_
#define STRATA_COMMON_CHECK_H_

#include <cstdio>
#include <cstdlib>

namespace strata::internal {

[[noreturn]] inline void CheckFailed(const char* file, int line, const char* condition) {
  std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, condition);
  std::abort();
}

}  // namespace strata::internal

#define STRATA_CHECK(condition)                                                       \
  do {                                                                                \
    if (!(condition)) ::strata::internal::CheckFailed(__FILE__, __LINE__, #condition); \
  } while (0)

#define CHECK(condition) STRATA_CHECK(condition)
#define CHECK_EQ(a, b) STRATA_CHECK((a) == (b))
#define CHECK_NE(a, b) STRATA_CHECK((a) != (b))
#define CHECK_LT(a, b) STRATA_CHECK((a) < (b))
#define CHECK_LE(a, b) STRATA_CHECK((a) <= (b))
#define CHECK_GT(a, b) STRATA_CHECK((a) > (b))
#define CHECK_GE(a, b) STRATA_CHECK((a) >= (b))

#endif  // STRATA_COMMON_CHECK_H_
