// Load versus recompute end to end: the EngineService with the real
// scheduler, the CPU backend and a real disk tier whose reads can be slowed
// (DiskTierOptions::read_delay_for_testing). With a fast disk a prefix
// evicted to disk is loaded back; once the disk has been measured far
// slower than prefill, the same kind of prefix is recomputed instead, with
// the same output. Decisions and counters are asserted, never durations.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string_view>
#include <vector>

#include "cache/block_hash.h"
#include "engine/cpu/random_weights.h"
#include "gtest/gtest.h"
#include "scheduler/engine_service.h"
#include "server/daemon/random_model.h"
#include "server/engine_setup.h"
#include "storage/disk_tier_store.h"
#include "tests/common/temp_dir.h"

namespace strata::server {
namespace {

constexpr int64_t kBlockSize = 16;
constexpr int kPromptTokens = 8 * kBlockSize + 1;  // 8 full blocks
constexpr int kDisk = static_cast<int>(cache::Tier::kDisk);

// Big enough that a 16-token block takes milliseconds to recompute on one
// thread, while reading its 64 KiB back from an undelayed disk takes far
// less; small enough to keep the test quick.
engine::ModelConfig Config() {
  engine::ModelConfig config;
  config.vocab_size = 512;
  config.hidden_size = 256;
  config.intermediate_size = 768;
  config.num_layers = 4;
  config.num_heads = 4;
  config.num_kv_heads = 4;
  config.head_dim = 64;
  config.max_position_embeddings = 512;
  config.tie_word_embeddings = true;
  return config;
}

std::vector<engine::TokenId> Prompt(uint32_t seed) {
  std::vector<engine::TokenId> ids;
  uint32_t state = seed * 2654435761u + 7;
  for (int i = 0; i < kPromptTokens; ++i) {
    state = state * 1664525u + 1013904223u;
    ids.push_back(static_cast<engine::TokenId>(3 + (state >> 8) % 500));
  }
  return ids;
}

struct Result {
  std::vector<engine::TokenId> tokens;
  scheduler::PromptUsage usage;
};

class LoadVsRecomputeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(Config(), 11);
    ASSERT_TRUE(model.ok()) << model.status();
    ServingOptions options;
    options.backend_options.threads = 1;
    options.cache.block_size = kBlockSize;
    // One prompt and its output exactly: the next prompt evicts all of it.
    options.cache.device_blocks = 9;
    absl::StatusOr<ServingEngine> serving = MakeServingEngine(
        *model, std::make_unique<NumberTokenizer>(512), cache::ModelFingerprint{1, 2}, options);
    ASSERT_TRUE(serving.ok()) << serving.status();
    serving_ = *std::move(serving);

    storage::DiskTierOptions disk;
    disk.path = (dir_.path() / "kv").string();
    disk.block_bytes = static_cast<size_t>(serving_.backend->kv_arena_info().bytes_per_block);
    disk.capacity_bytes = uint64_t{64} << 20;
    disk.model_fingerprint = 3;
    // Only the blob files, which hold the blocks' bytes: the SST files
    // RocksDB reads to flush stay quick.
    disk.read_delay_for_testing = [this](std::string_view file) {
      const bool blob = file.size() > 5 && file.substr(file.size() - 5) == ".blob";
      return std::chrono::microseconds(slow_.load() && blob ? 200'000 : 0);
    };
    absl::StatusOr<std::unique_ptr<storage::DiskTierStore>> opened =
        storage::DiskTierStore::Open(std::move(disk));
    ASSERT_TRUE(opened.ok()) << opened.status();
    disk_ = *std::move(opened);

    scheduler::EngineServiceOptions service;
    service.scheduler = serving_.scheduler_options;
    service.scheduler.disk_tier = disk_.get();
    service.scheduler.load_cost.policy = scheduler::LoadPolicy::kCost;
    service_ =
        std::make_unique<scheduler::EngineService>(service, *serving_.tokenizer, *serving_.backend);
  }

  void TearDown() override {
    service_.reset();  // before the disk tier it borrows
    disk_.reset();
  }

  Result Generate(const std::vector<engine::TokenId>& prompt) {
    scheduler::Request request{.prompt_ids = prompt};
    request.sampling.temperature = 0;
    request.sampling.max_tokens = 4;
    request.sampling.ignore_eos = true;
    auto result = std::make_shared<Result>();
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    absl::StatusOr<scheduler::RequestId> id =
        service_->Submit(request, [result, done](const scheduler::TokenEvent& event) {
          EXPECT_TRUE(event.error.ok()) << event.error;
          if (event.token_id) result->tokens.push_back(*event.token_id);
          if (event.finished) {
            if (event.usage) result->usage = *event.usage;
            done->set_value();
          }
        });
    EXPECT_TRUE(id.ok()) << id.status();
    if (id.ok()) finished.wait();
    return *result;
  }

  // `prompt` computed, evicted to the disk tier by another prompt, written
  // through, then asked for again: the second run's result.
  Result EvictToDiskAndReturn(uint32_t seed) {
    const Result first = Generate(Prompt(seed));
    Generate(Prompt(seed + 1000));  // takes every device block
    disk_->Flush();                 // read back from disk, not the write queue
    Result again = Generate(Prompt(seed));
    EXPECT_EQ(again.tokens, first.tokens) << "seed " << seed;
    return again;
  }

  scheduler::LoadCostStats Stats() {
    // A task on the engine thread runs after the previous step's snapshot.
    EXPECT_TRUE(service_->ValidateCacheForTesting().ok());
    return service_->Snapshot().load_costs;
  }

  testing::TempDir dir_;
  ServingEngine serving_;
  std::atomic<bool> slow_{false};
  std::unique_ptr<storage::DiskTierStore> disk_;
  std::unique_ptr<scheduler::EngineService> service_;
};

TEST_F(LoadVsRecomputeTest, LoadsFromAFastDiskAndRecomputesWhenTheDiskIsSlow) {
  // Fast disk. The first load goes ahead unmeasured and measures the disk.
  EXPECT_EQ(EvictToDiskAndReturn(1).usage.cached_tokens_by_tier[kDisk], 8 * kBlockSize);
  scheduler::LoadCostStats stats = Stats();
  EXPECT_GT(stats.prefill_samples, 0);
  EXPECT_EQ(stats.load_samples[kDisk], 1);
  // Measured now: reading 8 blocks beats computing 128 tokens.
  EXPECT_EQ(EvictToDiskAndReturn(2).usage.cached_tokens_by_tier[kDisk], 8 * kBlockSize);
  stats = Stats();
  EXPECT_EQ(stats.load_decisions, 2);
  EXPECT_EQ(stats.recompute_decisions, 0);
  EXPECT_GT(stats.read_bytes_per_second[kDisk], 0);

  // The disk slows down (200 ms per blob file read). The model still believes it
  // fast, loads once more, and measures it.
  slow_.store(true);
  EXPECT_EQ(EvictToDiskAndReturn(3).usage.cached_tokens_by_tier[kDisk], 8 * kBlockSize);
  stats = Stats();
  EXPECT_EQ(stats.load_decisions, 3);
  EXPECT_EQ(stats.load_samples[kDisk], 3);
  // Now recomputing the prompt is faster than reading it: the same kind of
  // request gets no disk tokens, the same output, and a recompute decision.
  const Result recomputed = EvictToDiskAndReturn(4);
  EXPECT_EQ(recomputed.usage.cached_tokens_by_tier[kDisk], 0);
  stats = Stats();
  EXPECT_EQ(stats.recompute_decisions, 1);
  EXPECT_EQ(stats.recomputed_blocks, 8);
  EXPECT_EQ(stats.load_decisions, 3);
  // The disk reads slower than prefill produces the same K/V.
  EXPECT_LT(stats.read_bytes_per_second[kDisk],
            stats.prefill_tokens_per_second / kBlockSize *
                static_cast<double>(serving_.backend->kv_arena_info().bytes_per_block));
}

}  // namespace
}  // namespace strata::server
