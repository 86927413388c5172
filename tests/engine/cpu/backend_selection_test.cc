// engine.backend resolution (engine/backend.h): "auto", "cpu", "cuda" and
// unknown names. On machines without a usable GPU (CI, whose CUDA runtime
// reports the driver missing) "auto" must fall back to the CPU with the
// runtime's reason and "cuda" must fail with FAILED_PRECONDITION naming it.
// On a GPU machine the same binary (which links strata_cpu, not the cuda
// backend) checks the other branch: a device is found but "cuda" is not
// linked in. tests/engine/cuda/cuda_registration_test.cc covers a binary
// that links the cuda backend.
#include <string>

#include "engine/backend.h"
#include "engine/cpu/random_weights.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"
#if defined(STRATA_HAVE_CUDA)
#include "engine/cuda/device_probe.h"
#endif

namespace strata::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Why the CUDA backend cannot run in this binary, as the registry words it.
std::string ExpectedCudaReason() {
#if defined(STRATA_HAVE_CUDA)
  const cuda::CudaProbe& probe = cuda::ProbeCudaDevices();
  if (!probe.available()) return probe.error;
  return "";  // a device is present; this binary does not link the backend
#else
  return "strata was built without CUDA (STRATA_CUDA=OFF)";
#endif
}

TEST(BackendSelectionTest, CpuAndCudaResolveToThemselves) {
  auto cpu = ResolveBackendName("cpu");
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_EQ(cpu->name, "cpu");
  EXPECT_EQ(cpu->reason, "");
  auto cuda = ResolveBackendName("cuda");
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  EXPECT_EQ(cuda->name, "cuda");
}

TEST(BackendSelectionTest, UnknownNameIsNotFound) {
  auto choice = ResolveBackendName("tpu");
  EXPECT_EQ(choice.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(choice.status().message()), HasSubstr("known: cpu"));
  EXPECT_THAT(std::string(choice.status().message()), HasSubstr("auto"));
}

TEST(BackendSelectionTest, AutoIsNotARegistrableName) {
  EXPECT_EQ(RegisterBackend("auto", &cpu::CreateCpuBackend).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BackendSelectionTest, AutoFallsBackToCpuWithTheReason) {
  auto choice = ResolveBackendName("auto");
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->name, "cpu");
  const std::string reason = ExpectedCudaReason();
  if (!reason.empty()) {
    EXPECT_EQ(choice->reason, "CUDA unavailable: " + reason);
  } else {
    EXPECT_THAT(choice->reason, HasSubstr("not linked in"));
  }
}

TEST(BackendSelectionTest, CudaFailsAtStartWithAClearError) {
  auto model = cpu::MakeRandomModel(cpu::testing::TinyConfig(), 3);
  ASSERT_TRUE(model.ok()) << model.status();
  auto backend = CreateBackend("cuda", *model, {});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(backend.status().message());
  EXPECT_THAT(message, StartsWith("CUDA backend unavailable: "));
  const std::string reason = ExpectedCudaReason();
  EXPECT_THAT(message, HasSubstr(reason.empty() ? "not linked into this binary" : reason));
}

TEST(BackendSelectionTest, AutoCreatesTheCpuBackendHere) {
  auto model = cpu::MakeRandomModel(cpu::testing::TinyConfig(), 3);
  ASSERT_TRUE(model.ok()) << model.status();
  auto backend = CreateBackend("auto", *model, {.num_kv_blocks = 8});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->name(), "cpu");
}

#if defined(STRATA_HAVE_CUDA)
// The runtime's answer is cached and stable: the probe asks once.
TEST(BackendSelectionTest, ProbeIsStableAndExplainsAMissingDevice) {
  const cuda::CudaProbe& first = cuda::ProbeCudaDevices();
  const cuda::CudaProbe& second = cuda::ProbeCudaDevices();
  EXPECT_EQ(&first, &second);
  EXPECT_EQ(first.available(), first.error.empty());
  if (!first.available()) {
    EXPECT_EQ(first.device_count, 0);
  }
}
#endif

}  // namespace
}  // namespace strata::engine
