// `strata bench serve`: a load generator against a running daemon. Replays
// the workloads of bench/workloads.h (chat, shared_prefix, agents) over gRPC
// with open-loop arrivals and prints, per workload, throughput, time to first
// token and time per output token at p50/p90/p99, and the cache-hit rate the
// server reported (cached_prompt_tokens / prompt_tokens of the final usages).
// With --json the last line is one JSON object {workload: {figure: value}}.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench/workloads.h"
#include "nlohmann/json.hpp"
#include "server/commands/args.h"
#include "server/commands/bench_serve.h"
#include "server/commands/command_registry.h"
#include "server/daemon/grpc_client.h"
#include "server/daemon/load_generator.h"
#include "strata/v1/strata.grpc.pb.h"

namespace strata::server {

const char kBenchServeUsage[] =
    "serve [--server HOST:PORT] [--rate R] [--workload chat|shared_prefix|agents|all] "
    "[--scale S] [--seed N] [--token TOKEN] [--tls-ca FILE.pem] [--json]";

namespace {

constexpr char kName[] = "bench serve";

// The model's vocabulary and context bound the workloads' token ids.
absl::StatusOr<v1::ModelInfo> FetchModelInfo(const std::shared_ptr<grpc::Channel>& channel,
                                             const std::string& token) {
  std::unique_ptr<v1::Strata::Stub> stub = v1::Strata::NewStub(channel);
  grpc::ClientContext context;
  AddCallMetadata(context, token, "");
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ModelInfo info;
  grpc::Status status = stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        absl::StrCat("GetModelInfo: ", StatusCodeName(status.error_code()), ": ",
                                     status.error_message()));
  }
  return info;
}

absl::StatusOr<std::vector<bench::Workload>> SelectWorkloads(const ParsedArgs& args,
                                                             int64_t vocab_size) {
  absl::StatusOr<double> scale = args.GetDouble("scale", 1.0);
  absl::StatusOr<double> rate = args.GetDouble("rate", 0.0);
  absl::StatusOr<int64_t> seed = args.GetInt("seed", 1);
  for (const absl::Status& status : {scale.status(), rate.status(), seed.status()}) {
    if (!status.ok()) return status;
  }
  if (*scale <= 0) return absl::InvalidArgumentError("--scale: must be > 0");
  if (*rate < 0) return absl::InvalidArgumentError("--rate: requests per second, > 0");
  bench::WorkloadShapes shapes = bench::ScaledShapes(*scale);
  // --rate sets the open-loop arrival rate: new chat sessions, and
  // shared-prefix requests, per second. The agents take turns, so their
  // arrivals are their predecessors' finishes.
  if (*rate > 0) {
    shapes.chat.sessions_per_s = *rate;
    shapes.shared_prefix.requests_per_s = *rate;
  }
  const std::string which = args.Get("workload").value_or("all");
  std::vector<bench::Workload> all =
      bench::MakeWorkloads(shapes, vocab_size, static_cast<uint64_t>(*seed));
  if (which == "all") return all;
  for (bench::Workload& workload : all) {
    if (workload.name == which) return std::vector<bench::Workload>{std::move(workload)};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--workload: \"", which, "\" is not one of chat, shared_prefix, agents, all"));
}

void PrintTable(const std::vector<WorkloadFigures>& all) {
  std::cout << absl::StrFormat("%-14s %5s %4s %8s %9s %9s %9s %9s %9s %9s %9s %9s %6s\n",
                               "workload", "reqs", "err", "tok/s", "out tok/s", "ttft p50",
                               "ttft p90", "ttft p99", "tpot p50", "tpot p90", "tpot p99",
                               "makespan", "hit %");
  for (const WorkloadFigures& f : all) {
    std::cout << absl::StrFormat(
        "%-14s %5d %4d %8.1f %9.1f %8.1fms %8.1fms %8.1fms %8.2fms %8.2fms %8.2fms %8.2fs "
        "%5.1f%%\n",
        f.workload, f.requests, f.errors, f.total_tok_s, f.output_tok_s, 1e3 * f.ttft_p50_s,
        1e3 * f.ttft_p90_s, 1e3 * f.ttft_p99_s, 1e3 * f.tpot_p50_s, 1e3 * f.tpot_p90_s,
        1e3 * f.tpot_p99_s, f.makespan_s, 100 * f.cache_hit_rate);
    if (f.errors > 0) std::cout << "  first error: " << f.first_error << "\n";
  }
}

nlohmann::json FiguresJson(const std::vector<WorkloadFigures>& all) {
  nlohmann::json json = nlohmann::json::object();
  for (const WorkloadFigures& f : all) {
    json[f.workload] = {
        {"requests", f.requests},
        {"errors", f.errors},
        {"prompt_tokens", f.prompt_tokens},
        {"cached_prompt_tokens", f.cached_prompt_tokens},
        {"output_tokens", f.output_tokens},
        {"makespan_s", f.makespan_s},
        {"throughput_tok_s", f.total_tok_s},
        {"output_tok_s", f.output_tok_s},
        {"ttft_p50_s", f.ttft_p50_s},
        {"ttft_p90_s", f.ttft_p90_s},
        {"ttft_p99_s", f.ttft_p99_s},
        {"tpot_p50_s", f.tpot_p50_s},
        {"tpot_p90_s", f.tpot_p90_s},
        {"tpot_p99_s", f.tpot_p99_s},
        {"cache_hit_rate", f.cache_hit_rate},
    };
  }
  return json;
}

}  // namespace

int RunBenchServe(const std::vector<std::string>& raw_args) {
  ArgSpec spec{.value_options = {"server", "rate", "workload", "scale", "seed", "token", "tls-ca",
                                 "timeout-ms"},
               .flag_options = {"json"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return UsageError(kName, std::string(args.status().message()));
  absl::StatusOr<int64_t> timeout_ms = args->GetInt("timeout-ms", 600000);
  if (!timeout_ms.ok() || *timeout_ms <= 0) return UsageError(kName, "--timeout-ms: must be > 0");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      OpenChannel({.server = args->Get("server").value_or("127.0.0.1:50051"),
                   .tls_ca_file = args->Get("tls-ca").value_or("")});
  if (!channel.ok()) return UsageError(kName, std::string(channel.status().message()));
  const std::string token = args->Get("token").value_or("");
  absl::StatusOr<v1::ModelInfo> info = FetchModelInfo(*channel, token);
  if (!info.ok()) {
    std::cerr << "strata bench serve: " << info.status().message() << "\n";
    return kExitFailure;
  }
  absl::StatusOr<std::vector<bench::Workload>> workloads =
      SelectWorkloads(*args, info->vocab_size());
  if (!workloads.ok()) return UsageError(kName, std::string(workloads.status().message()));

  std::cout << "strata bench serve: model " << info->name() << " (" << info->backend()
            << "), server " << args->Get("server").value_or("127.0.0.1:50051") << "\n";
  std::vector<WorkloadFigures> all;
  int64_t errors = 0;
  for (const bench::Workload& workload : *workloads) {
    if (workload.max_sequence_tokens > info->max_context_tokens()) {
      std::cerr << "strata bench serve: workload " << workload.name << " needs "
                << workload.max_sequence_tokens << " tokens of context; the model has "
                << info->max_context_tokens() << " (lower --scale)\n";
      return kExitFailure;
    }
    absl::StatusOr<WorkloadFigures> figures = RunWorkloadOverGrpc(
        workload, {.channel = *channel, .token = token, .request_timeout_ms = *timeout_ms});
    if (!figures.ok()) {
      std::cerr << "strata bench serve: " << figures.status().message() << "\n";
      return kExitFailure;
    }
    errors += figures->errors;
    all.push_back(*std::move(figures));
  }
  PrintTable(all);
  if (args->Has("json")) std::cout << FiguresJson(all).dump() << "\n";
  if (errors > 0) {
    std::cerr << "strata bench serve: " << errors << " request(s) failed\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace strata::server
