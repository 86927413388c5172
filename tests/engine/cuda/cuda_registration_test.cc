// On a machine with a GPU, in a binary that links the cuda backend: "cuda"
// is registered, "auto" picks it, and both create a working backend.
#include <algorithm>

#include "engine/backend.h"
#include "engine/cuda/device_probe.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace strata::engine::cuda {
namespace {

TEST(CudaRegistrationTest, AutoPicksCudaWhenADeviceIsUsable) {
  ASSERT_TRUE(CudaBackendRegistered());
  const std::vector<std::string> names = RegisteredBackendNames();
  EXPECT_NE(std::find(names.begin(), names.end(), "cuda"), names.end());
  ASSERT_TRUE(ProbeCudaDevices().available()) << ProbeCudaDevices().error;
  auto choice = ResolveBackendName("auto");
  ASSERT_TRUE(choice.ok()) << choice.status();
  EXPECT_EQ(choice->name, "cuda");
  auto model = cpu::MakeRandomModel(testing::RandomConfig(64), 1);
  ASSERT_TRUE(model.ok()) << model.status();
  for (const char* name : {"auto", "cuda"}) {
    auto backend = CreateBackend(name, *model, {.num_kv_blocks = 16});
    ASSERT_TRUE(backend.ok()) << backend.status();
    EXPECT_EQ((*backend)->name(), "cuda");
    EXPECT_EQ((*backend)->kv_arena_info().num_blocks, 16);
  }
}

}  // namespace
}  // namespace strata::engine::cuda
