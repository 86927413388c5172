// The workload generators are deterministic, their dependencies point
// backwards, and a later turn's prompt extends the earlier one's (checked
// through Replay, which builds prompts the way every driver does).
#include "bench/workloads.h"

#include <algorithm>
#include <set>

#include "bench/replay.h"
#include "bench/report.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace strata::bench {
namespace {

constexpr int64_t kVocab = 32000;

bool SameRequests(const Workload& a, const Workload& b) {
  if (a.requests.size() != b.requests.size()) return false;
  for (size_t i = 0; i < a.requests.size(); ++i) {
    const WorkloadRequest& x = a.requests[i];
    const WorkloadRequest& y = b.requests[i];
    if (x.arrival_s != y.arrival_s || x.history_of != y.history_of ||
        x.new_tokens != y.new_tokens || x.after != y.after || x.max_tokens != y.max_tokens ||
        x.session_id != y.session_id || x.agent_id != y.agent_id ||
        x.next_agent_ids != y.next_agent_ids) {
      return false;
    }
  }
  return a.device_kv_tokens == b.device_kv_tokens;
}

// Runs a replay to the end with a fake engine that answers every started
// request with `index * 1000 + k` for its k-th token, finishing requests in
// the order they start. Returns each request's prompt.
std::vector<std::vector<int32_t>> ReplayAll(const Workload& workload) {
  Replay replay(workload);
  std::vector<std::vector<int32_t>> prompts(workload.requests.size());
  double now = 0;
  while (!replay.done()) {
    std::vector<int64_t> ready = replay.TakeReady(now);
    if (ready.empty()) {
      std::optional<double> next = replay.NextStart();
      EXPECT_TRUE(next.has_value()) << "stalled at " << replay.num_finished();
      if (!next) break;
      now = std::max(now, *next);
      continue;
    }
    for (int64_t i : ready) {
      prompts[static_cast<size_t>(i)] = replay.Prompt(i);
      for (int32_t k = 0; k < workload.requests[static_cast<size_t>(i)].max_tokens; ++k) {
        replay.OnToken(i, static_cast<int32_t>(i * 1000 + k), now + 0.001);
      }
      replay.OnFinished(i, now + 0.002);
    }
    now += 0.002;
  }
  return prompts;
}

bool StartsWith(const std::vector<int32_t>& whole, const std::vector<int32_t>& prefix) {
  return whole.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), whole.begin());
}

TEST(WorkloadsTest, SameSeedSameWorkloadsOtherSeedOthers) {
  const WorkloadShapes shapes = ScaledShapes(0.25);
  std::vector<Workload> a = MakeWorkloads(shapes, kVocab, 7);
  std::vector<Workload> b = MakeWorkloads(shapes, kVocab, 7);
  std::vector<Workload> c = MakeWorkloads(shapes, kVocab, 8);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].name, "chat");
  EXPECT_EQ(a[1].name, "shared_prefix");
  EXPECT_EQ(a[2].name, "agents");
  for (size_t w = 0; w < a.size(); ++w) {
    EXPECT_TRUE(SameRequests(a[w], b[w])) << a[w].name;
    EXPECT_FALSE(SameRequests(a[w], c[w])) << a[w].name;
  }
}

TEST(WorkloadsTest, DefaultShapesMatchTheIssue) {
  const WorkloadShapes shapes = ScaledShapes(1.0);
  std::vector<Workload> w = MakeWorkloads(shapes, kVocab, 1);
  EXPECT_EQ(w[0].requests.size(), 16u * 4u);
  EXPECT_EQ(w[1].requests.size(), 64u);
  EXPECT_EQ(w[2].requests.size(), 4u * 4u);
  // The agents' device holds about two of the four agents' histories.
  const int64_t history = PromptTokens(w[2], static_cast<int64_t>(w[2].requests.size()) - 1) +
                          w[2].requests.back().max_tokens;
  EXPECT_GE(w[2].device_kv_tokens, 2 * history);
  EXPECT_LT(w[2].device_kv_tokens, 3 * history);
  for (const Workload& workload : w) {
    EXPECT_LE(workload.max_sequence_tokens, 4096) << workload.name;
    EXPECT_GE(workload.device_kv_tokens, workload.max_sequence_tokens) << workload.name;
  }
}

TEST(WorkloadsTest, TokensAvoidSpecialIdsAndDependenciesPointBack) {
  for (const Workload& workload : MakeWorkloads(ScaledShapes(0.5), kVocab, 3)) {
    for (size_t i = 0; i < workload.requests.size(); ++i) {
      const WorkloadRequest& r = workload.requests[i];
      EXPECT_FALSE(r.new_tokens.empty());
      for (int32_t id : r.new_tokens) {
        EXPECT_GE(id, 3);
        EXPECT_LT(id, kVocab);
      }
      EXPECT_LT(r.history_of, static_cast<int64_t>(i));
      EXPECT_LT(r.after, static_cast<int64_t>(i));
      EXPECT_GE(r.arrival_s, 0);
    }
  }
}

TEST(WorkloadsTest, ChatTurnsExtendTheirSessionsHistory) {
  const ChatOptions options{
      .sessions = 3, .turns = 3, .system_tokens = 40, .user_tokens = 10, .output_tokens = 5};
  const Workload chat = MakeChatWorkload(options, kVocab, 11);
  ASSERT_EQ(chat.requests.size(), 9u);
  const std::vector<std::vector<int32_t>> prompts = ReplayAll(chat);
  std::set<std::string> sessions;
  for (size_t i = 0; i < chat.requests.size(); ++i) {
    const WorkloadRequest& r = chat.requests[i];
    sessions.insert(r.session_id);
    const int64_t turn = static_cast<int64_t>(i) / options.sessions;
    EXPECT_EQ(static_cast<int64_t>(prompts[i].size()), PromptTokens(chat, static_cast<int64_t>(i)));
    EXPECT_EQ(static_cast<int64_t>(prompts[i].size()),
              options.system_tokens + options.user_tokens + turn * (options.user_tokens + 5));
    // Every session opens with the same system prompt.
    EXPECT_TRUE(
        StartsWith(prompts[i], std::vector<int32_t>(prompts[0].begin(), prompts[0].begin() + 40)));
    if (turn == 0) {
      EXPECT_EQ(r.history_of, -1);
      continue;
    }
    // The previous turn of the same session: its prompt, its output, then more.
    const size_t previous = static_cast<size_t>(r.history_of);
    EXPECT_EQ(chat.requests[previous].session_id, r.session_id);
    std::vector<int32_t> history = prompts[previous];
    for (int32_t k = 0; k < 5; ++k) history.push_back(static_cast<int32_t>(previous * 1000 + k));
    EXPECT_TRUE(StartsWith(prompts[i], history)) << "request " << i;
  }
  EXPECT_EQ(sessions.size(), 3u);
}

TEST(WorkloadsTest, SharedPrefixRequestsShareAFewSystemPrompts) {
  const SharedPrefixOptions options{.system_prompts = 2,
                                    .system_tokens = 48,
                                    .requests = 12,
                                    .suffix_tokens = 8,
                                    .output_tokens = 4};
  const Workload shared = MakeSharedPrefixWorkload(options, kVocab, 5);
  ASSERT_EQ(shared.requests.size(), 12u);
  std::set<std::vector<int32_t>> prefixes;
  double last_arrival = 0;
  for (const WorkloadRequest& r : shared.requests) {
    EXPECT_EQ(r.history_of, -1);
    EXPECT_EQ(r.after, -1);
    ASSERT_EQ(r.new_tokens.size(), 56u);
    prefixes.emplace(r.new_tokens.begin(), r.new_tokens.begin() + 48);
    EXPECT_GE(r.arrival_s, last_arrival);  // Poisson arrivals, in order
    last_arrival = r.arrival_s;
  }
  EXPECT_EQ(prefixes.size(), 2u);
  EXPECT_GT(last_arrival, 0);
}

TEST(WorkloadsTest, AgentsTakeTurnsAndExtendTheirOwnHistory) {
  const AgentsOptions options{
      .agents = 3, .private_tokens = 64, .rounds = 3, .message_tokens = 8, .output_tokens = 4};
  const Workload agents = MakeAgentsWorkload(options, kVocab, 9);
  ASSERT_EQ(agents.requests.size(), 9u);
  const std::vector<std::vector<int32_t>> prompts = ReplayAll(agents);
  for (size_t i = 0; i < agents.requests.size(); ++i) {
    const WorkloadRequest& r = agents.requests[i];
    EXPECT_EQ(r.agent_id, "agent-" + std::to_string(i % 3));
    EXPECT_EQ(r.workflow_id, "workflow-0");
    // Strictly one after the other, each naming the agent that runs next.
    EXPECT_EQ(r.after, static_cast<int64_t>(i) - 1);
    if (i + 1 < agents.requests.size()) {
      EXPECT_THAT(r.next_agent_ids, ::testing::ElementsAre(agents.requests[i + 1].agent_id));
    } else {
      EXPECT_TRUE(r.next_agent_ids.empty());
    }
    if (i < 3) {
      EXPECT_EQ(r.history_of, -1);
      EXPECT_EQ(prompts[i].size(), 72u);
      continue;
    }
    ASSERT_EQ(r.history_of, static_cast<int64_t>(i) - 3);
    EXPECT_TRUE(StartsWith(prompts[i], prompts[i - 3]));
    EXPECT_EQ(prompts[i].size(), prompts[i - 3].size() + 4 + 8);
  }
  // Private prompts differ between agents.
  EXPECT_NE(std::vector<int32_t>(prompts[0].begin(), prompts[0].begin() + 64),
            std::vector<int32_t>(prompts[1].begin(), prompts[1].begin() + 64));
}

TEST(ReplayTest, DependantsWaitForTheirDependencyAndThinkTime) {
  Workload workload{.name = "two"};
  workload.requests.push_back(
      WorkloadRequest{.arrival_s = 0.5, .new_tokens = {5, 6}, .max_tokens = 2});
  workload.requests.push_back(WorkloadRequest{
      .arrival_s = 0, .history_of = 0, .new_tokens = {7}, .think_s = 0.25, .max_tokens = 1});
  Replay replay(workload);
  EXPECT_TRUE(replay.TakeReady(0.4).empty());
  EXPECT_EQ(replay.NextStart(), 0.5);
  EXPECT_THAT(replay.TakeReady(0.6), ::testing::ElementsAre(0));
  EXPECT_FALSE(replay.NextStart().has_value());  // request 1 waits on a running one
  replay.OnToken(0, 100, 0.7);
  replay.OnToken(0, 101, 0.8);
  replay.OnFinished(0, 1.0);
  EXPECT_EQ(replay.NextStart(), 1.25);
  EXPECT_TRUE(replay.TakeReady(1.2).empty());
  EXPECT_THAT(replay.TakeReady(1.3), ::testing::ElementsAre(1));
  EXPECT_THAT(replay.Prompt(1), ::testing::ElementsAre(5, 6, 100, 101, 7));
  replay.OnToken(1, 102, 1.5);
  replay.OnFinished(1, 2.0);
  ASSERT_TRUE(replay.done());
  const ReplaySummary summary = replay.Summarize();
  EXPECT_EQ(summary.requests, 2);
  EXPECT_EQ(summary.prompt_tokens, 2 + 5);
  EXPECT_EQ(summary.output_tokens, 3);
  EXPECT_DOUBLE_EQ(summary.makespan_s, 2.0);
  EXPECT_DOUBLE_EQ(summary.output_tok_s, 1.5);
  // TTFTs 0.2 (from its arrival 0.5) and 0.25 (from 1.25, not from when it
  // was taken): the nearest-rank p50 of two is the smaller.
  EXPECT_NEAR(summary.ttft_p50_s, 0.2, 1e-9);
  EXPECT_NEAR(summary.ttft_p99_s, 0.25, 1e-9);
}

TEST(ReplayTest, PercentileIsNearestRank) {
  EXPECT_EQ(Percentile({}, 50), 0);
  EXPECT_EQ(Percentile({3, 1, 2}, 50), 2);
  EXPECT_EQ(Percentile({3, 1, 2}, 99), 3);
  EXPECT_EQ(Percentile({3, 1, 2}, 0), 1);
  std::vector<double> hundred;
  for (int i = 1; i <= 100; ++i) hundred.push_back(i);
  EXPECT_EQ(Percentile(hundred, 99), 99);
}

TEST(ReportTest, JsonHasEveryWorkloadAndPolicyWithTheFourFigures) {
  std::vector<PolicyFigures> figures;
  for (const char* workload : {"chat", "agents"}) {
    for (const char* policy : {"fcfs_nocache", "strata"}) {
      PolicyFigures f{.workload = workload, .policy = policy, .hit_tokens = 7};
      f.summary.output_tok_s = 10;
      f.summary.ttft_p50_s = 0.5;
      f.summary.ttft_p99_s = 0.75;
      figures.push_back(f);
    }
  }
  const std::string line = FiguresJson(figures);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const nlohmann::json json = nlohmann::json::parse(line);
  ASSERT_EQ(json.size(), 2u);
  EXPECT_EQ(json["agents"]["strata"]["throughput_tok_s"], 10.0);
  EXPECT_EQ(json["chat"]["fcfs_nocache"]["ttft_p50_s"], 0.5);
  EXPECT_EQ(json["chat"]["fcfs_nocache"]["ttft_p99_s"], 0.75);
  EXPECT_EQ(json["chat"]["strata"]["hit_tokens"], 7);
  const std::string table = FiguresTable(figures, "strata", {"fcfs_nocache"});
  EXPECT_THAT(table, ::testing::HasSubstr("chat           strata / fcfs_nocache"));
  EXPECT_THAT(table, ::testing::HasSubstr("throughput  1.00x"));
}

}  // namespace
}  // namespace strata::bench
