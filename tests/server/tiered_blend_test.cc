// CacheBlend chunks served from every tier: a blend request whose chunks
// were evicted to the host tier, to the disk tier, or survive only on disk
// across a restart gives exactly the output of a cold run, which computed
// its chunks on the spot.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/server/tiered_cache_util.h"

namespace strata::server {
namespace {

using testing::MakeRequest;
using testing::Options;
using testing::Output;
using testing::RunEach;
using testing::Tokens;

// BOS, chunks b and a (seen before in the other order), then a question.
scheduler::Request Blend(scheduler::RequestId id,
                         const std::vector<std::vector<engine::TokenId>>& chunks,
                         const std::vector<engine::TokenId>& question) {
  std::vector<engine::TokenId> prompt = {1};
  std::vector<scheduler::ChunkSpan> spans;
  for (const auto& chunk : chunks) {
    spans.push_back({static_cast<int64_t>(prompt.size()), static_cast<int64_t>(chunk.size())});
    prompt.insert(prompt.end(), chunk.begin(), chunk.end());
  }
  prompt.insert(prompt.end(), question.begin(), question.end());
  scheduler::Request request = MakeRequest(id, std::move(prompt), 5);
  request.chunks = std::move(spans);
  request.blend = scheduler::BlendOptions{};
  return request;
}

class TieredBlendTest : public ::testing::Test {
 protected:
  const std::vector<engine::TokenId> a_ = Tokens(22, 1), b_ = Tokens(15, 2);
  // Seen first (fills both chunks), then two long prompts that evict every
  // chunk block from the device, then the chunks again in the other order.
  std::vector<scheduler::Request> Workload() const {
    return {Blend(1, {a_, b_}, Tokens(4, 3)), MakeRequest(2, Tokens(110, 4), 4),
            MakeRequest(4, Tokens(110, 6), 4), Blend(3, {b_, a_}, Tokens(5, 5))};
  }
  Output Cold() const {
    absl::StatusOr<ServingEngine> serving = LoadServingEngine(testing::kModel, Options(80, 0));
    EXPECT_TRUE(serving.ok()) << serving.status();
    if (!serving.ok()) return {};
    scheduler::Scheduler scheduler(serving->scheduler_options);
    return RunEach(scheduler, *serving->backend, {Workload()[3]})[3];
  }
};

TEST_F(TieredBlendTest, ChunksFromTheHostTierGiveTheColdOutput) {
  absl::StatusOr<ServingEngine> serving = LoadServingEngine(testing::kModel, Options(32, 64));
  ASSERT_TRUE(serving.ok()) << serving.status();
  scheduler::Scheduler scheduler(serving->scheduler_options);
  auto outputs = RunEach(scheduler, *serving->backend, Workload());
  EXPECT_EQ(outputs[3], Cold());
  EXPECT_GT(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kHost)], 0);
  EXPECT_GT(scheduler.counters().blend_reused_tokens, 0);
}

TEST_F(TieredBlendTest, ChunksFromDiskAndAfterARestartGiveTheColdOutput) {
  strata::testing::TempDir dir;
  const std::string path = (dir.path() / "kv").string();
  const Output cold = Cold();
  {
    absl::StatusOr<ServingEngine> serving =
        LoadServingEngine(testing::kModel, Options(32, 0, path, 1 << 20));
    ASSERT_TRUE(serving.ok()) << serving.status();
    scheduler::Scheduler scheduler(serving->scheduler_options);
    auto outputs = RunEach(scheduler, *serving->backend, Workload());
    EXPECT_EQ(outputs[3], cold);
    EXPECT_GT(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)], 0);
    serving->tiers.disk->Flush();  // what the daemon does when it stops
  }
  // A new process on the same directory: the chunks come from disk only.
  absl::StatusOr<ServingEngine> restarted =
      LoadServingEngine(testing::kModel, Options(32, 0, path, 1 << 20));
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  scheduler::Scheduler scheduler(restarted->scheduler_options);
  auto outputs = RunEach(scheduler, *restarted->backend, {Workload()[3]});
  EXPECT_EQ(outputs[3], cold);
  EXPECT_GT(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDisk)], 0);
}

}  // namespace
}  // namespace strata::server
