#include "bench/report.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace strata::bench {
namespace {

const PolicyFigures* Find(const std::vector<PolicyFigures>& figures, const std::string& workload,
                          const std::string& policy) {
  for (const PolicyFigures& f : figures) {
    if (f.workload == workload && f.policy == policy) return &f;
  }
  return nullptr;
}

std::vector<std::string> Workloads(const std::vector<PolicyFigures>& figures) {
  std::vector<std::string> names;
  for (const PolicyFigures& f : figures) {
    if (std::find(names.begin(), names.end(), f.workload) == names.end())
      names.push_back(f.workload);
  }
  return names;
}

double Ratio(double a, double b) { return b > 0 ? a / b : 0; }

}  // namespace

std::string FiguresJson(const std::vector<PolicyFigures>& figures) {
  // Ordered, so the JSON reads in the order the table does.
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  for (const PolicyFigures& f : figures) {
    json[f.workload][f.policy] = {{"throughput_tok_s", f.summary.output_tok_s},
                                  {"ttft_p50_s", f.summary.ttft_p50_s},
                                  {"ttft_p99_s", f.summary.ttft_p99_s},
                                  {"e2e_p50_s", f.summary.e2e_p50_s},
                                  {"e2e_p99_s", f.summary.e2e_p99_s},
                                  {"hit_tokens", f.hit_tokens}};
  }
  return json.dump();
}

std::string FiguresTable(const std::vector<PolicyFigures>& figures, const std::string& policy,
                         const std::vector<std::string>& baselines) {
  std::string out = absl::StrFormat(
      "%-14s %-13s %5s %9s %9s %11s %10s %10s %10s %10s %10s %7s\n", "workload", "policy", "reqs",
      "prompt", "output", "output/s", "TTFT p50", "TTFT p99", "e2e p50", "e2e p99", "hit tok", "wall");
  for (const std::string& workload : Workloads(figures)) {
    for (const PolicyFigures& f : figures) {
      if (f.workload != workload) continue;
      const ReplaySummary& s = f.summary;
      absl::StrAppendFormat(
          &out, "%-14s %-13s %5d %9d %9d %11.1f %8.1fms %8.1fms %8.1fms %8.1fms %10d %6.1fs\n",
          f.workload, f.policy, s.requests, s.prompt_tokens, s.output_tokens, s.output_tok_s,
          s.ttft_p50_s * 1e3, s.ttft_p99_s * 1e3, s.e2e_p50_s * 1e3, s.e2e_p99_s * 1e3,
          f.hit_tokens, f.wall_s);
    }
  }
  out.append("\nratios (throughput above 1 is better, TTFT and e2e below 1):\n");
  for (const std::string& workload : Workloads(figures)) {
    const PolicyFigures* mine = Find(figures, workload, policy);
    if (mine == nullptr) continue;
    for (const std::string& baseline : baselines) {
      const PolicyFigures* base = Find(figures, workload, baseline);
      if (base == nullptr) continue;
      absl::StrAppendFormat(
          &out,
          "  %-14s %s / %-13s throughput %5.2fx  TTFT p50 %5.2fx  TTFT p99 %5.2fx  e2e p99 "
          "%5.2fx\n",
          workload, policy, baseline, Ratio(mine->summary.output_tok_s, base->summary.output_tok_s),
          Ratio(mine->summary.ttft_p50_s, base->summary.ttft_p50_s),
          Ratio(mine->summary.ttft_p99_s, base->summary.ttft_p99_s),
          Ratio(mine->summary.e2e_p99_s, base->summary.e2e_p99_s));
    }
  }
  return out;
}

}  // namespace strata::bench
