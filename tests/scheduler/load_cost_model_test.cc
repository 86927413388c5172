// LoadCostModel with injected measurements: which blocks it loads, how it
// learns, probes and counts.
#include "scheduler/load_cost_model.h"

#include <vector>

#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

using cache::Tier;

constexpr int64_t kBlockBytes = 1 << 20;  // 1 MiB
constexpr int64_t kBlockTokens = 16;

LoadCostOptions CostOptions() {
  LoadCostOptions options;
  options.policy = LoadPolicy::kCost;
  options.smoothing = 1.0;  // each measurement replaces the last: exact arithmetic
  options.min_prefill_tokens = 32;
  options.probe_every = 0;
  return options;
}

// Prefill at `tokens_per_second`; `tier` read at `bytes_per_second`.
void Measure(LoadCostModel& model, double tokens_per_second, Tier tier, double bytes_per_second) {
  model.RecordPrefill(1000, 1000 / tokens_per_second);
  model.RecordLoad(tier, 10 * kBlockBytes, 10 * kBlockBytes / bytes_per_second);
}

TEST(LoadCostModelTest, UnmeasuredLoadsEverything) {
  LoadCostModel model(CostOptions(), kBlockBytes, kBlockTokens);
  const std::vector<Tier> tiers(5, Tier::kDisk);
  EXPECT_EQ(model.BlocksToLoad(tiers), 5);  // nothing known: load, and learn
  model.RecordPrefill(1000, 1.0);
  EXPECT_EQ(model.BlocksToLoad(tiers), 5);  // the disk is still unmeasured
  EXPECT_EQ(model.stats().load_decisions, 2);
}

TEST(LoadCostModelTest, LoadsFromAFastDiskAndRecomputesFromASlowOne) {
  // A block: 16 tokens at 1000 tokens/s = 16 ms to recompute.
  LoadCostModel fast(CostOptions(), kBlockBytes, kBlockTokens);
  Measure(fast, 1000, Tier::kDisk, 1e9);  // 1 ms per block
  EXPECT_EQ(fast.BlocksToLoad(std::vector<Tier>(8, Tier::kDisk)), 8);

  LoadCostModel slow(CostOptions(), kBlockBytes, kBlockTokens);
  Measure(slow, 1000, Tier::kDisk, 1e7);  // 100 ms per block
  EXPECT_EQ(slow.BlocksToLoad(std::vector<Tier>(8, Tier::kDisk)), 0);
  const LoadCostStats stats = slow.stats();
  EXPECT_EQ(stats.recompute_decisions, 1);
  EXPECT_EQ(stats.load_decisions, 0);
  EXPECT_EQ(stats.recomputed_blocks, 8);
  EXPECT_NEAR(stats.read_bytes_per_second[static_cast<int>(Tier::kDisk)], 1e7, 1e-3);
  EXPECT_NEAR(stats.prefill_tokens_per_second, 1000, 1e-9);
}

TEST(LoadCostModelTest, TheBreakEvenFollowsThePrefillSpeed) {
  // The same 1e8 B/s disk (10.5 ms per block) against a block recomputed in
  // 16 ms (1000 tokens/s) and in 1.6 ms (10000 tokens/s).
  LoadCostModel model(CostOptions(), kBlockBytes, kBlockTokens);
  Measure(model, 1000, Tier::kDisk, 1e8);
  EXPECT_EQ(model.BlocksToLoad(std::vector<Tier>(4, Tier::kDisk)), 4);
  model.RecordPrefill(1000, 0.1);
  EXPECT_EQ(model.BlocksToLoad(std::vector<Tier>(4, Tier::kDisk)), 0);
}

TEST(LoadCostModelTest, MixedTiersLoadTheCheapLeadingRun) {
  LoadCostModel model(CostOptions(), kBlockBytes, kBlockTokens);
  Measure(model, 1000, Tier::kHost, 1e10);          // host: 0.1 ms per block
  model.RecordLoad(Tier::kDisk, kBlockBytes, 1.0);  // disk: 1 s per block
  // Host blocks first, then disk ones: load the host run only.
  const std::vector<Tier> tiers = {Tier::kHost, Tier::kHost, Tier::kHost, Tier::kDisk, Tier::kDisk};
  EXPECT_EQ(model.BlocksToLoad(tiers), 3);
  // A disk block the host blocks after it outweigh is still loaded (the
  // chain needs it): 1 s against 9 * 16 ms saved is not worth it, but
  // against 100 blocks of 16 ms it is.
  std::vector<Tier> gap = {Tier::kDisk};
  gap.resize(101, Tier::kHost);
  EXPECT_EQ(model.BlocksToLoad(gap), 101);
  std::vector<Tier> small_gap = {Tier::kDisk};
  small_gap.resize(10, Tier::kHost);
  EXPECT_EQ(model.BlocksToLoad(small_gap), 0);
  const LoadCostStats stats = model.stats();
  EXPECT_EQ(stats.partial_decisions, 1);
  EXPECT_EQ(stats.load_decisions, 1);
  EXPECT_EQ(stats.recompute_decisions, 1);
  EXPECT_EQ(stats.recomputed_blocks, 2 + 10);
}

TEST(LoadCostModelTest, ATierDeclinedManyTimesIsProbed) {
  LoadCostOptions options = CostOptions();
  options.probe_every = 3;
  LoadCostModel model(options, kBlockBytes, kBlockTokens);
  Measure(model, 1000, Tier::kDisk, 1e6);
  const std::vector<Tier> tiers(2, Tier::kDisk);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(model.BlocksToLoad(tiers), 0) << i;
  EXPECT_EQ(model.BlocksToLoad(tiers), 2);  // the probe
  EXPECT_EQ(model.stats().probes, 1);
  // The probe measured a fast disk: loads from now on.
  model.RecordLoad(Tier::kDisk, 2 * kBlockBytes, 2e-3);
  EXPECT_EQ(model.BlocksToLoad(tiers), 2);
  // A host-only decision neither probes nor resets the disk's count.
  EXPECT_EQ(model.BlocksToLoad(std::vector<Tier>(2, Tier::kHost)), 2);
  EXPECT_EQ(model.stats().probes, 1);
}

TEST(LoadCostModelTest, ForcedPoliciesIgnoreTheEstimates) {
  LoadCostOptions options = CostOptions();
  options.policy = LoadPolicy::kAlwaysLoad;
  LoadCostModel always(options, kBlockBytes, kBlockTokens);
  Measure(always, 1000, Tier::kDisk, 1e3);  // absurdly slow
  EXPECT_EQ(always.BlocksToLoad(std::vector<Tier>(3, Tier::kDisk)), 3);
  options.policy = LoadPolicy::kNeverLoad;
  LoadCostModel never(options, kBlockBytes, kBlockTokens);
  Measure(never, 1000, Tier::kHost, 1e12);
  EXPECT_EQ(never.BlocksToLoad(std::vector<Tier>(3, Tier::kHost)), 0);
  EXPECT_EQ(never.stats().recompute_decisions, 1);
}

TEST(LoadCostModelTest, MeansAreExponentiallyWeighted) {
  LoadCostOptions options = CostOptions();
  options.smoothing = 0.5;
  LoadCostModel model(options, kBlockBytes, kBlockTokens);
  model.RecordPrefill(100, 1.0);  // 10 ms per token
  model.RecordPrefill(100, 3.0);  // 30 ms: the mean is 20 ms
  EXPECT_DOUBLE_EQ(model.BlockRecomputeSeconds(), 16 * 0.02);
  EXPECT_NEAR(model.stats().prefill_tokens_per_second, 50, 1e-9);
  model.RecordLoad(Tier::kDisk, kBlockBytes, 1.0);
  model.RecordLoad(Tier::kDisk, kBlockBytes, 3.0);
  EXPECT_DOUBLE_EQ(model.BlockReadSeconds(Tier::kDisk), 2.0);
  EXPECT_EQ(model.stats().load_samples[static_cast<int>(Tier::kDisk)], 2);
}

TEST(LoadCostModelTest, OnlyPrefillSizedStepsWithoutMovesMeasure) {
  LoadCostModel model(CostOptions(), kBlockBytes, kBlockTokens);
  engine::StepPlan decode;
  for (int i = 0; i < 4; ++i) {
    decode.sequences.push_back(engine::SequenceStep{.seq_id = i, .token_ids = {7}});
  }
  model.RecordStep(decode, 0.5);  // 4 tokens: a decode step
  EXPECT_EQ(model.stats().prefill_samples, 0);
  engine::StepPlan prefill;
  prefill.sequences.push_back(
      engine::SequenceStep{.seq_id = 1, .token_ids = std::vector<engine::TokenId>(64, 5)});
  engine::StepPlan with_moves = prefill;
  with_moves.block_moves.push_back(engine::BlockMove{.src = 0, .dst = 1});
  model.RecordStep(with_moves, 10.0);
  EXPECT_EQ(model.stats().prefill_samples, 0);
  model.RecordStep(prefill, 0.064);
  EXPECT_EQ(model.stats().prefill_samples, 1);
  EXPECT_NEAR(model.stats().prefill_tokens_per_second, 1000, 1e-6);
}

}  // namespace
}  // namespace strata::scheduler
