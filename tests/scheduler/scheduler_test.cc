#include "scheduler/scheduler.h"

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/host_tier_store.h"
#include "tests/scheduler/scheduler_fixture.h"

namespace strata::scheduler {
namespace {

using testing::FakeBackend;
using testing::kEos;
using testing::kVocab;

class SchedulerTest : public testing::SchedulerFixture {};

TEST_F(SchedulerTest, GeneratesMaxTokensThenFinishesWithLengthAndFreesBlocks) {
  Scheduler scheduler(Options(64, 32));
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 10, 7)).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].tokens.size(), 7u);
  EXPECT_EQ(out[1].finish_reason, "length");
  EXPECT_EQ(scheduler.num_free_blocks(), 64);
}

TEST_F(SchedulerTest, SecondRequestWithTheSamePromptComputesOnlyTheUncachedTail) {
  for (int prompt_len : {10, 12}) {
    Scheduler scheduler(Options(64, 64));
    FakeBackend backend;
    Request first = MakeRequest(1, prompt_len, 6);
    ASSERT_TRUE(scheduler.AddRequest(first).ok());
    auto out_first = RunAll(scheduler, backend);
    Request second = first;
    second.id = 2;
    ASSERT_TRUE(scheduler.AddRequest(second).ok());
    size_t before = backend.steps_.size();
    auto out_second = RunAll(scheduler, backend);
    ASSERT_GT(backend.steps_.size(), before);
    const FakeBackend::StepRecord& step = backend.steps_[before];
    EXPECT_EQ(step.seq_id, 2);
    // Two whole blocks of 4 are reused; at 12 tokens the third is recomputed
    // because the last prompt token must run to be sampled from.
    EXPECT_EQ(step.start_position, 8) << "prompt of " << prompt_len;
    EXPECT_EQ(step.num_tokens, prompt_len - 8);
    EXPECT_EQ(out_second[2].tokens, out_first[1].tokens);
    EXPECT_EQ(out_second[2].finish_reason, "length");
    EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDevice)], 8);
    EXPECT_EQ(scheduler.num_free_blocks(), 64);
  }
}

TEST_F(SchedulerTest, DifferentCacheSaltsNeverShareBlocks) {
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  Request tenant_a = MakeRequest(1, 12, 4);
  tenant_a.cache_salt = "tenant-a";
  ASSERT_TRUE(scheduler.AddRequest(tenant_a).ok());
  auto out_a = RunAll(scheduler, backend);
  Request tenant_b = tenant_a;
  tenant_b.id = 2;
  tenant_b.cache_salt = "tenant-b";
  ASSERT_TRUE(scheduler.AddRequest(tenant_b).ok());
  size_t before = backend.steps_.size();
  auto out_b = RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[before].start_position, 0);  // nothing reused across tenants
  EXPECT_EQ(out_b[2].tokens, out_a[1].tokens);
  Request tenant_a_again = tenant_a;
  tenant_a_again.id = 3;
  ASSERT_TRUE(scheduler.AddRequest(tenant_a_again).ok());
  before = backend.steps_.size();
  RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[before].start_position, 8);  // same tenant: two blocks reused
}

TEST_F(SchedulerTest, NextTurnReusesTheCachedOutputOfThePreviousTurn) {
  Request turn1 = MakeRequest(1, 10, 6);
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(turn1).ok());
  std::vector<TokenId> reply = RunAll(scheduler, backend)[1].tokens;
  ASSERT_EQ(reply.size(), 6u);
  Request turn2 = turn1;
  turn2.id = 2;
  turn2.prompt_ids.insert(turn2.prompt_ids.end(), reply.begin(), reply.end());
  turn2.prompt_ids.insert(turn2.prompt_ids.end(), {40, 41, 42});  // 19 tokens
  ASSERT_TRUE(scheduler.AddRequest(turn2).ok());
  size_t before = backend.steps_.size();
  std::vector<TokenId> cached_run = RunAll(scheduler, backend)[2].tokens;
  // Turn 1 computed 15 tokens (its last sampled token never ran): 3 blocks.
  EXPECT_EQ(backend.steps_[before].start_position, 12);
  Scheduler fresh(Options(64, 64));
  FakeBackend fresh_backend;
  ASSERT_TRUE(fresh.AddRequest(turn2).ok());
  EXPECT_EQ(cached_run, RunAll(fresh, fresh_backend)[2].tokens);
}

TEST_F(SchedulerTest, ChunkedPrefillKeepsEveryStepWithinTheTokenBudget) {
  Scheduler scheduler(Options(64, 16));
  FakeBackend backend;
  for (RequestId id = 1; id <= 3; ++id)
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(id, 50, 5)).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_LE(backend.max_step_tokens_, 16);
  for (RequestId id = 1; id <= 3; ++id) EXPECT_EQ(out[id].tokens.size(), 5u);
}

TEST_F(SchedulerTest, PreemptionUnderBlockPressureGivesTheSameOutputsAsRunningAlone) {
  std::map<RequestId, std::vector<TokenId>> alone;
  for (RequestId id = 1; id <= 6; ++id) {
    Scheduler scheduler(Options(64, 64));
    FakeBackend backend;
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(id, 9 + id, 20)).ok());
    alone[id] = RunAll(scheduler, backend)[id].tokens;
  }
  // 14 blocks of 4 tokens cannot hold six sequences of ~35 tokens each.
  Scheduler scheduler(Options(14, 64));
  FakeBackend backend;
  for (RequestId id = 1; id <= 6; ++id) {
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(id, 9 + id, 20)).ok());
  }
  auto out = RunAll(scheduler, backend);
  EXPECT_GT(scheduler.num_preemptions(), 0);
  for (RequestId id = 1; id <= 6; ++id) {
    EXPECT_EQ(out[id].tokens, alone[id]) << "request " << id;
    EXPECT_EQ(out[id].finish_reason, "length");
  }
  EXPECT_EQ(scheduler.num_free_blocks(), 14);
}

TEST_F(SchedulerTest, SharedPrefixesUnderPressureGiveTheSameOutputsAsRunningAlone) {
  // Prompts share the first 5..17 tokens of one document, then diverge, so
  // hits end at block boundaries and mid-block; chunked prefill and too few
  // blocks add preemption and eviction on top.
  auto make = [](RequestId id) {
    Request request = MakeRequest(id, 0, 12);
    for (int i = 0; i < 5 + 3 * (id % 5); ++i) request.prompt_ids.push_back(7 + i);
    for (int i = 0; i < 3 + id % 4; ++i) request.prompt_ids.push_back(100 + 13 * id + i);
    return request;
  };
  std::map<RequestId, std::vector<TokenId>> alone;
  for (RequestId id = 1; id <= 8; ++id) {
    Scheduler scheduler(Options(64, 64));
    FakeBackend backend;
    ASSERT_TRUE(scheduler.AddRequest(make(id)).ok());
    alone[id] = RunAll(scheduler, backend)[id].tokens;
  }
  Scheduler scheduler(Options(16, 8));
  FakeBackend backend;
  for (RequestId id = 1; id <= 8; ++id) ASSERT_TRUE(scheduler.AddRequest(make(id)).ok());
  auto out = RunAll(scheduler, backend);
  for (RequestId id = 1; id <= 8; ++id) EXPECT_EQ(out[id].tokens, alone[id]) << "request " << id;
  EXPECT_GT(scheduler.num_preemptions(), 0);
  EXPECT_GT(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kDevice)], 0);
  EXPECT_GT(scheduler.cache_stats().evicted_blocks, 0);
  EXPECT_EQ(scheduler.num_free_blocks(), 16);
}

TEST_F(SchedulerTest, StopTokenIdFinishesWithStop) {
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  Request request = MakeRequest(1, 8, 50);
  std::vector<TokenId> tokens = request.prompt_ids;
  TokenId first = FakeBackend::NextToken(tokens);
  tokens.push_back(first);
  request.sampling.stop_token_ids = {FakeBackend::NextToken(tokens)};
  ASSERT_TRUE(scheduler.AddRequest(request).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].tokens.size(), 2u);
  EXPECT_EQ(out[1].finish_reason, "stop");
}

TEST_F(SchedulerTest, AbortEndsTheRequestAndOthersCarryOn) {
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 8, 30)).ok());
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 8, 30)).ok());
  std::vector<TokenEvent> first_step = Step(scheduler, backend);
  ASSERT_EQ(first_step.size(), 2u);  // both prompts fit one step and sample a token
  ASSERT_TRUE(scheduler.Abort(1).ok());
  EXPECT_EQ(scheduler.Abort(1).code(), absl::StatusCode::kNotFound);
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[1].finish_reason, "abort");
  EXPECT_TRUE(out[1].tokens.empty());  // nothing generated after the abort
  EXPECT_EQ(out[2].finish_reason, "length");
  EXPECT_EQ(out[2].tokens.size() + 1, 30u);
  EXPECT_EQ(scheduler.num_free_blocks(), 64);
}

TEST_F(SchedulerTest, BackendErrorFailsThatStepOnlyAndLaterRequestsRun) {
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 8, 5)).ok());
  backend.fail_next_ = true;
  std::vector<TokenEvent> events = Step(scheduler, backend);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].finish_reason, FinishReason::kError);
  EXPECT_THAT(std::string(events[0].error.message()), ::testing::HasSubstr("injected failure"));
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 8, 5)).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[2].tokens.size(), 5u);
  EXPECT_EQ(scheduler.num_free_blocks(), 64);
}

TEST_F(SchedulerTest, RejectsBadRequestsWithPreciseErrors) {
  Scheduler scheduler(Options(8, 64));
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(1, 0, 5)).code(), absl::StatusCode::kInvalidArgument);
  Request out_of_vocab = MakeRequest(2, 4, 5);
  out_of_vocab.prompt_ids[1] = kVocab;
  absl::Status status = scheduler.AddRequest(out_of_vocab);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("512"));
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(3, 128, 5)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(4, 40, 5)).code(),
            absl::StatusCode::kResourceExhausted);  // 8 blocks of 4 tokens
  Request bad_sampling = MakeRequest(5, 4, 5);
  bad_sampling.sampling.top_p = 0;
  EXPECT_EQ(scheduler.AddRequest(bad_sampling).code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(6, 4, 5)).ok());
  EXPECT_EQ(scheduler.AddRequest(MakeRequest(6, 4, 5)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(scheduler.num_waiting(), 1);
}

// The device blocks caching `tokens`' prefix under `salt`, with the last-token
// rule (so pass one token more than the blocks asked about).
std::vector<cache::BlockId> CachedBlocks(const Scheduler& scheduler,
                                         const std::vector<TokenId>& tokens,
                                         const std::string& salt = "") {
  return scheduler.kv_cache().FindCachedPrefix(salt, tokens).blocks;
}

std::vector<TokenId> WithTail(std::vector<TokenId> tokens, std::initializer_list<TokenId> tail) {
  tokens.insert(tokens.end(), tail);
  return tokens;
}

TEST_F(SchedulerTest, PrefillRequestComputesThePromptSamplesNothingAndFinishesPrefilled) {
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  Request prefill = MakeRequest(1, 12, 5);
  prefill.kind = RequestKind::kPrefill;
  ASSERT_TRUE(scheduler.AddRequest(prefill).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_TRUE(out[1].tokens.empty());
  EXPECT_EQ(out[1].finish_reason, "prefilled");
  ASSERT_EQ(out[1].events.size(), 1u);
  ASSERT_TRUE(out[1].events[0].usage.has_value());
  EXPECT_EQ(out[1].events[0].usage->prompt_tokens, 12);
  EXPECT_EQ(backend.total_step_tokens_, 12);  // the whole prompt, last token included
  // All three blocks are registered, the last one too (nothing is sampled).
  EXPECT_EQ(scheduler.kv_cache().num_indexed_blocks(), 3);
  Request next = MakeRequest(2, 0, 3);
  next.prompt_ids = WithTail(prefill.prompt_ids, {7, 8});
  ASSERT_TRUE(scheduler.AddRequest(next).ok());
  const size_t before = backend.steps_.size();
  auto out_next = RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[before].start_position, 12);
  EXPECT_EQ(out_next[2].tokens, Alone({next})[2]);
}

TEST_F(SchedulerTest, PinnedPrefillSurvivesEvictionThatTakesUnpinnedBlocks) {
  for (bool pin : {true, false}) {
    // 8 blocks: the prefill's 2, then B leaves 5 cached, then C needs 6.
    Scheduler scheduler(Options(8, 64));
    FakeBackend backend;
    Request prefill = MakeRequest(1, 8, 1);
    prefill.kind = RequestKind::kPrefill;
    prefill.pin = pin;
    ASSERT_TRUE(scheduler.AddRequest(prefill).ok());
    RunAll(scheduler, backend);
    const std::vector<TokenId> probe = WithTail(prefill.prompt_ids, {9});
    ASSERT_EQ(CachedBlocks(scheduler, probe).size(), 2u);
    for (cache::BlockId block : CachedBlocks(scheduler, probe)) {
      EXPECT_EQ(scheduler.kv_cache().pool().priority(block),
                pin ? cache::Priority::kSessionPinned : cache::Priority::kNormal);
    }
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 20, 1)).ok());
    RunAll(scheduler, backend);
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(3, 21, 1)).ok());
    RunAll(scheduler, backend);
    // Unpinned, the prefill's blocks were the least recently used: evicted.
    EXPECT_EQ(CachedBlocks(scheduler, probe).size(), pin ? 2u : 0u) << "pin " << pin;
  }
}

TEST_F(SchedulerTest, PinMadeUnderASessionLastsUntilTheSessionIsReleased) {
  SchedulerOptions options = Options(16, 64);
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
  options.now = [&now] { return now; };
  options.session_ttl = std::chrono::seconds(10);
  Scheduler scheduler(options);
  FakeBackend backend;
  Request prefill = MakeRequest(1, 8, 1);
  prefill.kind = RequestKind::kPrefill;
  prefill.pin = true;
  prefill.cache_salt = "tenant";
  prefill.session_id = "s";
  ASSERT_TRUE(scheduler.AddRequest(prefill).ok());
  RunAll(scheduler, backend);
  const std::vector<TokenId> probe = WithTail(prefill.prompt_ids, {9});
  auto priorities = [&] {
    std::vector<cache::Priority> out;
    for (cache::BlockId block : CachedBlocks(scheduler, probe, "tenant")) {
      out.push_back(scheduler.kv_cache().pool().priority(block));
    }
    return out;
  };
  EXPECT_THAT(priorities(), ::testing::Each(cache::Priority::kSessionPinned));
  EXPECT_EQ(priorities().size(), 2u);
  now += std::chrono::minutes(5);  // past the ttl: the pin is not a turn, it stays
  scheduler.Schedule();
  EXPECT_THAT(priorities(), ::testing::Each(cache::Priority::kSessionPinned));
  // Another tenant cannot release it.
  EXPECT_EQ(scheduler.ReleaseSession("other", "s").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(scheduler.ReleaseSession("tenant", "s").ok());
  EXPECT_THAT(priorities(), ::testing::Each(cache::Priority::kNormal));
  EXPECT_EQ(scheduler.ReleaseSession("tenant", "s").code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(scheduler.ValidateCache().ok());
}

TEST_F(SchedulerTest, DeadlineEndsWaitingAndRunningRequestsAndFreesTheirBlocks) {
  SchedulerOptions options = Options(32, 64);
  options.max_running = 2;
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
  options.now = [&now] { return now; };
  Scheduler scheduler(options);
  FakeBackend backend;
  Request running = MakeRequest(1, 8, 50);
  running.deadline = now + std::chrono::seconds(10);
  Request waiting = MakeRequest(3, 8, 50);
  waiting.deadline = now + std::chrono::seconds(5);
  ASSERT_TRUE(scheduler.AddRequest(running).ok());
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 8, 20)).ok());
  ASSERT_TRUE(scheduler.AddRequest(waiting).ok());
  std::vector<TokenEvent> first = Step(scheduler, backend);
  EXPECT_EQ(first.size(), 2u);  // a token each for 1 and 2
  EXPECT_EQ(scheduler.num_running(), 2);
  EXPECT_EQ(scheduler.num_waiting(), 1);
  now += std::chrono::seconds(20);
  auto out = RunAll(scheduler, backend);
  for (RequestId id : {1, 3}) {
    EXPECT_EQ(out[id].finish_reason, "deadline") << id;
    EXPECT_EQ(out[id].error.code(), absl::StatusCode::kDeadlineExceeded) << id;
  }
  EXPECT_TRUE(out[1].tokens.empty());  // nothing after the deadline passed
  EXPECT_TRUE(out[3].tokens.empty());
  EXPECT_EQ(out[2].finish_reason, "length");
  EXPECT_EQ(out[2].tokens.size(), 19u);  // and the first one above
  EXPECT_EQ(scheduler.counters().deadline_aborts, 2);
  EXPECT_EQ(scheduler.num_free_blocks(), 32);
}

TEST_F(SchedulerTest, FullWaitingQueueRejectsWithResourceExhausted) {
  SchedulerOptions options = Options(64, 64);
  options.max_waiting = 2;
  Scheduler scheduler(options);
  FakeBackend backend;
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 8, 3)).ok());
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 8, 3)).ok());
  absl::Status full = scheduler.AddRequest(MakeRequest(3, 8, 3));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(full.message()),
              ::testing::HasSubstr("waiting queue is full (2 requests, max_waiting 2)"));
  EXPECT_EQ(scheduler.counters().rejected_requests, 1);
  EXPECT_EQ(scheduler.num_waiting(), 2);
  Step(scheduler, backend);  // both admitted: the queue has room again
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(3, 8, 3)).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(out[3].finish_reason, "length");
}

TEST_F(SchedulerTest, PrefixCacheOffComputesEveryPromptAndRegistersNothing) {
  SchedulerOptions options = Options(64, 64);
  options.enable_prefix_cache = false;
  Scheduler scheduler(options);
  FakeBackend backend;
  Request first = MakeRequest(1, 12, 4);
  ASSERT_TRUE(scheduler.AddRequest(first).ok());
  auto out_first = RunAll(scheduler, backend);
  Request second = first;
  second.id = 2;
  ASSERT_TRUE(scheduler.AddRequest(second).ok());
  const size_t before = backend.steps_.size();
  auto out_second = RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[before].start_position, 0);
  EXPECT_EQ(backend.steps_[before].num_tokens, 12);
  EXPECT_EQ(out_second[2].tokens, out_first[1].tokens);
  EXPECT_EQ(scheduler.kv_cache().num_indexed_blocks(), 0);
  EXPECT_EQ(scheduler.cache_stats().queries, 0);
  EXPECT_EQ(scheduler.kv_cache().num_index_lookups(), 0);
  EXPECT_EQ(out_second[2].events.front().usage->cached_tokens(), 0);
}

TEST_F(SchedulerTest, UsageComesWithTheFirstTokenAndTheFinishAndCountsTokens) {
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  Request warm = MakeRequest(1, 12, 3);
  ASSERT_TRUE(scheduler.AddRequest(warm).ok());
  RunAll(scheduler, backend);
  Request request = MakeRequest(2, 0, 4);
  request.prompt_ids = WithTail(warm.prompt_ids, {40, 41, 42, 43, 44});
  ASSERT_TRUE(scheduler.AddRequest(request).ok());
  auto out = RunAll(scheduler, backend);
  const std::vector<TokenEvent>& events = out[2].events;
  ASSERT_EQ(events.size(), 4u);  // four tokens, the last one finishing
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].generated_tokens, static_cast<int64_t>(i + 1));
    EXPECT_EQ(events[i].usage.has_value(), i == 0 || i + 1 == events.size()) << i;
  }
  EXPECT_TRUE(events.back().finished);
  for (const TokenEvent* event : {&events.front(), &events.back()}) {
    EXPECT_EQ(event->usage->prompt_tokens, 17);
    EXPECT_EQ(event->usage->cached_tokens_by_tier[0], 12);  // three blocks of the warm prompt
    EXPECT_EQ(event->usage->cached_tokens(), 12);
  }
}

TEST_F(SchedulerTest, PublicPrefixIsSharedAcrossSaltsAndNothingAfterIt) {
  Scheduler scheduler(Options(64, 64));
  FakeBackend backend;
  auto make = [](RequestId id, const std::string& salt, int64_t public_tokens) {
    Request request = MakeRequest(id, 0, 3);
    for (int i = 0; i < 17; ++i) request.prompt_ids.push_back(10 + i);
    request.cache_salt = salt;
    request.public_prefix_tokens = public_tokens;  // 10: two full blocks of 4
    return request;
  };
  auto first_start = [&](const Request& request) {
    EXPECT_TRUE(scheduler.AddRequest(request).ok());
    const size_t before = backend.steps_.size();
    RunAll(scheduler, backend);
    return backend.steps_.at(before).start_position;
  };
  EXPECT_EQ(first_start(make(1, "a", 10)), 0);
  EXPECT_EQ(first_start(make(2, "b", 10)), 8);   // only the public blocks
  EXPECT_EQ(first_start(make(3, "a", 10)), 16);  // its own tenant: all four blocks
  EXPECT_EQ(first_start(make(4, "b", 10)), 16);  // b's own blocks now exist too
  EXPECT_EQ(first_start(make(5, "c", 0)), 0);    // no public prefix declared: its own chain
  EXPECT_EQ(first_start(make(6, "", 0)), 8);     // the unsalted chain is the public one
  Request negative = make(7, "a", -1);
  EXPECT_EQ(scheduler.AddRequest(negative).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, HigherPriorityIsAdmittedFirst) {
  for (SchedulingPolicy policy : {SchedulingPolicy::kFcfs, SchedulingPolicy::kCacheAware}) {
    SchedulerOptions options = Options(64, 64);
    options.max_running = 1;
    options.policy = policy;
    Scheduler scheduler(options);
    FakeBackend backend;
    ASSERT_TRUE(scheduler.AddRequest(MakeRequest(1, 8, 2)).ok());
    Request urgent = MakeRequest(2, 8, 2);
    urgent.priority = 5;
    ASSERT_TRUE(scheduler.AddRequest(urgent).ok());
    RunAll(scheduler, backend);
    EXPECT_EQ(backend.steps_.front().seq_id, 2);
    EXPECT_EQ(scheduler.num_preemptions(), 0);
  }
}

TEST_F(SchedulerTest, HigherPriorityArrivalPreemptsAFullBatchAndOutputsStayExact) {
  SchedulerOptions options = Options(64, 64);
  options.max_running = 1;
  Scheduler scheduler(options);
  FakeBackend backend;
  Request low = MakeRequest(1, 9, 12);
  Request high = MakeRequest(2, 10, 6);
  high.priority = 1;
  ASSERT_TRUE(scheduler.AddRequest(low).ok());
  std::vector<TokenId> low_tokens;
  for (int i = 0; i < 2; ++i) {
    for (const TokenEvent& event : Step(scheduler, backend)) low_tokens.push_back(*event.token_id);
  }
  ASSERT_TRUE(scheduler.AddRequest(high).ok());
  auto out = RunAll(scheduler, backend);
  out[1].tokens.insert(out[1].tokens.begin(), low_tokens.begin(), low_tokens.end());
  EXPECT_EQ(scheduler.num_preemptions(), 1);
  EXPECT_EQ(scheduler.counters().preemptions_recompute, 1);
  auto alone = Alone({low, high});
  EXPECT_EQ(out[1].tokens, alone[1]);
  EXPECT_EQ(out[2].tokens, alone[2]);
}

TEST_F(SchedulerTest, UnderBlockPressureTheHighestPriorityIsNeverPreempted) {
  std::vector<Request> requests;
  for (RequestId id = 1; id <= 5; ++id) requests.push_back(MakeRequest(id, 9 + id, 20));
  requests[0].priority = 2;  // the oldest, but also...
  requests[4].priority = 3;  // the newest outranks everyone
  Scheduler scheduler(Options(14, 64));
  FakeBackend backend;
  for (const Request& request : requests) ASSERT_TRUE(scheduler.AddRequest(request).ok());
  auto out = RunAll(scheduler, backend);
  EXPECT_GT(scheduler.num_preemptions(), 0);
  // Each of request 5's steps starts where the previous one ended: it never
  // lost its blocks.
  int64_t next = 0;
  for (const FakeBackend::StepRecord& step : backend.steps_) {
    if (step.seq_id != 5) continue;
    EXPECT_EQ(step.start_position, next);
    next = step.start_position + step.num_tokens;
  }
  auto alone = Alone(requests);
  for (const Request& request : requests) EXPECT_EQ(out[request.id].tokens, alone[request.id]);
}

TEST_F(SchedulerTest, EvictedPrefixComesBackFromTheHostTierExactly) {
  storage::HostTierStore host(storage::HostTierOptions{
      .block_bytes = FakeBackend::kBlockBytes, .capacity_bytes = 64 * FakeBackend::kBlockBytes});
  SchedulerOptions options = Options(11, 64);
  options.host_tier = &host;
  Scheduler scheduler(options);
  FakeBackend backend;
  Request a = MakeRequest(1, 41, 2);  // ten full blocks before its last token
  ASSERT_TRUE(scheduler.AddRequest(a).ok());
  RunAll(scheduler, backend);
  ASSERT_TRUE(scheduler.AddRequest(MakeRequest(2, 41, 1)).ok());  // needs all 11 blocks
  RunAll(scheduler, backend);
  EXPECT_TRUE(CachedBlocks(scheduler, a.prompt_ids).empty());
  EXPECT_GE(scheduler.cache_stats().demoted_blocks, 10);
  Request again = a;
  again.id = 3;
  ASSERT_TRUE(scheduler.AddRequest(again).ok());
  const size_t before = backend.steps_.size();
  auto out = RunAll(scheduler, backend);
  EXPECT_EQ(backend.steps_[before].start_position, 40);
  EXPECT_EQ(scheduler.cache_stats().hit_tokens[static_cast<int>(cache::Tier::kHost)], 40);
  ASSERT_TRUE(out[3].events.front().usage.has_value());
  EXPECT_EQ(out[3].events.front().usage->cached_tokens_by_tier[1], 40);
  EXPECT_EQ(out[3].tokens, Alone({a})[1]);
}

}  // namespace
}  // namespace strata::scheduler
