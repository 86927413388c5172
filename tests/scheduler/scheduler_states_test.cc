// The scheduler's explicit request states (scheduler/request_state.h) and
// its once-per-step prefix lookup.
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "scheduler/request_state.h"
#include "tests/scheduler/scheduler_fixture.h"

namespace strata::scheduler {
namespace {

using testing::FakeBackend;
using testing::SchedulerFixture;

class SchedulerStatesTest : public SchedulerFixture {};

TEST(RequestStateTest, TransitionsAreExactlyTheDiagrams) {
  using S = RequestState;
  const std::vector<S> all = {S::kWaiting, S::kLoading, S::kRunning, S::kSwapped, S::kFinished};
  int legal = 0;
  for (S from : all) {
    for (S to : all) legal += IsLegalTransition(from, to) ? 1 : 0;
  }
  // waiting->{loading,running,finished}, loading->{running,finished},
  // running->{waiting,swapped,finished}, swapped->{running,waiting,finished}.
  EXPECT_EQ(legal, 11);
  EXPECT_TRUE(IsLegalTransition(S::kSwapped, S::kRunning));
  EXPECT_FALSE(IsLegalTransition(S::kLoading, S::kWaiting));
  EXPECT_FALSE(IsLegalTransition(S::kRunning, S::kLoading));
  EXPECT_FALSE(IsLegalTransition(S::kFinished, S::kWaiting));
  EXPECT_FALSE(IsLegalTransition(S::kWaiting, S::kSwapped));
}

TEST_F(SchedulerStatesTest, CountsFollowEachRequestThroughItsStates) {
  SchedulerOptions options = Options(64, 64);
  options.max_running = 1;
  Scheduler scheduler(options);
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 8, 3)).ok());
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 8, 3)).ok());
  EXPECT_EQ(scheduler.num_in_state(RequestState::kWaiting), 2);
  Step(scheduler, backend);
  EXPECT_EQ(scheduler.num_in_state(RequestState::kRunning), 1);
  EXPECT_EQ(scheduler.num_in_state(RequestState::kWaiting), 1);
  // An abort finishes the waiting one at once; it is erased once its event
  // went out with the next Update.
  ASSERT_TRUE(scheduler.Abort(2).ok());
  EXPECT_EQ(scheduler.num_in_state(RequestState::kWaiting), 0);
  EXPECT_EQ(scheduler.num_in_state(RequestState::kFinished), 1);
  EXPECT_EQ(scheduler.Abort(2).code(), absl::StatusCode::kNotFound);
  Step(scheduler, backend);
  EXPECT_EQ(scheduler.num_in_state(RequestState::kFinished), 0);
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].finish_reason, "length");
  for (RequestState state : {RequestState::kWaiting, RequestState::kLoading, RequestState::kRunning,
                             RequestState::kSwapped, RequestState::kFinished}) {
    EXPECT_EQ(scheduler.num_in_state(state), 0) << RequestStateName(state);
  }
}

TEST_F(SchedulerStatesTest, PreemptionSendsTheVictimBackToWaiting) {
  // Room for one long sequence only: the lower-priority one is preempted by
  // recompute (no host tier) when a higher priority arrives.
  SchedulerOptions options = Options(8, 64);
  Scheduler scheduler(options);
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 16, 12)).ok());
  Step(scheduler, backend);
  ASSERT_EQ(scheduler.num_in_state(RequestState::kRunning), 1);
  Request urgent = MakeRequest(2, 16, 4);
  urgent.priority = 5;
  ASSERT_TRUE(scheduler.AddRequest(urgent).ok());
  Step(scheduler, backend);
  EXPECT_EQ(scheduler.counters().preemptions_recompute, 1);
  EXPECT_EQ(scheduler.num_in_state(RequestState::kWaiting), 1);
  EXPECT_EQ(scheduler.num_in_state(RequestState::kRunning), 1);
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].finish_reason, "length");
  EXPECT_EQ(out[2].finish_reason, "length");
}

TEST_F(SchedulerStatesTest, EachQueuedRequestIsLookedUpAtMostOncePerStep) {
  // One request runs (max_running 1) while five that share its prefix wait:
  // each step scores, groups and tries to admit every one of them, and must
  // look each one's cached prefix up once (no eviction happens: the arena
  // has room to spare).
  SchedulerOptions options = Options(64, 64);
  options.max_running = 1;
  Scheduler scheduler(options);
  FakeBackend backend;
  Request first = MakeRequest(1, 40, 12);
  ASSERT_TRUE(scheduler.AddRequest(first).ok());
  Step(scheduler, backend);
  for (RequestId id = 2; id <= 6; ++id) {
    Request request = first;
    request.id = id;
    request.prompt_ids.push_back(static_cast<TokenId>(100 + id));
    ASSERT_TRUE(scheduler.AddRequest(request).ok());
  }
  int checked_steps = 0;
  while (scheduler.num_running() > 0 && scheduler.num_waiting() == 5) {
    const int64_t before = scheduler.kv_cache().num_prefix_lookups();
    const int64_t evictions = scheduler.cache_stats().evicted_blocks;
    Step(scheduler, backend);
    if (scheduler.cache_stats().evicted_blocks != evictions) break;
    EXPECT_LE(scheduler.kv_cache().num_prefix_lookups() - before, 5);
    ++checked_steps;
  }
  EXPECT_GE(checked_steps, 5);
  auto out = RunAll(scheduler, backend);
  for (RequestId id = 2; id <= 6; ++id) EXPECT_EQ(out[id].finish_reason, "length") << id;
}

}  // namespace
}  // namespace strata::scheduler
