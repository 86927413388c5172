// Replays a bench::Workload (bench/workloads.h) against a running daemon
// over gRPC, for `strata bench serve`: open-loop arrivals, dependent turns
// started once their predecessor has finished (plus its think time), each
// request a streaming Generate on its own thread. Measures what a client
// sees: time to first token from the request's start time, time per output
// token, throughput, and the cache hits the server reports in each final
// usage.
//
// Threads: RunWorkloadOverGrpc blocks its caller, which drives the replay;
// it starts one thread per request in flight and joins them all before
// returning. The channel is shared by them (gRPC channels are thread-safe).
#ifndef STRATA_SERVER_DAEMON_LOAD_GENERATOR_H_
#define STRATA_SERVER_DAEMON_LOAD_GENERATOR_H_

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "bench/workloads.h"

namespace strata::server {

struct LoadOptions {
  std::shared_ptr<grpc::Channel> channel;  // shared with the caller
  std::string token;                       // bearer token; empty: none
  // Per request; a request still running after it ends DEADLINE_EXCEEDED
  // and counts as an error.
  int64_t request_timeout_ms = 600000;
};

struct WorkloadFigures {
  std::string workload;
  int64_t requests = 0;
  int64_t errors = 0;
  std::string first_error;  // "CODE: message" of the first failed request
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // from the final usage of each request
  int64_t output_tokens = 0;
  double makespan_s = 0;    // from the start of the run to the last finish
  double output_tok_s = 0;  // generated tokens per second of makespan
  double total_tok_s = 0;   // prompt and generated tokens per second
  double ttft_p50_s = 0, ttft_p90_s = 0, ttft_p99_s = 0;
  // Time per output token after the first: (finish - first token) / (n - 1).
  double tpot_p50_s = 0, tpot_p90_s = 0, tpot_p99_s = 0;
  double cache_hit_rate = 0;  // cached_prompt_tokens / prompt_tokens
};

// Replays `workload` to the end. Failed requests are counted, not fatal:
// their dependants still run (on whatever output they had). Errors: none
// beyond an empty workload (INVALID_ARGUMENT); the run itself always ends.
absl::StatusOr<WorkloadFigures> RunWorkloadOverGrpc(const bench::Workload& workload,
                                                    const LoadOptions& options);

}  // namespace strata::server

#endif  // STRATA_SERVER_DAEMON_LOAD_GENERATOR_H_
