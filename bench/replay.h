// The driver-independent half of replaying a Workload: which requests may
// start now, what their prompts are (history + output + new tokens), and
// their timings. `strata bench scheduler` feeds it from the step loop,
// `strata bench serve` from gRPC streams; both pass times in seconds since
// the start of the run, measured on the wall clock.
//
// A request starts at its start time: the latest of its arrival and, when it
// has dependencies, the finish of the last of them plus its think time. Its
// time to first token is measured from that start time, so a driver that
// notices a request late (after a step) charges the delay to the request, as
// a real server's queue would.
//
// Thread-safety: none; one driver thread owns a Replay. Failure: misuse
// (an unknown index, a prompt asked before the request started, events for
// a request that has not started or has finished) is a bug and CHECK-fails.
#ifndef STRATA_BENCH_REPLAY_H_
#define STRATA_BENCH_REPLAY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "bench/workloads.h"

namespace strata::bench {

// What a replay measured.
struct ReplaySummary {
  int64_t requests = 0;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  // From 0 (the run's start) to the last finish.
  double makespan_s = 0;
  // Generated tokens per second of makespan.
  double output_tok_s = 0;
  // Prompt and generated tokens per second of makespan.
  double total_tok_s = 0;
  double ttft_p50_s = 0;
  double ttft_p99_s = 0;
  double e2e_p50_s = 0;
  double e2e_p99_s = 0;
};

class Replay {
 public:
  // Borrows `workload`, which must outlive the replay.
  explicit Replay(const Workload& workload);

  // The requests not yet started whose dependencies have finished and whose
  // start time is at most `now_s`, in index order; they count as started from
  // now on.
  std::vector<int64_t> TakeReady(double now_s);

  // The earliest start time among requests not started whose dependencies
  // have finished; nullopt when there is none (all started, or waiting on
  // requests still running).
  std::optional<double> NextStart() const;

  // The prompt of a started request.
  const std::vector<int32_t>& Prompt(int64_t index) const;

  // A generated token of a started request (its first sets the TTFT).
  void OnToken(int64_t index, int32_t token, double now_s);
  // The request's end; its dependants may start from now_s + their think
  // time.
  void OnFinished(int64_t index, double now_s);

  bool done() const { return num_finished_ == static_cast<int64_t>(states_.size()); }
  int64_t num_started() const { return num_started_; }
  int64_t num_finished() const { return num_finished_; }
  const Workload& workload() const { return workload_; }

  // Only meaningful once done().
  ReplaySummary Summarize() const;

 private:
  struct State {
    bool started = false;
    bool finished = false;
    double start_s = 0;
    double first_token_s = -1;
    double finish_s = 0;
    std::vector<int32_t> prompt;
    std::vector<int32_t> output;
  };

  // The start time of a request whose dependencies have finished; nullopt
  // while some dependency has not.
  std::optional<double> StartTime(int64_t index) const;
  const State& state(int64_t index) const;

  const Workload& workload_;
  std::vector<State> states_;
  int64_t num_started_ = 0;
  int64_t num_finished_ = 0;
};

// The nearest-rank percentile (p in [0, 100]) of `values`; 0 when empty.
double Percentile(std::vector<double> values, double p);

}  // namespace strata::bench

#endif  // STRATA_BENCH_REPLAY_H_
