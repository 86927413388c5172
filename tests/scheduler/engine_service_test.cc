// EngineService over the real CPU backend and the aidreams260K fixture:
// outputs equal those of driving the scheduler directly, concurrency,
// cancellation, synchronous validation, drain, the observer, backend failure
// and shutdown.
#include "scheduler/engine_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mocks/hooked_backend.h"
#include "tests/mocks/recording_observer.h"
#include "tests/scheduler/engine_test_util.h"

namespace strata::scheduler {
namespace {

using strata::testing::HookedBackend;
using strata::testing::RecordingObserver;
using testing::Collector;
using ::testing::HasSubstr;
using testing::kModelLen;
using testing::LoadFixture;
using testing::MakeCpuBackend;
using testing::MakeSchedulerOptions;
using testing::Outcome;
using testing::RunAlone;

constexpr int64_t kBlockSize = 8;
constexpr TokenId kPoison = 500;  // a prompt starting with it fails in the backend

// Prompts of tokens in [3, 500): never EOS, never the poison token.
Request MakeRequest(int seed, int prompt_len, int max_tokens, bool sampled = false) {
  Request request;
  for (int i = 0; i < prompt_len; ++i) {
    request.prompt_ids.push_back(static_cast<TokenId>(3 + (seed * 37 + i * 11) % 497));
  }
  request.sampling.max_tokens = max_tokens;
  request.sampling.ignore_eos = true;
  if (sampled) {
    request.sampling.temperature = 0.8f;
    request.sampling.top_p = 0.95f;
    request.sampling.seed = 1000 + seed;
  } else {
    request.sampling.temperature = 0;
  }
  return request;
}

void ExpectSameOutput(const Outcome& got, const Outcome& want, const std::string& what) {
  EXPECT_EQ(got.tokens, want.tokens) << what;
  EXPECT_EQ(got.text, want.text) << what;
  EXPECT_EQ(got.finish_reason, want.finish_reason) << what;
}

class EngineServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(LoadFixture().tokenizer, nullptr); }

  static EngineServiceOptions ServiceOptions(const engine::Backend& backend,
                                             int64_t max_running = 8) {
    return EngineServiceOptions{.scheduler = MakeSchedulerOptions(
                                    backend, kBlockSize, /*max_batch_tokens=*/64, max_running)};
  }

  // The real backend; a step whose sequence starts with kPoison fails.
  static std::unique_ptr<HookedBackend> MakeHooked(int64_t num_blocks) {
    auto backend = std::make_unique<HookedBackend>(MakeCpuBackend(kBlockSize, num_blocks));
    backend->FailIf([](const engine::StepPlan& plan) {
      return std::any_of(plan.sequences.begin(), plan.sequences.end(),
                         [](const engine::SequenceStep& step) {
                           return step.start_position == 0 && step.token_ids.front() == kPoison;
                         });
    });
    return backend;
  }

  // After WaitIdle: the last step's observer call and snapshot are in, the
  // cache is consistent and no block is referenced.
  static void ExpectIdleAndWhole(EngineService& service) {
    EXPECT_TRUE(service.WaitIdle(std::chrono::seconds(60)));
    // Runs on the engine thread after the last step has been published.
    EXPECT_TRUE(service.ValidateCacheForTesting().ok());
    EngineSnapshot snapshot = service.Snapshot();
    EXPECT_EQ(service.num_in_flight(), 0);
    EXPECT_EQ(snapshot.num_running, 0);
    EXPECT_EQ(snapshot.num_waiting, 0);
    EXPECT_EQ(snapshot.device_blocks_used, 0);
    EXPECT_EQ(snapshot.device_blocks_free + snapshot.device_blocks_cached,
              snapshot.device_blocks_total);
  }

  static EventSink Unexpected() {
    return [](const TokenEvent& event) {
      ADD_FAILURE() << "sink called for rejected request " << event.request_id;
    };
  }
};

TEST_F(EngineServiceTest, OutputsEqualThoseOfDrivingTheSchedulerDirectly) {
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 128);
  const EngineServiceOptions options = ServiceOptions(*backend);
  std::vector<Request> requests;
  for (int i = 0; i < 6; ++i) requests.push_back(MakeRequest(i, 5 + 7 * i, 4 + 3 * i, i % 2 == 1));
  requests[2].sampling.ignore_eos = false;  // a trained model: EOS may come, and must agree

  std::map<RequestId, Outcome> direct;
  {
    Scheduler scheduler(options.scheduler);
    OutputStreams streams(*LoadFixture().tokenizer, options.scheduler.eos_token_ids);
    for (size_t i = 0; i < requests.size(); ++i) {
      Request request = requests[i];
      request.id = static_cast<RequestId>(i);
      streams.Add(request);
      ASSERT_TRUE(scheduler.AddRequest(std::move(request)).ok());
    }
    for (int step = 0; scheduler.HasWork() && step < 10000; ++step) {
      for (const TokenEvent& event : streams.Apply(scheduler, RunStep(scheduler, *backend))) {
        Outcome& outcome = direct[event.request_id];
        if (event.token_id) outcome.tokens.push_back(*event.token_id);
        outcome.text += event.text;
        if (event.finished) outcome.finish_reason = FinishReasonName(event.finish_reason);
      }
    }
  }

  Collector collector;
  EngineService service(options, *LoadFixture().tokenizer, *backend);
  std::vector<RequestId> ids;
  for (const Request& request : requests) {
    absl::StatusOr<RequestId> id = service.Submit(request, collector.Sink());
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  ExpectIdleAndWhole(service);
  for (size_t i = 0; i < requests.size(); ++i) {
    ExpectSameOutput(collector.outcome(ids[i]), direct[static_cast<RequestId>(i)],
                     "request " + std::to_string(i));
    EXPECT_FALSE(collector.outcome(ids[i]).tokens.empty());
  }
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, ManyThreadsSubmittingConcurrentlyEachGetTheirOwnOutput) {
  constexpr int kTemplates = 4;
  std::unique_ptr<engine::cpu::CpuBackend> reference_backend = MakeCpuBackend(kBlockSize, 64);
  std::vector<Request> templates;
  std::vector<Outcome> alone;
  for (int t = 0; t < kTemplates; ++t) {
    // Two share a prefix: the prefix cache is in play across threads.
    templates.push_back(MakeRequest(t % 2 == 0 ? 7 : t, 12 + 5 * t, 6, t == 3));
    alone.push_back(RunAlone(templates.back(), *reference_backend,
                             MakeSchedulerOptions(*reference_backend, kBlockSize, 64, 8)));
  }

  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 64);
  Collector collector;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 8;
  std::mutex mu;
  std::map<RequestId, int> template_of;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const int which = (t + i) % kTemplates;
        absl::StatusOr<RequestId> id = service.Submit(templates[which], collector.Sink());
        ASSERT_TRUE(id.ok()) << id.status();
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_TRUE(template_of.emplace(*id, which).second) << "id " << *id << " given twice";
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ExpectIdleAndWhole(service);
  ASSERT_EQ(template_of.size(), static_cast<size_t>(kThreads * kPerThread));
  for (const auto& [id, which] : template_of) {
    ExpectSameOutput(collector.outcome(id), alone[which], "request " + std::to_string(id));
  }
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, StopStringEndsTheStreamAndTheEngineStopsTheRequest) {
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 64);
  const EngineServiceOptions options = ServiceOptions(*backend);
  // What the model writes with no stop string, then a stop string from the
  // middle of it.
  const Request plain = MakeRequest(4, 12, 40);
  const Outcome reference = RunAlone(plain, *backend, options.scheduler);
  ASSERT_GE(reference.text.size(), 12u) << reference.text;
  const std::string stop = reference.text.substr(reference.text.size() / 2, 3);
  const size_t cut = reference.text.find(stop);

  Collector collector;
  EngineService service(options, *LoadFixture().tokenizer, *backend);
  Request stopped = plain;
  stopped.sampling.stop_strings = {stop};
  absl::StatusOr<RequestId> id = service.Submit(stopped, collector.Sink());
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(service.WaitIdle(std::chrono::seconds(60)));
  const Outcome got = collector.outcome(*id);
  EXPECT_EQ(got.finish_reason, "stop");
  EXPECT_EQ(got.text, reference.text.substr(0, cut)) << "stop string '" << stop << "'";
  EXPECT_LT(got.tokens.size(), reference.tokens.size());
  // The engine heard of it: the request leaves it with nothing held (the
  // second call runs after the iteration that ended it was published).
  EXPECT_TRUE(service.ValidateCacheForTesting().ok());
  EXPECT_TRUE(service.ValidateCacheForTesting().ok());
  EXPECT_EQ(service.Snapshot().num_running, 0);
  EXPECT_EQ(service.Snapshot().device_blocks_used, 0);
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, CancelMidGenerationEndsWithAbortAndFreesItsBlocks) {
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 64);
  Collector collector;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend);
  // Cancels itself from its sink (allowed) on its third token: the cancel is
  // taken before the next step, so exactly three tokens arrive.
  EventSink cancelling = [&](const TokenEvent& event) {
    collector.OnEvent(event);
    if (event.token_id && collector.num_tokens(event.request_id) == 3) {
      service.Cancel(event.request_id);
    }
  };
  absl::StatusOr<RequestId> long_one = service.Submit(MakeRequest(1, 10, 100), cancelling);
  absl::StatusOr<RequestId> short_one = service.Submit(MakeRequest(2, 10, 10), collector.Sink());
  ASSERT_TRUE(long_one.ok() && short_one.ok());
  ExpectIdleAndWhole(service);
  const Outcome cancelled = collector.outcome(*long_one);
  EXPECT_EQ(cancelled.finish_reason, "abort");
  EXPECT_EQ(cancelled.tokens.size(), 3u);
  EXPECT_EQ(collector.outcome(*short_one).finish_reason, "length");
  EXPECT_EQ(collector.outcome(*short_one).tokens.size(), 10u);

  // A cancel that races the finish, or names no request, is harmless.
  service.Cancel(*long_one);
  service.Cancel(*short_one);
  service.Cancel(987654);
  absl::StatusOr<RequestId> after = service.Submit(MakeRequest(3, 6, 4), collector.Sink());
  ASSERT_TRUE(after.ok());
  ExpectIdleAndWhole(service);
  EXPECT_EQ(collector.outcome(*after).finish_reason, "length");
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, CancelOfAQueuedRequestAbortsItBeforeItRuns) {
  std::unique_ptr<HookedBackend> backend = MakeHooked(64);
  Collector collector;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend);
  backend->Close();
  absl::StatusOr<RequestId> running = service.Submit(MakeRequest(1, 10, 5), collector.Sink());
  ASSERT_TRUE(running.ok());
  backend->WaitForExecutes(1);  // the engine thread is inside the first step
  absl::StatusOr<RequestId> queued = service.Submit(MakeRequest(2, 10, 5), collector.Sink());
  ASSERT_TRUE(queued.ok());
  service.Cancel(*queued);
  backend->Open();
  ExpectIdleAndWhole(service);
  EXPECT_EQ(collector.outcome(*queued).finish_reason, "abort");
  EXPECT_TRUE(collector.outcome(*queued).tokens.empty());
  EXPECT_EQ(collector.outcome(*running).finish_reason, "length");
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, SinksAreNeverCalledAfterTheirFinishedEvent) {
  // Cancels race finishes from another thread: every request still gets
  // exactly one finished event and nothing after it.
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 64);
  Collector collector;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend);
  std::vector<RequestId> ids;
  for (int i = 0; i < 40; ++i) {
    absl::StatusOr<RequestId> id =
        service.Submit(MakeRequest(i, 4 + i % 9, 1 + i % 6), collector.Sink());
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  std::thread canceller([&] {
    for (size_t i = 0; i < ids.size(); i += 2) {
      service.Cancel(ids[i]);
      service.Cancel(ids[i]);  // twice: the second finds it gone
      std::this_thread::yield();
    }
  });
  canceller.join();
  ExpectIdleAndWhole(service);
  EXPECT_EQ(collector.outcomes().size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    const Outcome outcome = collector.outcome(ids[i]);
    if (i % 2 == 1) {
      EXPECT_EQ(outcome.finish_reason, "length") << "request " << ids[i];
    }
    EXPECT_THAT(outcome.finish_reason, ::testing::AnyOf("length", "abort"));
  }
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, InvalidRequestsFailSynchronouslyNamingTheField) {
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 8);
  EngineServiceOptions options = ServiceOptions(*backend);
  options.max_prompt_tokens = 100;
  EngineService service(options, *LoadFixture().tokenizer, *backend);

  absl::StatusOr<RequestId> empty = service.Submit(MakeRequest(1, 0, 4), Unexpected());
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("prompt"));

  Request out_of_vocab = MakeRequest(1, 6, 4);
  out_of_vocab.prompt_ids[3] = 600;
  absl::StatusOr<RequestId> vocab = service.Submit(out_of_vocab, Unexpected());
  EXPECT_EQ(vocab.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(vocab.status().message(),
            "prompt token id 600 at position 3 is outside the vocabulary [0, 512)");

  Request hot = MakeRequest(1, 6, 4);
  hot.sampling.temperature = -1;
  absl::StatusOr<RequestId> sampling = service.Submit(hot, Unexpected());
  EXPECT_EQ(sampling.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(sampling.status().message()), HasSubstr("sampling.temperature"));

  absl::StatusOr<RequestId> too_long = service.Submit(MakeRequest(1, 101, 4), Unexpected());
  EXPECT_EQ(too_long.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_long.status().message()), HasSubstr("max_prompt_tokens"));

  // 8 blocks of 8 tokens hold 64 positions: a prompt of 80 can never run.
  absl::StatusOr<RequestId> too_big = service.Submit(MakeRequest(1, 80, 4), Unexpected());
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kResourceExhausted);

  EXPECT_EQ(service.num_in_flight(), 0);
  Collector collector;
  absl::StatusOr<RequestId> fine = service.Submit(MakeRequest(1, 6, 4), collector.Sink());
  ASSERT_TRUE(fine.ok());
  ExpectIdleAndWhole(service);
  EXPECT_EQ(collector.outcome(*fine).finish_reason, "length");
}

TEST_F(EngineServiceTest, AFullWaitingQueueIsResourceExhaustedAtSubmit) {
  std::unique_ptr<HookedBackend> backend = MakeHooked(64);
  EngineServiceOptions options = ServiceOptions(*backend);
  options.scheduler.max_waiting = 2;
  Collector collector;
  EngineService service(options, *LoadFixture().tokenizer, *backend);
  backend->Close();
  ASSERT_TRUE(service.Submit(MakeRequest(1, 8, 3), collector.Sink()).ok());
  backend->WaitForExecutes(1);  // running, so no longer waiting
  ASSERT_TRUE(service.Submit(MakeRequest(2, 8, 3), collector.Sink()).ok());
  ASSERT_TRUE(service.Submit(MakeRequest(3, 8, 3), collector.Sink()).ok());
  absl::StatusOr<RequestId> full = service.Submit(MakeRequest(4, 8, 3), Unexpected());
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(service.num_in_flight(), 3);
  backend->Open();
  ExpectIdleAndWhole(service);
  EXPECT_EQ(collector.num_finished(), 3);
  EXPECT_GE(service.Snapshot().counters.rejected_requests, 1);
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, DrainRefusesNewRequestsAndFinishesTheOthers) {
  std::unique_ptr<HookedBackend> backend = MakeHooked(64);
  Collector collector;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend);
  backend->Close();
  absl::StatusOr<RequestId> first = service.Submit(MakeRequest(1, 8, 5), collector.Sink());
  ASSERT_TRUE(first.ok());
  backend->WaitForExecutes(1);
  absl::StatusOr<RequestId> queued = service.Submit(MakeRequest(2, 8, 5), collector.Sink());
  ASSERT_TRUE(queued.ok());
  service.BeginDrain();
  EXPECT_TRUE(service.draining());
  absl::StatusOr<RequestId> refused = service.Submit(MakeRequest(3, 8, 5), Unexpected());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(refused.status().message(), "server is draining");
  // The backend is held inside a step: nothing can finish yet.
  EXPECT_FALSE(service.WaitIdle(std::chrono::milliseconds(1)));
  EXPECT_EQ(service.num_in_flight(), 2);
  backend->Open();
  ExpectIdleAndWhole(service);
  EXPECT_EQ(collector.outcome(*first).finish_reason, "length");
  EXPECT_EQ(collector.outcome(*queued).finish_reason, "length");
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, ObserverSeesEveryStepAndEachFinishedRequest) {
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 64);
  RecordingObserver observer;
  Collector collector;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend, &observer);
  std::set<RequestId> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RequestId> id = service.Submit(MakeRequest(i, 10, 6), collector.Sink());
    ASSERT_TRUE(id.ok());
    ids.insert(*id);
  }
  ExpectIdleAndWhole(service);
  const std::vector<RequestStats> finished = observer.finished();
  ASSERT_EQ(finished.size(), 3u);
  for (const RequestStats& stats : finished) {
    EXPECT_EQ(ids.count(stats.id), 1u);
    EXPECT_EQ(stats.finish_reason, FinishReason::kLength);
    EXPECT_EQ(stats.generated_tokens, 6);
    EXPECT_EQ(stats.usage.prompt_tokens, 10);
    EXPECT_GE(stats.queue_s, 0);
    EXPECT_GE(stats.ttft_s, stats.queue_s);
    EXPECT_GE(stats.e2e_s, stats.ttft_s);
  }
  // Every token after a request's first has a gap.
  EXPECT_EQ(observer.inter_token().size(), 3u * 5u);
  // Each request computes its 10 prompt tokens and 5 of its 6 outputs (the
  // last one sampled is never fed back); distinct prompts share nothing.
  int64_t tokens = 0;
  const std::vector<StepStats> steps = observer.steps();
  for (const StepStats& step : steps) {
    EXPECT_GT(step.num_sequences, 0);
    EXPECT_GE(step.duration_s, 0);
    tokens += step.batch_tokens;
  }
  EXPECT_EQ(tokens, 3 * (10 + 5));
  const EngineSnapshot snapshot = observer.last_snapshot();
  EXPECT_EQ(snapshot.steps, static_cast<int64_t>(steps.size()));
  EXPECT_EQ(snapshot.device_blocks_total, 64);
}

// Metrics are fed from OnRequestFinished: a client that has seen its stream
// end and then reads them must find its request counted.
TEST_F(EngineServiceTest, TheObserverCountsARequestBeforeItsStreamEnds) {
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 64);
  RecordingObserver observer;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend, &observer);
  std::atomic<int> counted_at_end{-1};
  absl::StatusOr<RequestId> id =
      service.Submit(MakeRequest(1, 10, 3), [&](const scheduler::TokenEvent& event) {
        if (event.finished) counted_at_end = static_cast<int>(observer.finished().size());
      });
  ASSERT_TRUE(id.ok()) << id.status();
  ExpectIdleAndWhole(service);
  EXPECT_EQ(counted_at_end.load(), 1);
}

TEST_F(EngineServiceTest, ABackendFailureFailsOnlyTheRequestsOfThatStep) {
  std::unique_ptr<HookedBackend> backend = MakeHooked(64);
  std::unique_ptr<engine::cpu::CpuBackend> reference_backend = MakeCpuBackend(kBlockSize, 64);
  Collector collector;
  // One sequence per step: the request queued behind the poisoned one is not
  // in the step that fails.
  EngineService service(ServiceOptions(*backend, /*max_running=*/1), *LoadFixture().tokenizer,
                        *backend);
  Request poisoned = MakeRequest(1, 10, 5);
  poisoned.prompt_ids[0] = kPoison;
  const Request healthy = MakeRequest(2, 10, 5);
  absl::StatusOr<RequestId> bad = service.Submit(poisoned, collector.Sink());
  absl::StatusOr<RequestId> good = service.Submit(healthy, collector.Sink());
  ASSERT_TRUE(bad.ok() && good.ok());
  ExpectIdleAndWhole(service);
  const Outcome failed = collector.outcome(*bad);
  EXPECT_EQ(failed.finish_reason, "error");
  EXPECT_THAT(std::string(failed.error.message()), HasSubstr("injected failure"));
  EXPECT_EQ(backend->failures(), 1);
  const Outcome want = RunAlone(healthy, *reference_backend,
                                MakeSchedulerOptions(*reference_backend, kBlockSize, 64, 1));
  ExpectSameOutput(collector.outcome(*good), want, "healthy request");
  // The service keeps serving.
  absl::StatusOr<RequestId> later = service.Submit(healthy, collector.Sink());
  ASSERT_TRUE(later.ok());
  ExpectIdleAndWhole(service);
  ExpectSameOutput(collector.outcome(*later), want, "later request");
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, DestructionAbortsEverythingInFlight) {
  std::unique_ptr<HookedBackend> backend = MakeHooked(64);
  Collector collector;
  auto service =
      std::make_unique<EngineService>(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend);
  // The engine thread is held inside its first step until destruction has
  // begun, so that 100-token requests cannot finish first.
  backend->Close();
  std::vector<RequestId> ids;
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<RequestId> id = service->Submit(MakeRequest(i, 8, 100), collector.Sink());
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  backend->WaitForExecutes(1);
  std::thread destroyer([&] { service.reset(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  backend->Open();
  destroyer.join();
  for (RequestId id : ids) {
    const Outcome outcome = collector.outcome(id);
    EXPECT_EQ(outcome.finish_reason, "abort") << "request " << id;
    EXPECT_LT(outcome.tokens.size(), 100u);
  }
  collector.ExpectEachFinishedOnce();
}

TEST_F(EngineServiceTest, ReleaseSessionRunsOnTheEngineThread) {
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, 64);
  Collector collector;
  EngineService service(ServiceOptions(*backend), *LoadFixture().tokenizer, *backend);
  EXPECT_EQ(service.ReleaseSession("tenant", "no-such-session").code(),
            absl::StatusCode::kNotFound);
  Request turn = MakeRequest(1, 12, 4);
  turn.cache_salt = "tenant";
  turn.session_id = "chat-1";
  ASSERT_TRUE(service.Submit(turn, collector.Sink()).ok());
  ExpectIdleAndWhole(service);
  EXPECT_TRUE(service.ReleaseSession("tenant", "chat-1").ok());
  // Sessions are per tenant: another salt never reaches this one.
  EXPECT_EQ(service.ReleaseSession("other", "chat-1").code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace strata::scheduler
