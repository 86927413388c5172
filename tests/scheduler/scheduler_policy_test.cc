// The scheduler's policies end to end on the fake backend: cache-aware
// ordering and its ageing bound, grouping of a shared uncached prefix,
// session pinning and expiry, and workflow prefetch from the host tier.
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/scheduler.h"
#include "storage/host_tier_store.h"
#include "tests/mocks/fake_tier_store.h"
#include "tests/scheduler/scheduler_fixture.h"

namespace strata::scheduler {
namespace {

using testing::FakeBackend;

class SchedulerPolicyTest : public testing::SchedulerFixture {
 protected:
  // The first request each scheduler step ran after `from`, in order, one
  // entry per request.
  static std::vector<RequestId> AdmissionOrder(const FakeBackend& backend, size_t from) {
    std::vector<RequestId> order;
    for (size_t i = from; i < backend.steps_.size(); ++i) {
      const RequestId id = backend.steps_[i].seq_id;
      if (std::find(order.begin(), order.end(), id) == order.end()) order.push_back(id);
    }
    return order;
  }

  static std::vector<TokenId> Concat(std::vector<TokenId> a, const std::vector<TokenId>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  static std::vector<cache::Priority> Priorities(const Scheduler& scheduler,
                                                 const std::vector<TokenId>& tokens) {
    std::vector<cache::Priority> out;
    for (cache::BlockId block : scheduler.kv_cache().FindCachedPrefix("", tokens).blocks) {
      out.push_back(scheduler.kv_cache().pool().priority(block));
    }
    return out;
  }

  Clock::time_point now_ = Clock::time_point() + std::chrono::hours(1);
};

// A 16-token document warms the cache; then a cold request arrives before
// one that extends the document. With max_running 1 the policy decides who
// goes first.
TEST_F(SchedulerPolicyTest, CacheAwareAdmitsTheLongestCachedPrefixFirstAndFcfsByArrival) {
  for (SchedulingPolicy policy : {SchedulingPolicy::kCacheAware, SchedulingPolicy::kFcfs}) {
    SchedulerOptions options = Options(64, 64);
    options.max_running = 1;
    options.policy = policy;
    options.now = [this] { return now_; };
    Scheduler scheduler(options);
    FakeBackend backend;
    Request warm = MakeRequest(1, 16, 1);
    ASSERT_TRUE(scheduler.AddRequest(warm).ok());
    RunAll(scheduler, backend);
    const size_t from = backend.steps_.size();
    Request cold = MakeRequest(2, 17, 2);
    Request hit = MakeRequest(3, 0, 2);
    hit.prompt_ids = Concat(warm.prompt_ids, {77});
    ASSERT_TRUE(scheduler.AddRequest(cold).ok());
    ASSERT_TRUE(scheduler.AddRequest(hit).ok());
    auto out = RunAll(scheduler, backend);
    if (policy == SchedulingPolicy::kCacheAware) {
      EXPECT_THAT(AdmissionOrder(backend, from), ::testing::ElementsAre(3, 2));
    } else {
      EXPECT_THAT(AdmissionOrder(backend, from), ::testing::ElementsAre(2, 3));
    }
    auto alone = Alone({cold, hit});
    EXPECT_EQ(out[2].tokens, alone[2]);
    EXPECT_EQ(out[3].tokens, alone[3]);
  }
}

TEST_F(SchedulerPolicyTest, AgeingBoundServesARequestThatWaitedTooLongInArrivalOrder) {
  SchedulerOptions options = Options(64, 64);
  options.max_running = 1;
  options.max_queue_delay = std::chrono::seconds(2);
  options.now = [this] { return now_; };
  Scheduler scheduler(options);
  FakeBackend backend;
  Request warm = MakeRequest(1, 16, 1);
  ASSERT_TRUE(scheduler.AddRequest(warm).ok());
  RunAll(scheduler, backend);
  // Request 2 (cold) arrives, then 3 s pass before request 3 (a hit) does.
  Request cold = MakeRequest(2, 17, 2);
  ASSERT_TRUE(scheduler.AddRequest(cold).ok());
  now_ += std::chrono::seconds(3);
  Request hit = MakeRequest(3, 0, 2);
  hit.prompt_ids = Concat(warm.prompt_ids, {77});
  ASSERT_TRUE(scheduler.AddRequest(hit).ok());
  const size_t from = backend.steps_.size();
  RunAll(scheduler, backend);
  EXPECT_THAT(AdmissionOrder(backend, from), ::testing::ElementsAre(2, 3));
}

// Two requests share a 32-token prefix nobody has computed yet. Cache-aware,
// the second waits for the first to commit the prefix and takes it as a hit;
// FCFS computes it twice.
TEST_F(SchedulerPolicyTest, SharedUncachedPrefixIsComputedOnce) {
  std::vector<TokenId> shared;
  for (int i = 0; i < 32; ++i) shared.push_back(20 + i);
  Request a = MakeRequest(1, 0, 1);
  a.prompt_ids = Concat(shared, {200, 201, 202, 203, 204});
  Request b = MakeRequest(2, 0, 1);
  b.prompt_ids = Concat(shared, {300, 301, 302, 303, 304});
  auto alone = Alone({a, b});
  for (SchedulingPolicy policy : {SchedulingPolicy::kCacheAware, SchedulingPolicy::kFcfs}) {
    SchedulerOptions options = Options(64, 128);
    options.policy = policy;
    Scheduler scheduler(options);
    FakeBackend backend;
    ASSERT_TRUE(scheduler.AddRequest(a).ok());
    ASSERT_TRUE(scheduler.AddRequest(b).ok());
    auto out = RunAll(scheduler, backend);
    EXPECT_EQ(out[1].tokens, alone[1]);
    EXPECT_EQ(out[2].tokens, alone[2]);
    const int64_t hits = scheduler.cache_stats().hit_tokens[0];
    if (policy == SchedulingPolicy::kCacheAware) {
      EXPECT_EQ(backend.total_step_tokens_, 37 + 5);  // the prefix once, then each tail
      EXPECT_EQ(hits, 32);
      EXPECT_EQ(scheduler.counters().grouped_waits, 1);
    } else {
      EXPECT_EQ(backend.total_step_tokens_, 2 * 37);
      EXPECT_EQ(hits, 0);
      EXPECT_EQ(scheduler.counters().grouped_waits, 0);
    }
  }
}

// Chunked prefill: the prefix takes several steps to compute, and the second
// request keeps waiting until all of it is committed.
TEST_F(SchedulerPolicyTest, GroupedRequestWaitsThroughAChunkedPrefill) {
  std::vector<TokenId> shared;
  for (int i = 0; i < 40; ++i) shared.push_back(20 + i);
  Request a = MakeRequest(1, 0, 3);
  a.prompt_ids = Concat(shared, {200, 201});
  Request b = MakeRequest(2, 0, 3);
  b.prompt_ids = Concat(shared, {300, 301, 302});
  Scheduler scheduler(Options(64, 16));
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(a).ok());
  ASSERT_TRUE(scheduler.AddRequest(b).ok());
  auto out = RunAll(scheduler, backend);
  auto alone = Alone({a, b});
  EXPECT_EQ(out[1].tokens, alone[1]);
  EXPECT_EQ(out[2].tokens, alone[2]);
  EXPECT_EQ(scheduler.cache_stats().hit_tokens[0], 40);
  for (const FakeBackend::StepRecord& step : backend.steps_) {
    if (step.seq_id == 2) {
      EXPECT_EQ(step.start_position, 40);  // its first step starts after the shared prefix
      break;
    }
  }
}

// Turn 1 of a session leaves 3 blocks; a filler leaves 3 more; a second
// filler needs 2 of the 6 cached blocks. Pinned, the session's survive.
TEST_F(SchedulerPolicyTest, SessionContextIsPinnedUntilItsTtlPassesOrItIsReleased) {
  for (bool session : {true, false}) {
    SchedulerOptions options = Options(12, 64);
    options.session_ttl = std::chrono::seconds(10);
    options.now = [this] { return now_; };
    Scheduler scheduler(options);
    FakeBackend backend;
    Request turn1 = MakeRequest(1, 12, 2);
    if (session) turn1.session_id = "chat";
    ASSERT_TRUE(scheduler.AddRequest(turn1).ok());
    std::vector<TokenId> reply = RunAll(scheduler, backend)[1].tokens;
    const std::vector<TokenId> probe = Concat(turn1.prompt_ids, {5});
    EXPECT_THAT(
        Priorities(scheduler, probe),
        ::testing::ElementsAre(session ? cache::Priority::kSessionPinned : cache::Priority::kNormal,
                               ::testing::_, ::testing::_));
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 12, 1)).ok());
    RunAll(scheduler, backend);
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(3, 29, 1)).ok());  // 8 blocks: evicts 2
    RunAll(scheduler, backend);
    Request turn2 = turn1;
    turn2.id = 4;
    turn2.prompt_ids = Concat(Concat(turn1.prompt_ids, reply), {60, 61, 62});
    ASSERT_TRUE(scheduler.AddRequest(turn2).ok());
    const size_t from = backend.steps_.size();
    auto out = RunAll(scheduler, backend);
    if (session) {
      EXPECT_EQ(backend.steps_[from].start_position, 12);  // the whole context survived
    } else {
      EXPECT_LT(backend.steps_[from].start_position, 12);
    }
    EXPECT_EQ(out[4].tokens, Alone({turn2})[4]);
    if (!session) continue;
    // Turn 2 committed 4 blocks; they are the session's context now.
    const std::vector<TokenId> probe2 = Concat(turn2.prompt_ids, {5});
    EXPECT_THAT(Priorities(scheduler, probe2), ::testing::Each(cache::Priority::kSessionPinned));
    EXPECT_EQ(Priorities(scheduler, probe2).size(), 4u);
    now_ += std::chrono::seconds(9);
    Step(scheduler, backend);
    EXPECT_THAT(Priorities(scheduler, probe2), ::testing::Each(cache::Priority::kSessionPinned));
    now_ += std::chrono::seconds(2);  // past the ttl: expired at the next step
    Step(scheduler, backend);
    EXPECT_THAT(Priorities(scheduler, probe2), ::testing::Each(cache::Priority::kNormal));
    EXPECT_EQ(scheduler.ReleaseSession("", "chat").code(), absl::StatusCode::kNotFound);
  }
}

TEST_F(SchedulerPolicyTest, ReleaseSessionUnpinsAtOnceAndOnlyThatTenantsSession) {
  SchedulerOptions options = Options(32, 64);
  Scheduler scheduler(options);
  FakeBackend backend;
  Request turn = MakeRequest(1, 12, 2);
  turn.session_id = "chat";
  turn.cache_salt = "t1";
  ASSERT_TRUE(scheduler.AddRequest(turn).ok());
  RunAll(scheduler, backend);
  const std::vector<TokenId> probe = Concat(turn.prompt_ids, {5});
  auto priorities = [&] {
    std::vector<cache::Priority> out;
    for (cache::BlockId block : scheduler.kv_cache().FindCachedPrefix("t1", probe).blocks) {
      out.push_back(scheduler.kv_cache().pool().priority(block));
    }
    return out;
  };
  EXPECT_EQ(priorities().size(), 3u);
  EXPECT_THAT(priorities(), ::testing::Each(cache::Priority::kSessionPinned));
  EXPECT_EQ(scheduler.ReleaseSession("t2", "chat").code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(priorities(), ::testing::Each(cache::Priority::kSessionPinned));
  ASSERT_TRUE(scheduler.ReleaseSession("t1", "chat").ok());
  EXPECT_THAT(priorities(), ::testing::Each(cache::Priority::kNormal));
  EXPECT_EQ(priorities().size(), 3u);  // the blocks stay cached
}

// Agent a1 runs, a filler evicts its blocks to the host tier, then agent a0's
// request names a1 as next: a1's blocks come back to the device ahead of its
// request, which then starts from a device hit.
TEST_F(SchedulerPolicyTest, NextAgentsBlocksArePrefetchedFromTheHostTier) {
  storage::HostTierStore host(storage::HostTierOptions{
      .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
  SchedulerOptions options = Options(12, 64);
  options.host_tier = &host;
  options.now = [this] { return now_; };
  Scheduler scheduler(options);
  FakeBackend backend;
  Request a1 = MakeRequest(1, 16, 2);
  a1.workflow_id = "w";
  a1.agent_id = "a1";
  ASSERT_TRUE(scheduler.AddRequest(a1).ok());
  const std::vector<TokenId> reply = RunAll(scheduler, backend)[1].tokens;
  const std::vector<TokenId> probe = Concat(a1.prompt_ids, {5});
  ASSERT_EQ(Priorities(scheduler, probe).size(), 4u);
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 47, 1)).ok());  // all 12 blocks
  RunAll(scheduler, backend);
  ASSERT_TRUE(Priorities(scheduler, probe).empty());
  ASSERT_GE(scheduler.cache_stats().demoted_blocks, 4);

  Request a0 = MakeRequest(3, 6, 1);
  a0.workflow_id = "w";
  a0.agent_id = "a0";
  a0.next_agent_ids = {"a1", "unknown"};
  ASSERT_TRUE(scheduler.AddRequest(a0).ok());
  EXPECT_EQ(scheduler.num_prefetching(), 1);
  RunAll(scheduler, backend);
  EXPECT_EQ(scheduler.counters().prefetched_blocks, 4);
  EXPECT_THAT(
      Priorities(scheduler, probe),
      ::testing::ElementsAre(cache::Priority::kWorkflowSoon, cache::Priority::kWorkflowSoon,
                             cache::Priority::kWorkflowSoon, cache::Priority::kWorkflowSoon));
  EXPECT_EQ(scheduler.cache_stats().hit_tokens[1], 0);  // not a query: no host hit counted

  Request next = a1;
  next.id = 4;
  next.prompt_ids = Concat(Concat(a1.prompt_ids, reply), {90, 91});
  ASSERT_TRUE(scheduler.AddRequest(next).ok());
  const size_t from = backend.steps_.size();
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[from].start_position, 16);  // a device hit on all four blocks
  EXPECT_EQ(scheduler.cache_stats().hit_tokens[1], 0);
  EXPECT_EQ(out[4].events.front().usage->cached_tokens_by_tier[0], 16);
  EXPECT_EQ(out[4].tokens, Alone({next})[4]);
  // Its request came: the hold ended.
  EXPECT_THAT(Priorities(scheduler, probe), ::testing::Each(cache::Priority::kNormal));
}

TEST_F(SchedulerPolicyTest, NextAgentsCachedBlocksAreKeptAheadOfPlainOnes) {
  SchedulerOptions options = Options(16, 64);
  options.now = [this] { return now_; };
  options.session_ttl = std::chrono::seconds(30);
  Scheduler scheduler(options);
  FakeBackend backend;
  Request a1 = MakeRequest(1, 16, 1);
  a1.workflow_id = "w";
  a1.agent_id = "a1";
  ASSERT_TRUE(scheduler.AddRequest(a1).ok());
  RunAll(scheduler, backend);
  const std::vector<TokenId> probe = Concat(a1.prompt_ids, {5});
  EXPECT_THAT(Priorities(scheduler, probe), ::testing::Each(cache::Priority::kNormal));
  Request a0 = MakeRequest(2, 6, 1);
  a0.workflow_id = "w";
  a0.next_agent_ids = {"a1"};
  ASSERT_TRUE(scheduler.AddRequest(a0).ok());
  EXPECT_THAT(Priorities(scheduler, probe), ::testing::Each(cache::Priority::kWorkflowSoon));
  RunAll(scheduler, backend);
  // A filler needs 12 blocks: the 11 free ones and one cached. a1's are the
  // least recently used, but held: a0's plain block goes instead.
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(3, 45, 1)).ok());
  RunAll(scheduler, backend);
  EXPECT_EQ(Priorities(scheduler, probe).size(), 4u);
  EXPECT_EQ(scheduler.cache_stats().evicted_blocks, 1);
  // The hold expires with the ttl.
  now_ += std::chrono::seconds(31);
  Step(scheduler, backend);
  EXPECT_THAT(Priorities(scheduler, probe), ::testing::Each(cache::Priority::kNormal));
}

// Disk admission (storage/block_admission.h) writes a block once enough
// requests wanted it: every full block of a prompt counts, the last one too,
// although the prefix lookup leaves it out (its last token is computed for
// the logits). Otherwise a prompt of whole blocks never gets its last block
// written, and the next turn recomputes it.
TEST_F(SchedulerPolicyTest, EveryFullPromptBlockIsASightingForDiskAdmission) {
  strata::testing::FakeTierStore disk(FakeBackend::kBlockBytes);
  SchedulerOptions options = Options(64, 64);
  options.disk_tier = &disk;
  Scheduler scheduler(options);
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 3 * FakeBackend::kBlockSize, 1)).ok());
  EXPECT_EQ(disk.sightings().size(), 3u);
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 3 * FakeBackend::kBlockSize + 1, 1)).ok());
  EXPECT_EQ(disk.sightings().size(), 6u);
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(3, FakeBackend::kBlockSize - 1, 1)).ok());
  EXPECT_EQ(disk.sightings().size(), 6u);  // no full block
}

}  // namespace
}  // namespace strata::scheduler
