#include "bench/replay.h"

#include <algorithm>
#include <cmath>

#include "common/check.h"

namespace strata::bench {

Replay::Replay(const Workload& workload) : workload_(workload), states_(workload.requests.size()) {}

const Replay::State& Replay::state(int64_t index) const {
  CHECK(index >= 0 && index < static_cast<int64_t>(states_.size()));
  return states_[static_cast<size_t>(index)];
}

std::optional<double> Replay::StartTime(int64_t index) const {
  const WorkloadRequest& request = workload_.requests[static_cast<size_t>(index)];
  double start = request.arrival_s;
  for (int64_t dependency : {request.history_of, request.after}) {
    if (dependency < 0) continue;
    CHECK_LT(dependency, index);
    const State& s = state(dependency);
    if (!s.finished) return std::nullopt;
    start = std::max(start, s.finish_s + request.think_s);
  }
  return start;
}

std::vector<int64_t> Replay::TakeReady(double now_s) {
  std::vector<int64_t> ready;
  for (int64_t i = 0; i < static_cast<int64_t>(states_.size()); ++i) {
    State& s = states_[static_cast<size_t>(i)];
    if (s.started) continue;
    std::optional<double> start = StartTime(i);
    if (!start || *start > now_s) continue;
    const WorkloadRequest& request = workload_.requests[static_cast<size_t>(i)];
    if (request.history_of >= 0) {
      const State& history = state(request.history_of);
      s.prompt = history.prompt;
      s.prompt.insert(s.prompt.end(), history.output.begin(), history.output.end());
    }
    s.prompt.insert(s.prompt.end(), request.new_tokens.begin(), request.new_tokens.end());
    s.started = true;
    s.start_s = *start;
    ++num_started_;
    ready.push_back(i);
  }
  return ready;
}

std::optional<double> Replay::NextStart() const {
  std::optional<double> next;
  for (int64_t i = 0; i < static_cast<int64_t>(states_.size()); ++i) {
    if (states_[static_cast<size_t>(i)].started) continue;
    std::optional<double> start = StartTime(i);
    if (start && (!next || *start < *next)) next = start;
  }
  return next;
}

const std::vector<int32_t>& Replay::Prompt(int64_t index) const {
  const State& s = state(index);
  CHECK(s.started);
  return s.prompt;
}

void Replay::OnToken(int64_t index, int32_t token, double now_s) {
  CHECK(state(index).started && !state(index).finished);
  State& s = states_[static_cast<size_t>(index)];
  if (s.first_token_s < 0) s.first_token_s = now_s;
  s.output.push_back(token);
}

void Replay::OnFinished(int64_t index, double now_s) {
  CHECK(state(index).started && !state(index).finished);
  State& s = states_[static_cast<size_t>(index)];
  s.finished = true;
  s.finish_s = now_s;
  ++num_finished_;
}

ReplaySummary Replay::Summarize() const {
  ReplaySummary summary;
  std::vector<double> ttfts;
  std::vector<double> e2es;
  for (const State& s : states_) {
    if (!s.finished) continue;
    ++summary.requests;
    summary.prompt_tokens += static_cast<int64_t>(s.prompt.size());
    summary.output_tokens += static_cast<int64_t>(s.output.size());
    summary.makespan_s = std::max(summary.makespan_s, s.finish_s);
    if (s.first_token_s >= 0) ttfts.push_back(s.first_token_s - s.start_s);
    e2es.push_back(s.finish_s - s.start_s);
  }
  if (summary.makespan_s > 0) {
    summary.output_tok_s = static_cast<double>(summary.output_tokens) / summary.makespan_s;
    summary.total_tok_s =
        static_cast<double>(summary.prompt_tokens + summary.output_tokens) / summary.makespan_s;
  }
  summary.ttft_p50_s = Percentile(ttfts, 50);
  summary.ttft_p99_s = Percentile(ttfts, 99);
  summary.e2e_p50_s = Percentile(e2es, 50);
  summary.e2e_p99_s = Percentile(e2es, 99);
  return summary;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // Nearest rank: the smallest value with at least p% of the values at or below it.
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const size_t index =
      static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  return values[index];
}

}  // namespace strata::bench
