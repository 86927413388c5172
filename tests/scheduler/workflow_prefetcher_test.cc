#include "scheduler/workflow_prefetcher.h"

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/host_tier_store.h"

namespace strata::scheduler {
namespace {

constexpr int64_t kBlockSize = 4;
const Clock::time_point kNow = Clock::time_point() + std::chrono::hours(1);

KvCacheSpec Spec() {
  return KvCacheSpec{.num_layers = 1,
                     .num_kv_heads = 1,
                     .head_dim = 4,
                     .block_size = kBlockSize,
                     .dtype = DType::kF32};
}

class WorkflowPrefetcherTest : public ::testing::Test {
 protected:
  WorkflowPrefetcherTest()
      : cache_(Spec(), 8, cache::ModelFingerprint{1, 2}),
        host_(storage::HostTierOptions{
            .block_bytes = static_cast<size_t>(cache_.bytes_per_block()),
            .capacity_bytes = static_cast<uint64_t>(16 * cache_.bytes_per_block())}) {}

  // Agent "a" of workflow "w" last computed 12 tokens (three blocks); the
  // host tier holds all three, each filled with its index.
  void SetUp() override {
    for (int i = 0; i < 13; ++i) turn_.tokens.push_back(100 + i);
    cache_.ExtendKeys("", turn_.tokens, 3, turn_.keys);
    ASSERT_EQ(turn_.keys.size(), 3u);
    for (size_t i = 0; i < turn_.keys.size(); ++i) {
      std::vector<std::byte> bytes(static_cast<size_t>(cache_.bytes_per_block()),
                                   static_cast<std::byte>(i + 1));
      ASSERT_TRUE(host_.Insert(turn_.keys[i], bytes).ok());
    }
    workflows_.RecordTurn(agent_, turn_, kNow);
  }

  // What one plan's prefetching recorded: Run into a fresh PlanBuilder.
  struct Planned {
    std::vector<engine::BlockMove> moves;
    std::vector<PrefetchFlight> flights;  // own the bytes the moves read
  };
  Planned Plan(WorkflowPrefetcher& prefetcher) {
    PlanBuilder builder(/*token_budget=*/0, {});
    prefetcher.Run(workflows_, builder);
    InflightMoves inflight = builder.TakeInflight();
    EXPECT_TRUE(inflight.promotions.empty() && inflight.swapped_out.empty());
    return Planned{builder.TakePlan().block_moves, std::move(inflight.prefetches)};
  }

  void MarkSoon() {
    const std::vector<std::string> next = {"a"};
    ASSERT_EQ(workflows_.MarkNext("", "w", next, kNow).size(), 1u);
  }

  cache::KvCacheManager cache_;
  storage::HostTierStore host_;
  KeyHolds holds_;
  WorkflowTracker workflows_{holds_, std::chrono::seconds(60)};
  const AgentKey agent_{"", "w", "a"};
  AgentTurn turn_;
};

TEST_F(WorkflowPrefetcherTest, PromotesAHeldAgentsBlocksAndRegistersThemAtWorkflowSoon) {
  MarkSoon();
  {
    WorkflowPrefetcher prefetcher(cache_, &host_, nullptr);
    prefetcher.Start(agent_, *workflows_.Find(agent_));
    EXPECT_EQ(prefetcher.num_pending(), 1);
    EXPECT_FALSE(prefetcher.HasReadsInFlight());  // host hits are ready at once
    Planned planned = Plan(prefetcher);
    const std::vector<engine::BlockMove>& moves = planned.moves;
    ASSERT_EQ(moves.size(), 3u);
    for (size_t i = 0; i < moves.size(); ++i) {
      EXPECT_EQ(moves[i].kind, engine::BlockMoveKind::kHostToDevice);
      ASSERT_EQ(moves[i].host_src.size(), static_cast<size_t>(cache_.bytes_per_block()));
      EXPECT_EQ(moves[i].host_src[0], static_cast<std::byte>(i + 1));  // in chain order
    }
    EXPECT_EQ(prefetcher.num_pending(), 0);
    ASSERT_EQ(planned.flights.size(), 1u);  // the plan carries the prefetch
    EXPECT_EQ(planned.flights[0].tiers.size(), 3u);
    EXPECT_EQ(cache_.num_indexed_blocks(), 0);  // registered only once the moves ran
    EXPECT_EQ(prefetcher.Finish(/*performed=*/true, std::move(planned.flights), workflows_, holds_),
              3);
  }
  const cache::CachedPrefix prefix = cache_.FindCachedPrefixByKeys(turn_.keys);
  ASSERT_EQ(prefix.blocks.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(cache_.pool().priority(prefix.blocks[i]), cache::Priority::kWorkflowSoon);
    EXPECT_EQ(cache_.pool().state(prefix.blocks[i]), cache::BlockState::kCached);
  }
  EXPECT_EQ(cache_.stats().promoted_blocks, 3);
  EXPECT_EQ(cache_.stats().queries, 0);  // a prefetch is not a query
  EXPECT_TRUE(cache_.Validate().ok()) << cache_.Validate();
}

TEST_F(WorkflowPrefetcherTest, MovesThatDidNotRunRegisterNothing) {
  MarkSoon();
  WorkflowPrefetcher prefetcher(cache_, &host_, nullptr);
  prefetcher.Start(agent_, *workflows_.Find(agent_));
  Planned planned = Plan(prefetcher);
  const std::vector<engine::BlockMove>& moves = planned.moves;
  ASSERT_EQ(moves.size(), 3u);
  EXPECT_EQ(prefetcher.Finish(/*performed=*/false, std::move(planned.flights), workflows_, holds_),
            0);
  EXPECT_EQ(cache_.num_indexed_blocks(), 0);
  EXPECT_EQ(cache_.num_free_blocks(), 8);
  EXPECT_TRUE(cache_.Validate().ok()) << cache_.Validate();
}

TEST_F(WorkflowPrefetcherTest, DropsAPrefetchWhoseAgentIsNoLongerHeld) {
  MarkSoon();
  WorkflowPrefetcher prefetcher(cache_, &host_, nullptr);
  prefetcher.Start(agent_, *workflows_.Find(agent_));
  prefetcher.Start(agent_, *workflows_.Find(agent_));  // one per agent
  EXPECT_EQ(prefetcher.num_pending(), 1);
  workflows_.OnAdmitted(agent_);  // its request came first
  Planned planned = Plan(prefetcher);
  const std::vector<engine::BlockMove>& moves = planned.moves;
  EXPECT_TRUE(moves.empty());
  EXPECT_EQ(prefetcher.num_pending(), 0);
}

TEST_F(WorkflowPrefetcherTest, TakesOnlyRoomNobodyHoldsAndLoadsOnlyPastTheDevicePrefix) {
  MarkSoon();
  // Block 0 of the agent is on the device already; six other blocks are
  // pinned: one block of room is left for blocks 1 and 2.
  {
    std::vector<TokenId> first(turn_.tokens.begin(), turn_.tokens.begin() + 5);
    cache::CachedPrefix none;
    ASSERT_TRUE(cache_.AddSequence(1, "", none, 4, 4).has_value());
    cache_.CommitFullBlocks(1, first, 4);
    cache_.Free(1);
    std::vector<TokenId> other;
    for (int i = 0; i < 25; ++i) other.push_back(300 + i);
    ASSERT_TRUE(cache_.AddSequence(2, "pinned", none, 24, 24).has_value());
    cache_.CommitFullBlocks(2, other, 24);
    cache_.SetPriority(2, cache::Priority::kSessionPinned);
    cache_.Free(2);
  }
  ASSERT_EQ(cache_.FindCachedPrefixByKeys(turn_.keys).blocks.size(), 1u);
  WorkflowPrefetcher prefetcher(cache_, &host_, nullptr);
  prefetcher.Start(agent_, *workflows_.Find(agent_));
  Planned planned = Plan(prefetcher);
  const std::vector<engine::BlockMove>& moves = planned.moves;
  ASSERT_EQ(moves.size(), 1u);
  EXPECT_EQ(moves[0].host_src[0], static_cast<std::byte>(2));  // block 1, after the device prefix
  EXPECT_EQ(prefetcher.Finish(true, std::move(planned.flights), workflows_, holds_), 1);
  EXPECT_EQ(cache_.FindCachedPrefixByKeys(turn_.keys).blocks.size(), 2u);
  EXPECT_EQ(cache_.stats().evicted_blocks, 0);  // nothing displaced
  EXPECT_TRUE(cache_.Validate().ok()) << cache_.Validate();
}

// Agent b's last turn fills the whole device (8 blocks, cached); a's three
// blocks are on the host. Whether a's prefetch may displace b depends on
// which of them runs first.
class WorkflowPrefetcherOrderTest : public WorkflowPrefetcherTest {
 protected:
  void SetUp() override {
    WorkflowPrefetcherTest::SetUp();
    for (int i = 0; i < 33; ++i) b_turn_.tokens.push_back(500 + i);
    cache_.ExtendKeys("", b_turn_.tokens, 8, b_turn_.keys);
    ASSERT_TRUE(cache_.AddSequence(1, "", cache::CachedPrefix{}, 32, 32).has_value());
    cache_.CommitFullBlocks(1, b_turn_.tokens, 32);
    cache_.Free(1);
    workflows_.RecordTurn(b_, b_turn_, kNow);
  }

  // What the scheduler does after each change of holds.
  void ApplyHolds() {
    for (const cache::BlockKey& key : holds_.TakeChanged()) {
      if (std::optional<cache::BlockId> block = cache_.IndexedBlock(key)) {
        cache_.SetPriority(absl::Span<const cache::BlockId>(&*block, 1), holds_.Effective(key));
      }
    }
  }

  const AgentKey b_{"", "w", "b"};
  AgentTurn b_turn_;
};

TEST_F(WorkflowPrefetcherOrderTest, AnAgentThatRunsSoonerTakesTheRoomOfOneThatRunsLater) {
  const std::vector<std::string> order = {"a", "b"};
  ASSERT_EQ(workflows_.MarkNext("", "w", order, kNow).size(), 2u);
  ApplyHolds();
  WorkflowPrefetcher prefetcher(cache_, &host_, nullptr);
  prefetcher.Start(agent_, *workflows_.Find(agent_));
  Planned planned = Plan(prefetcher);
  const std::vector<engine::BlockMove>& moves = planned.moves;
  ASSERT_EQ(moves.size(), 3u);
  EXPECT_EQ(prefetcher.Finish(true, std::move(planned.flights), workflows_, holds_), 3);
  EXPECT_EQ(cache_.FindCachedPrefixByKeys(turn_.keys).blocks.size(), 3u);
  // b lost its last three blocks, not its first: its prefix still hits.
  EXPECT_EQ(cache_.FindCachedPrefixByKeys(b_turn_.keys).blocks.size(), 5u);
  EXPECT_TRUE(cache_.Validate().ok()) << cache_.Validate();
}

TEST_F(WorkflowPrefetcherOrderTest, AnAgentThatRunsLaterDoesNotDisplaceOneThatRunsSooner) {
  const std::vector<std::string> order = {"b", "a"};
  ASSERT_EQ(workflows_.MarkNext("", "w", order, kNow).size(), 2u);
  ApplyHolds();
  WorkflowPrefetcher prefetcher(cache_, &host_, nullptr);
  prefetcher.Start(agent_, *workflows_.Find(agent_));
  Planned planned = Plan(prefetcher);
  const std::vector<engine::BlockMove>& moves = planned.moves;
  EXPECT_TRUE(moves.empty());
  EXPECT_EQ(prefetcher.num_pending(), 0);  // a guess with no room is dropped
  EXPECT_EQ(cache_.FindCachedPrefixByKeys(b_turn_.keys).blocks.size(), 8u);
}

}  // namespace
}  // namespace strata::scheduler
