#include "server/grpc/refusal_gate.h"

#include <vector>

#include "gtest/gtest.h"

namespace strata::server {
namespace {

TEST(RefusalGateTest, RunsAtOnceUnlessHeldAndReleasesInOrder) {
  RefusalGate gate;
  std::vector<int> finished;
  gate.Refuse([&] { finished.push_back(1); });
  EXPECT_EQ(finished, std::vector<int>{1});
  gate.Hold();
  gate.Refuse([&] { finished.push_back(2); });
  gate.Refuse([&] { finished.push_back(3); });
  EXPECT_EQ(gate.held(), 2u);
  EXPECT_EQ(finished, std::vector<int>{1});
  gate.Release();
  EXPECT_EQ(gate.held(), 0u);
  EXPECT_EQ(finished, (std::vector<int>{1, 2, 3}));
  gate.Refuse([&] { finished.push_back(4); });
  EXPECT_EQ(finished, (std::vector<int>{1, 2, 3, 4}));
}

}  // namespace
}  // namespace strata::server
