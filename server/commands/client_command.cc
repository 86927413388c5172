// `strata client`: one request to a running daemon over gRPC. Streams the
// reply's text to stdout as it arrives (Generate), or waits for it whole
// (--unary: Complete), then prints the finish reason and usage to stderr.
// --health asks the standard health service instead. Errors print the gRPC
// status code and message and exit 1.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "server/commands/args.h"
#include "server/commands/command_registry.h"
#include "server/daemon/grpc_client.h"
#include "strata/v1/strata.grpc.pb.h"

namespace strata::server {
namespace {

constexpr char kName[] = "client";

absl::Status FillSampling(const ParsedArgs& args, v1::SamplingParams& sampling) {
  if (args.Has("max-tokens")) {
    absl::StatusOr<int64_t> value = args.GetInt("max-tokens", 0);
    if (!value.ok()) return value.status();
    sampling.set_max_tokens(static_cast<int32_t>(*value));
  }
  if (args.Has("temperature")) {
    absl::StatusOr<double> value = args.GetDouble("temperature", 0);
    if (!value.ok()) return value.status();
    sampling.set_temperature(static_cast<float>(*value));
  }
  if (args.Has("top-p")) {
    absl::StatusOr<double> value = args.GetDouble("top-p", 1);
    if (!value.ok()) return value.status();
    sampling.set_top_p(static_cast<float>(*value));
  }
  if (args.Has("top-k")) {
    absl::StatusOr<int64_t> value = args.GetInt("top-k", 0);
    if (!value.ok()) return value.status();
    sampling.set_top_k(static_cast<int32_t>(*value));
  }
  if (args.Has("seed")) {
    absl::StatusOr<int64_t> value = args.GetInt("seed", 0);
    if (!value.ok()) return value.status();
    sampling.set_seed(static_cast<uint64_t>(*value));
  }
  sampling.set_ignore_eos(args.Has("ignore-eos"));
  return absl::OkStatus();
}

absl::StatusOr<v1::GenerateRequest> BuildRequest(const ParsedArgs& args) {
  v1::GenerateRequest request;
  if (std::optional<std::string> ids = args.Get("token-ids")) {
    for (absl::string_view word : absl::StrSplit(*ids, ',', absl::SkipWhitespace())) {
      int32_t id = 0;
      if (!absl::SimpleAtoi(word, &id)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--token-ids: \"", std::string(word), "\" is not an integer"));
      }
      request.mutable_token_ids()->add_ids(id);
    }
  } else if (args.Has("chunk")) {
    // Context chunks (cached on their own and blended), then the prompt.
    for (const std::string& chunk : args.GetAll("chunk")) {
      request.mutable_chunks()->add_chunks()->set_text(chunk);
    }
    if (std::optional<std::string> prompt = args.Get("prompt")) {
      request.mutable_chunks()->add_chunks()->set_text(*prompt);
    }
  } else {
    request.set_text(args.Get("prompt").value_or(""));
  }
  if (absl::Status filled = FillSampling(args, *request.mutable_sampling()); !filled.ok()) {
    return filled;
  }
  request.set_session_id(args.Get("session").value_or(""));
  request.set_request_id(args.Get("request-id").value_or(""));
  return request;
}

std::string FinishReasonName(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_ABORT:
      return "abort";
    default:
      break;
  }
  return "unspecified";
}

void PrintUsage(const v1::FinalInfo& final_info) {
  const v1::Usage& usage = final_info.usage();
  std::cerr << absl::StrFormat(
      "[finished: %s] prompt_tokens=%d cached_prompt_tokens=%d (device=%d host=%d disk=%d) "
      "generated_tokens=%d blend_reused=%d blend_recomputed=%d ttft_s=%.4f total_s=%.4f\n",
      FinishReasonName(final_info.finish_reason()), usage.prompt_tokens(),
      usage.cached_prompt_tokens(), usage.cached_device_tokens(), usage.cached_host_tokens(),
      usage.cached_disk_tokens(), usage.generated_tokens(), usage.blend_reused_tokens(),
      usage.blend_recomputed_tokens(), usage.time_to_first_token_s(),
      usage.total_time_s());
}

int Fail(const grpc::Status& status) {
  std::cerr << "strata client: " << StatusCodeName(status.error_code()) << ": "
            << status.error_message() << "\n";
  return kExitFailure;
}

int RunHealth(grpc::Channel& channel, std::chrono::milliseconds timeout) {
  absl::StatusOr<HealthState> state = CheckHealth(channel, "", timeout);
  if (!state.ok()) {
    return Fail(grpc::Status(static_cast<grpc::StatusCode>(state.status().code()),
                             std::string(state.status().message())));
  }
  std::cout << HealthStateName(*state) << "\n";
  return *state == HealthState::kServing ? kExitOk : kExitFailure;
}

int RunClient(const std::vector<std::string>& raw_args) {
  ArgSpec spec{
      .value_options = {"server", "prompt", "token-ids", "session", "max-tokens", "temperature",
                        "top-p", "top-k", "seed", "token", "tls-ca", "timeout-ms", "request-id"},
      .flag_options = {"health", "unary", "ignore-eos"},
      .repeated_options = {"chunk"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return UsageError(kName, std::string(args.status().message()));
  absl::StatusOr<int64_t> timeout_ms = args->GetInt("timeout-ms", 0);
  if (!timeout_ms.ok() || *timeout_ms < 0) {
    return UsageError(kName, "--timeout-ms: milliseconds >= 0");
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      OpenChannel({.server = args->Get("server").value_or("127.0.0.1:50051"),
                   .tls_ca_file = args->Get("tls-ca").value_or("")});
  if (!channel.ok()) return UsageError(kName, std::string(channel.status().message()));
  if (args->Has("health")) {
    return RunHealth(**channel, std::chrono::milliseconds(*timeout_ms > 0 ? *timeout_ms : 5000));
  }
  absl::StatusOr<v1::GenerateRequest> request = BuildRequest(*args);
  if (!request.ok()) return UsageError(kName, std::string(request.status().message()));

  std::unique_ptr<v1::Strata::Stub> stub = v1::Strata::NewStub(*channel);
  grpc::ClientContext context;
  AddCallMetadata(context, args->Get("token").value_or(""), request->session_id());
  if (*timeout_ms > 0) {
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(*timeout_ms));
  }
  if (args->Has("unary")) {
    v1::CompleteResponse response;
    grpc::Status status = stub->Complete(&context, *request, &response);
    if (!status.ok()) return Fail(status);
    std::cout << response.text() << "\n" << std::flush;
    PrintUsage(response.final());
    return kExitOk;
  }
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub->Generate(&context, *request);
  v1::GenerateResponse response;
  v1::FinalInfo final_info;
  while (reader->Read(&response)) {
    std::cout << response.text() << std::flush;
    if (response.has_final()) final_info = response.final();
  }
  grpc::Status status = reader->Finish();
  std::cout << "\n" << std::flush;
  if (!status.ok()) return Fail(status);
  PrintUsage(final_info);
  return kExitOk;
}

const CommandRegistrar kRegistrar({
    .name = kName,
    .usage = "[--server HOST:PORT] (--prompt TEXT | --token-ids 1,2,3 | --chunk TEXT ... "
             "[--prompt TEXT]) [--session ID] "
             "[--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] "
             "[--ignore-eos] [--token TOKEN] [--tls-ca FILE.pem] [--timeout-ms MS] "
             "[--request-id ID] [--unary] | --health",
    .run = RunClient,
});

}  // namespace
}  // namespace strata::server
