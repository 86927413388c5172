// Issue 5's stress test: hundreds of concurrent requests through the
// EngineService on the real CPU backend, with shared prefixes, random
// lengths, greedy and seeded sampling, random cancellations from another
// thread, short deadlines, and a KV arena small enough that preemption is
// routine. Every request that completes has exactly the output it has when
// run alone, and at the end the block pool is whole. Runs under both
// policies, and with a host tier so that preempted and evicted blocks go to
// host memory and back (swap preemption).
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "scheduler/engine_service.h"
#include "storage/host_tier_store.h"
#include "tests/scheduler/engine_test_util.h"

namespace strata::scheduler {
namespace {

using testing::Collector;
using testing::LoadFixture;
using testing::MakeCpuBackend;
using testing::MakeSchedulerOptions;
using testing::Outcome;
using testing::RunAlone;

constexpr int kRequests = 320;
constexpr int kSubmitters = 4;
constexpr int64_t kBlockSize = 8;
// 40 blocks of 8 tokens: 320 positions for up to 16 running sequences of up
// to ~100 tokens each. Preemption is routine.
constexpr int64_t kDeviceBlocks = 40;

// One request of the workload and what the test does to it.
struct Planned {
  Request request;
  bool cancel = false;
  std::optional<std::chrono::milliseconds> deadline;  // from its submission
};

std::vector<Planned> MakeWorkload(uint32_t seed) {
  std::mt19937 rng(seed);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  // A few shared prefixes (system prompts, documents), of lengths that end
  // both on and off block boundaries.
  std::vector<std::vector<TokenId>> prefixes;
  for (int length : {16, 24, 9, 33}) {
    std::vector<TokenId> prefix;
    for (int i = 0; i < length; ++i) prefix.push_back(static_cast<TokenId>(uniform(3, 511)));
    prefixes.push_back(std::move(prefix));
  }
  std::vector<Planned> workload;
  for (int i = 0; i < kRequests; ++i) {
    Planned planned;
    Request& request = planned.request;
    const int which = uniform(0, 9);
    if (which < static_cast<int>(prefixes.size()) * 2) {  // 80% share a prefix
      request.prompt_ids = prefixes[static_cast<size_t>(which / 2)];
    }
    const int suffix = uniform(1, 24);
    for (int k = 0; k < suffix; ++k)
      request.prompt_ids.push_back(static_cast<TokenId>(uniform(3, 511)));
    request.sampling.max_tokens = uniform(1, 40);
    request.sampling.ignore_eos = uniform(0, 1) == 1;  // the others may stop at EOS
    if (uniform(0, 1) == 1) {
      request.sampling.temperature = 0.9f;
      request.sampling.top_k = 40;
      request.sampling.seed = static_cast<uint64_t>(uniform(1, 1 << 30));
    } else {
      request.sampling.temperature = 0;
    }
    if (uniform(0, 3) == 0) request.priority = uniform(1, 2);  // a few jump the queue
    const int fate = uniform(0, 9);
    if (fate == 0) planned.cancel = true;
    if (fate == 1) planned.deadline = std::chrono::milliseconds(uniform(1, 40));
    workload.push_back(std::move(planned));
  }
  return workload;
}

struct StressResult {
  std::vector<RequestId> ids;  // by workload index
  Collector collector;
  EngineSnapshot snapshot;
};

// Submits the workload from kSubmitters threads while another cancels the
// chosen requests at random moments; returns once all have finished.
void RunWorkload(const std::vector<Planned>& workload, EngineService& service,
                 StressResult& result) {
  result.ids.assign(workload.size(), 0);
  std::mutex mu;
  std::vector<RequestId> to_cancel;
  bool submitting = true;
  std::vector<std::thread> threads;
  for (int t = 0; t < kSubmitters; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(100 + t);
      for (size_t i = static_cast<size_t>(t); i < workload.size(); i += kSubmitters) {
        Request request = workload[i].request;
        if (workload[i].deadline) request.deadline = Clock::now() + *workload[i].deadline;
        absl::StatusOr<RequestId> id = service.Submit(std::move(request), result.collector.Sink());
        ASSERT_TRUE(id.ok()) << id.status();
        result.ids[i] = *id;
        if (workload[i].cancel) {
          std::lock_guard<std::mutex> lock(mu);
          to_cancel.push_back(*id);
        }
        if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
      }
    });
  }
  std::thread canceller([&] {
    std::mt19937 rng(7);
    while (true) {
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 5000));
      std::lock_guard<std::mutex> lock(mu);
      if (to_cancel.empty()) {
        if (!submitting) return;
        continue;
      }
      const size_t pick = rng() % to_cancel.size();
      service.Cancel(to_cancel[pick]);
      to_cancel.erase(to_cancel.begin() + static_cast<std::ptrdiff_t>(pick));
    }
  });
  for (std::thread& thread : threads) thread.join();
  {
    std::lock_guard<std::mutex> lock(mu);
    submitting = false;
  }
  canceller.join();
  EXPECT_TRUE(service.WaitIdle(std::chrono::seconds(300)));
  EXPECT_TRUE(service.ValidateCacheForTesting().ok());
  result.snapshot = service.Snapshot();
}

// Checks every request against its run alone and the pool at the end.
void CheckResults(const std::vector<Planned>& workload, const StressResult& result,
                  const SchedulerOptions& options) {
  result.collector.ExpectEachFinishedOnce();
  std::unique_ptr<engine::cpu::CpuBackend> reference = MakeCpuBackend(kBlockSize, 32);
  std::map<std::string, int> reasons;
  for (size_t i = 0; i < workload.size(); ++i) {
    const Outcome got = result.collector.outcome(result.ids[i]);
    ++reasons[got.finish_reason];
    if (got.finish_reason == "abort") {
      EXPECT_TRUE(workload[i].cancel) << "request " << i << " aborted uncancelled";
      continue;
    }
    if (got.finish_reason == "deadline") {
      EXPECT_TRUE(workload[i].deadline.has_value()) << "request " << i;
      EXPECT_EQ(got.error.code(), absl::StatusCode::kDeadlineExceeded);
      continue;
    }
    ASSERT_TRUE(got.finish_reason == "length" || got.finish_reason == "stop")
        << "request " << i << ": " << got.finish_reason << " " << got.error;
    const Outcome alone = RunAlone(workload[i].request, *reference, options);
    EXPECT_EQ(got.tokens, alone.tokens) << "request " << i;
    EXPECT_EQ(got.text, alone.text) << "request " << i;
    EXPECT_EQ(got.finish_reason, alone.finish_reason) << "request " << i;
  }
  for (const auto& [reason, count] : reasons) {
    std::printf("finish reason %-8s %d\n", reason.c_str(), count);
  }
  const EngineSnapshot& s = result.snapshot;
  std::printf(
      "steps %lld, preemptions %lld (recompute %lld, swap %lld; yields %lld), deadline aborts %lld, "
      "device hit tokens %lld, host hit tokens %lld, evicted %lld, demoted %lld\n",
      static_cast<long long>(s.steps), static_cast<long long>(s.num_preemptions),
      static_cast<long long>(s.counters.preemptions_recompute),
      static_cast<long long>(s.counters.preemptions_swap),
      static_cast<long long>(s.counters.yields_to_new),
      static_cast<long long>(s.counters.deadline_aborts),
      static_cast<long long>(s.cache.hit_tokens[0]), static_cast<long long>(s.cache.hit_tokens[1]),
      static_cast<long long>(s.cache.evicted_blocks),
      static_cast<long long>(s.cache.demoted_blocks));
  // The workload did what it is for.
  EXPECT_GT(s.num_preemptions, 0);
  EXPECT_GT(reasons["abort"], 0);
  EXPECT_GT(reasons["deadline"], 0);
  EXPECT_GT(reasons["length"] + reasons["stop"], kRequests / 2);
  EXPECT_GT(s.cache.hit_tokens[0], 0);  // shared prefixes were reused
  // No block leaks: nothing referenced, every block free or cached.
  EXPECT_EQ(s.num_running, 0);
  EXPECT_EQ(s.num_waiting, 0);
  EXPECT_EQ(s.device_blocks_used, 0);
  EXPECT_EQ(s.device_blocks_free + s.device_blocks_cached, kDeviceBlocks);
}

// One run of the workload: the policy, and whether a host tier takes
// preempted and evicted blocks.
struct StressConfig {
  std::string name;
  SchedulingPolicy policy = SchedulingPolicy::kCacheAware;
  bool host_tier = false;
  PreemptionMode preemption = PreemptionMode::kAuto;
  int64_t yield_to_new_after_tokens = 0;
  uint32_t seed = 0;
};

void PrintTo(const StressConfig& config, std::ostream* os) { *os << config.name; }

class SchedulerStressTest : public ::testing::TestWithParam<StressConfig> {
 protected:
  void SetUp() override { ASSERT_NE(LoadFixture().tokenizer, nullptr); }
};

TEST_P(SchedulerStressTest, EveryCompletedRequestHasItsOutputAloneAndNoBlockLeaks) {
  const StressConfig& config = GetParam();
  const std::vector<Planned> workload = MakeWorkload(config.seed);
  std::unique_ptr<engine::cpu::CpuBackend> backend = MakeCpuBackend(kBlockSize, kDeviceBlocks);
  const int64_t block_bytes = backend->kv_arena_info().spec.BytesPerBlock();
  // Room for 160 blocks: swapped sequences and evicted prefixes fit for a
  // while, then the tier evicts too.
  std::unique_ptr<storage::HostTierStore> host;
  if (config.host_tier) {
    host = std::make_unique<storage::HostTierStore>(
        storage::HostTierOptions{.block_bytes = static_cast<size_t>(block_bytes),
                                 .capacity_bytes = static_cast<uint64_t>(block_bytes) * 160,
                                 .slab_bytes = static_cast<size_t>(block_bytes) * 32});
  }
  EngineServiceOptions options{.scheduler = MakeSchedulerOptions(*backend, kBlockSize,
                                                                 /*max_batch_tokens=*/128,
                                                                 /*max_running=*/16)};
  options.scheduler.policy = config.policy;
  options.scheduler.preemption = config.preemption;
  options.scheduler.host_tier = host.get();
  options.scheduler.yield_to_new_after_tokens = config.yield_to_new_after_tokens;
  StressResult result;
  {
    EngineService service(options, *LoadFixture().tokenizer, *backend);
    RunWorkload(workload, service, result);
  }
  CheckResults(workload, result, options.scheduler);
  const SchedulerCounters& counters = result.snapshot.counters;
  if (!config.host_tier) {
    EXPECT_GT(counters.preemptions_recompute, 0);
  } else if (config.preemption != PreemptionMode::kRecompute) {
    EXPECT_GT(result.snapshot.cache.demoted_blocks, 0);
    EXPECT_GT(counters.preemptions_swap, 0);
    EXPECT_GT(counters.swapped_in_blocks, 0);
  } else {
    EXPECT_GT(result.snapshot.cache.demoted_blocks, 0);
    EXPECT_EQ(counters.preemptions_swap, 0);
  }
  if (config.yield_to_new_after_tokens > 0) {
    EXPECT_GT(counters.yields_to_new, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Workloads, SchedulerStressTest,
    ::testing::Values(StressConfig{.name = "Fcfs", .policy = SchedulingPolicy::kFcfs, .seed = 1234},
                      StressConfig{.name = "CacheAware", .seed = 2345},
                      StressConfig{.name = "HostTierSwap",
                                   .host_tier = true,
                                   .preemption = PreemptionMode::kSwap,
                                   .seed = 5678},
                      StressConfig{.name = "HostTierAuto", .host_tier = true, .seed = 6789},
                      // Decodes yield to new requests, by swap or (a tier
                      // below) by recompute.
                      StressConfig{.name = "HostTierYields",
                                   .host_tier = true,
                                   .yield_to_new_after_tokens = 4,
                                   .seed = 7890},
                      StressConfig{.name = "HostTierRecomputeYields",
                                   .host_tier = true,
                                   .preemption = PreemptionMode::kRecompute,
                                   .yield_to_new_after_tokens = 4,
                                   .seed = 8901}),
    [](const ::testing::TestParamInfo<StressConfig>& info) { return info.param.name; });

}  // namespace
}  // namespace strata::scheduler
