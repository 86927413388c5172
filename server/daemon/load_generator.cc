#include "server/daemon/load_generator.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "bench/replay.h"
#include "server/daemon/grpc_client.h"
#include "strata/v1/strata.grpc.pb.h"

namespace strata::server {
namespace {

using Clock = std::chrono::steady_clock;

// What a request's thread reports to the driver: one message's tokens, or
// the end of the call.
struct Update {
  int64_t index = 0;
  double time_s = 0;
  std::vector<int32_t> tokens;
  bool finished = false;
  grpc::Status status;
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;
};

// Per request, as the driver sees it.
struct Record {
  double start_s = 0;
  double first_token_s = -1;
  double finish_s = 0;
  int64_t generated = 0;
};

class Driver {
 public:
  Driver(const bench::Workload& workload, const LoadOptions& options)
      : workload_(workload),
        options_(options),
        replay_(workload),
        records_(workload.requests.size()),
        start_(Clock::now()) {}

  WorkloadFigures Run();

 private:
  double Now() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  // The start time bench::Replay gives a request: its arrival, or the
  // finish of its dependencies plus its think time if later.
  double StartTime(int64_t index) const;
  void Launch(int64_t index);
  void Call(int64_t index, v1::GenerateRequest request);
  void Push(Update update);
  void Apply(const Update& update);
  WorkloadFigures Summarize() const;

  const bench::Workload& workload_;
  const LoadOptions& options_;
  bench::Replay replay_;  // driver thread only
  std::vector<Record> records_;
  WorkloadFigures figures_;
  std::vector<std::thread> threads_;
  const Clock::time_point start_;

  std::mutex mu_;
  std::condition_variable updated_;
  std::deque<Update> updates_;  // guarded by mu_
};

double Driver::StartTime(int64_t index) const {
  const bench::WorkloadRequest& request = workload_.requests[static_cast<size_t>(index)];
  double start = request.arrival_s;
  for (int64_t dependency : {request.history_of, request.after}) {
    if (dependency >= 0) {
      start = std::max(start, records_[static_cast<size_t>(dependency)].finish_s + request.think_s);
    }
  }
  return start;
}

void Driver::Launch(int64_t index) {
  const bench::WorkloadRequest& spec = workload_.requests[static_cast<size_t>(index)];
  records_[static_cast<size_t>(index)].start_s = StartTime(index);
  v1::GenerateRequest request;
  for (int32_t id : replay_.Prompt(index)) request.mutable_token_ids()->add_ids(id);
  v1::SamplingParams& sampling = *request.mutable_sampling();
  sampling.set_max_tokens(spec.max_tokens);
  sampling.set_ignore_eos(true);  // every request does exactly its work
  sampling.set_temperature(0);
  request.set_session_id(spec.session_id);
  request.set_workflow_id(spec.workflow_id);
  request.set_agent_id(spec.agent_id);
  for (const std::string& next : spec.next_agent_ids) request.add_next_agent_ids(next);
  request.set_request_id(absl::StrCat(workload_.name, "-", index));
  threads_.emplace_back(&Driver::Call, this, index, std::move(request));
}

void Driver::Call(int64_t index, v1::GenerateRequest request) {
  std::unique_ptr<v1::Strata::Stub> stub = v1::Strata::NewStub(options_.channel);
  grpc::ClientContext context;
  // The load balancer keeps a session (or a workflow) on one daemon.
  AddCallMetadata(context, options_.token,
                  !request.session_id().empty() ? request.session_id() : request.workflow_id());
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(options_.request_timeout_ms));
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub->Generate(&context, request);
  v1::GenerateResponse response;
  Update end{.index = index, .finished = true};
  while (reader->Read(&response)) {
    if (response.tokens_size() > 0) {
      Update update{.index = index, .time_s = Now()};
      for (const v1::GeneratedToken& token : response.tokens()) update.tokens.push_back(token.id());
      Push(std::move(update));
    }
    if (response.has_final()) {
      end.prompt_tokens = response.final().usage().prompt_tokens();
      end.cached_prompt_tokens = response.final().usage().cached_prompt_tokens();
    }
  }
  end.status = reader->Finish();
  end.time_s = Now();
  Push(std::move(end));
}

void Driver::Push(Update update) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    updates_.push_back(std::move(update));
  }
  updated_.notify_one();
}

void Driver::Apply(const Update& update) {
  Record& record = records_[static_cast<size_t>(update.index)];
  for (int32_t token : update.tokens) {
    if (record.first_token_s < 0) record.first_token_s = update.time_s;
    ++record.generated;
    replay_.OnToken(update.index, token, update.time_s);
  }
  if (!update.finished) return;
  record.finish_s = update.time_s;
  figures_.prompt_tokens += update.prompt_tokens;
  figures_.cached_prompt_tokens += update.cached_prompt_tokens;
  if (!update.status.ok()) {
    if (figures_.errors++ == 0) {
      figures_.first_error = absl::StrCat(StatusCodeName(update.status.error_code()), ": ",
                                          update.status.error_message());
    }
  }
  replay_.OnFinished(update.index, update.time_s);
}

WorkloadFigures Driver::Run() {
  figures_.workload = workload_.name;
  figures_.requests = static_cast<int64_t>(workload_.requests.size());
  while (!replay_.done()) {
    for (int64_t index : replay_.TakeReady(Now())) Launch(index);
    std::deque<Update> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Until something reports, or the next arrival is due.
      const std::optional<double> next = replay_.NextStart();
      const double wait_s = next ? std::max(0.0, *next - Now()) : 1.0;
      updated_.wait_for(lock, std::chrono::duration<double>(wait_s),
                        [this] { return !updates_.empty(); });
      batch.swap(updates_);
    }
    for (const Update& update : batch) Apply(update);
  }
  for (std::thread& thread : threads_) thread.join();
  return Summarize();
}

WorkloadFigures Driver::Summarize() const {
  WorkloadFigures figures = figures_;
  std::vector<double> ttfts;
  std::vector<double> tpots;
  for (const Record& record : records_) {
    figures.makespan_s = std::max(figures.makespan_s, record.finish_s);
    figures.output_tokens += record.generated;
    if (record.first_token_s >= 0) ttfts.push_back(record.first_token_s - record.start_s);
    if (record.generated >= 2) {
      tpots.push_back((record.finish_s - record.first_token_s) /
                      static_cast<double>(record.generated - 1));
    }
  }
  if (figures.makespan_s > 0) {
    figures.output_tok_s = static_cast<double>(figures.output_tokens) / figures.makespan_s;
    figures.total_tok_s =
        static_cast<double>(figures.output_tokens + figures.prompt_tokens) / figures.makespan_s;
  }
  figures.ttft_p50_s = bench::Percentile(ttfts, 50);
  figures.ttft_p90_s = bench::Percentile(ttfts, 90);
  figures.ttft_p99_s = bench::Percentile(ttfts, 99);
  figures.tpot_p50_s = bench::Percentile(tpots, 50);
  figures.tpot_p90_s = bench::Percentile(tpots, 90);
  figures.tpot_p99_s = bench::Percentile(tpots, 99);
  if (figures.prompt_tokens > 0) {
    figures.cache_hit_rate = static_cast<double>(figures.cached_prompt_tokens) /
                             static_cast<double>(figures.prompt_tokens);
  }
  return figures;
}

}  // namespace

absl::StatusOr<WorkloadFigures> RunWorkloadOverGrpc(const bench::Workload& workload,
                                                    const LoadOptions& options) {
  if (workload.requests.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("workload ", workload.name, " has no requests"));
  }
  Driver driver(workload, options);
  return driver.Run();
}

}  // namespace strata::server
