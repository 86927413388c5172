// The figures `strata bench scheduler` (and `strata bench serve`) report per
// workload and policy, as a readable table with ratios and as the one-line
// JSON object {workload: {policy: {"throughput_tok_s", "ttft_p50_s",
// "ttft_p99_s", "hit_tokens"}}}.
//
// Thread-safety: pure functions over plain values.
#ifndef STRATA_BENCH_REPORT_H_
#define STRATA_BENCH_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "bench/replay.h"

namespace strata::bench {

// One workload replayed under one policy.
struct PolicyFigures {
  std::string workload;
  std::string policy;
  ReplaySummary summary;
  // Prompt tokens whose KV came from the cache (any tier) instead of being
  // computed.
  int64_t hit_tokens = 0;
  double wall_s = 0;  // the whole run, engine set-up included
};

// The JSON object, on one line with no newline, keys in the order given.
std::string FiguresJson(const std::vector<PolicyFigures>& figures);

// One row per figure, grouped by workload, then per workload the ratios of
// `policy` against each of `baselines`, each figure as policy / baseline
// (above 1 is better for throughput, below 1 for TTFT). Pairs missing from
// `figures` are left out.
std::string FiguresTable(const std::vector<PolicyFigures>& figures, const std::string& policy,
                         const std::vector<std::string>& baselines);

}  // namespace strata::bench

#endif  // STRATA_BENCH_REPORT_H_
