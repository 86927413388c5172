// End to end through the scheduler and the CPU backend: device blocks
// evicted to the host tier, host evictions to the disk tier, prefixes
// promoted back, and every output exactly what a cold run gives.
#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "cache/block_hash.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/random_weights.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/server/tiered_cache_util.h"

namespace strata::server {
namespace {

using testing::ColdOutputs;
using testing::MakeRequest;
using testing::Options;
using testing::RunEach;
using testing::Tokens;

int64_t HitTokens(const scheduler::Scheduler& scheduler, cache::Tier tier) {
  return scheduler.cache_stats().hit_tokens[static_cast<int>(tier)];
}

// A (41 tokens: 10 full blocks before the last) then B, which needs every
// device block A left cached, then A again: its prefix comes back from the
// lower tier.
std::vector<scheduler::Request> EvictAndReturn() {
  return {MakeRequest(1, Tokens(41, 1)), MakeRequest(2, Tokens(41, 2)),
          MakeRequest(3, Tokens(41, 1))};
}

TEST(TieredCacheTest, HostHitGivesExactlyTheColdOutput) {
  absl::StatusOr<ServingEngine> serving = LoadServingEngine(testing::kModel, Options(11, 64));
  ASSERT_TRUE(serving.ok()) << serving.status();
  const auto requests = EvictAndReturn();
  scheduler::Scheduler scheduler(serving->scheduler_options);
  auto outputs = RunEach(scheduler, *serving->backend, requests);
  auto cold = ColdOutputs(requests);
  for (const auto& request : requests) EXPECT_EQ(outputs[request.id], cold[request.id]);
  EXPECT_EQ(HitTokens(scheduler, cache::Tier::kHost), 40);  // all 10 blocks of A
  EXPECT_EQ(scheduler.cache_stats().promoted_blocks, 10);
  EXPECT_GE(scheduler.cache_stats().demoted_blocks, 10);
}

TEST(TieredCacheTest, DiskHitWithoutHostTierGivesExactlyTheColdOutput) {
  strata::testing::TempDir dir;
  absl::StatusOr<ServingEngine> serving =
      LoadServingEngine(testing::kModel, Options(11, 0, (dir.path() / "kv").string(), 1 << 20));
  ASSERT_TRUE(serving.ok()) << serving.status();
  ASSERT_EQ(serving->tiers.host, nullptr);
  const auto requests = EvictAndReturn();
  {
    scheduler::Scheduler scheduler(serving->scheduler_options);
    auto outputs = RunEach(scheduler, *serving->backend, requests);
    auto cold = ColdOutputs(requests);
    for (const auto& request : requests) EXPECT_EQ(outputs[request.id], cold[request.id]);
    EXPECT_EQ(HitTokens(scheduler, cache::Tier::kDisk), 40);
  }
  EXPECT_GT(serving->tiers.disk->Stats().hits, 0u);
}

TEST(TieredCacheTest, DemotedBlocksAreBitIdenticalToTheArena) {
  strata::testing::TempDir dir;
  // Host tier of 4 blocks: most of A goes on to the disk tier.
  absl::StatusOr<ServingEngine> serving =
      LoadServingEngine(testing::kModel, Options(11, 4, (dir.path() / "kv").string(), 1 << 20));
  ASSERT_TRUE(serving.ok()) << serving.status();
  auto* cpu = dynamic_cast<engine::cpu::CpuBackend*>(serving->backend.get());
  ASSERT_NE(cpu, nullptr);
  scheduler::Scheduler scheduler(serving->scheduler_options);
  const auto requests = EvictAndReturn();
  RunEach(scheduler, *serving->backend, {requests[0]});
  // A alone filled the 11-block arena.
  std::vector<std::vector<std::byte>> arena;
  for (engine::BlockId id = 0; id < 11; ++id) {
    arena.emplace_back(testing::kBlockBytes);
    cpu->arena().ReadBlock(id, arena.back().data());
  }
  RunEach(scheduler, *serving->backend, {requests[1]});  // evicts A's blocks
  serving->tiers.disk->Flush();
  cache::BlockKey key = cache::RootKey(serving->scheduler_options.model_fingerprint, "");
  const std::vector<engine::TokenId>& tokens = requests[0].prompt_ids;
  int from_disk = 0;
  for (size_t i = 0; i < 10; ++i) {
    key = cache::HashBlock(key, absl::Span<const engine::TokenId>(tokens).subspan(i * 4, 4));
    std::unique_ptr<storage::TierStoreHandle> handle = serving->tiers.host->Lookup(key);
    if (handle == nullptr) {
      handle = serving->tiers.disk->Lookup(key);
      ++from_disk;
    }
    ASSERT_NE(handle, nullptr) << "block " << i;
    absl::Span<const std::byte> value = handle->Value();
    // Which arena block held it is the pool's choice: the bytes must be
    // exactly one of A's blocks, each block matched once.
    auto match = std::find(arena.begin(), arena.end(),
                           std::vector<std::byte>(value.begin(), value.end()));
    ASSERT_NE(match, arena.end()) << "block " << i << " differs from every arena block";
    match->clear();
  }
  EXPECT_GE(from_disk, 6);
}

// Random requests that share prefixes in different ways (same prompt, a
// prompt extending another, a shared head with different tails, and
// unrelated ones), run in random groups on a device arena, host tier and
// disk tier each too small to keep everything: blocks really travel
// device -> host -> disk -> device. Every output equals the cold one.
TEST(TieredCacheTest, RandomWorkloadsMatchColdRunsWhileBlocksTravel) {
  std::mt19937 rng(7);
  std::vector<std::vector<engine::TokenId>> bases;
  for (uint32_t i = 0; i < 4; ++i) bases.push_back(Tokens(48, 100 + i));
  std::vector<scheduler::Request> requests;
  for (int id = 1; id <= 40; ++id) {
    const auto& base = bases[rng() % bases.size()];
    std::vector<engine::TokenId> prompt(base.begin(), base.begin() + 8 + rng() % 40);
    if (rng() % 3 == 0) {  // a different tail after the shared head
      auto tail = Tokens(static_cast<int>(1 + rng() % 12), static_cast<uint32_t>(1000 + id));
      prompt.insert(prompt.end(), tail.begin(), tail.end());
    }
    requests.push_back(MakeRequest(id, prompt, static_cast<int>(1 + rng() % 5)));
  }
  strata::testing::TempDir dir;
  absl::StatusOr<ServingEngine> serving =
      LoadServingEngine(testing::kModel, Options(20, 8, (dir.path() / "kv").string(), 1 << 20));
  ASSERT_TRUE(serving.ok()) << serving.status();
  scheduler::SchedulerOptions options = serving->scheduler_options;
  options.max_batch_tokens = 24;  // chunked prefills next to decodes
  std::map<scheduler::RequestId, testing::Output> outputs;
  {
    scheduler::Scheduler scheduler(options);
    // In groups of up to 3 running together.
    for (size_t i = 0; i < requests.size();) {
      const size_t group = std::min<size_t>(1 + rng() % 3, requests.size() - i);
      for (size_t k = 0; k < group; ++k) ASSERT_TRUE(scheduler.AddRequest(requests[i + k]).ok());
      i += group;
      for (int step = 0; scheduler.HasWork() && step < 100000; ++step) {
        for (const scheduler::TokenEvent& event : RunStep(scheduler, *serving->backend)) {
          ASSERT_TRUE(event.error.ok()) << event.error;
          if (!event.token_id) continue;
          auto& out = outputs[event.request_id];
          out.tokens.push_back(*event.token_id);
          out.logprobs.push_back(event.sampled->logprob);
          for (const auto& top : event.sampled->top_logprobs) out.logprobs.push_back(top.logprob);
        }
      }
    }
    const cache::CacheStats& stats = scheduler.cache_stats();
    EXPECT_GT(stats.hit_tokens[static_cast<int>(cache::Tier::kDevice)], 0);
    EXPECT_GT(stats.hit_tokens[static_cast<int>(cache::Tier::kHost)], 0);
    EXPECT_GT(stats.hit_tokens[static_cast<int>(cache::Tier::kDisk)], 0);
  }
  EXPECT_GT(serving->tiers.host->Stats().evictions, 0u);  // host -> disk happened
  auto cold = ColdOutputs(requests);
  for (const auto& request : requests) {
    EXPECT_EQ(outputs[request.id], cold[request.id]) << "request " << request.id;
  }
}

TEST(TieredCacheTest, AnotherModelOnTheSameDirectoryMisses) {
  strata::testing::TempDir dir;
  const std::string path = (dir.path() / "kv").string();
  const auto requests = EvictAndReturn();
  {
    absl::StatusOr<ServingEngine> serving =
        LoadServingEngine(testing::kModel, Options(14, 0, path, 1 << 20));
    ASSERT_TRUE(serving.ok()) << serving.status();
    scheduler::Scheduler scheduler(serving->scheduler_options);
    RunEach(scheduler, *serving->backend, {requests[0], requests[1]});  // A on disk
  }
  // Same shapes and tokenizer, other weights: another fingerprint.
  absl::StatusOr<engine::LoadedModel> real = engine::LoadModel(testing::kModel);
  ASSERT_TRUE(real.ok());
  absl::StatusOr<engine::LoadedModel> other = engine::cpu::MakeRandomModel(real->config, 3);
  ASSERT_TRUE(other.ok()) << other.status();
  auto tokenizer = engine::Tokenizer::Load(testing::kModel);
  ASSERT_TRUE(tokenizer.ok());
  const ServingOptions options = Options(14, 0, path, 1 << 20);
  absl::StatusOr<cache::ModelFingerprint> fingerprint = FingerprintModel(
      *other, testing::kModel,
      {real->config.num_layers, real->config.num_kv_heads, real->config.head_dim, 4});
  ASSERT_TRUE(fingerprint.ok());
  absl::StatusOr<ServingEngine> serving =
      MakeServingEngine(*other, *std::move(tokenizer), *fingerprint, options);
  ASSERT_TRUE(serving.ok()) << serving.status();
  scheduler::Scheduler scheduler(serving->scheduler_options);
  RunEach(scheduler, *serving->backend, {requests[2]});
  EXPECT_EQ(HitTokens(scheduler, cache::Tier::kDisk), 0);
  EXPECT_EQ(scheduler.cache_stats().promoted_blocks, 0);
}

}  // namespace
}  // namespace strata::server
