// `strata generate`: streams a completion to stdout through the same step
// loop (Scheduler + Backend) the daemon runs.
#include <iostream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/backend.h"
#include "scheduler/engine_loop.h"
#include "scheduler/output_stream.h"
#include "scheduler/scheduler.h"
#include "server/commands/args.h"
#include "server/commands/command_registry.h"
#include "server/engine_setup.h"

namespace strata::server {
namespace {

constexpr char kName[] = "generate";

absl::StatusOr<engine::SamplingParams> SamplingFromArgs(const ParsedArgs& args) {
  engine::SamplingParams params;
  absl::StatusOr<int64_t> max_tokens = args.GetInt("max-tokens", 64);
  absl::StatusOr<double> temperature = args.GetDouble("temperature", 0.0);
  absl::StatusOr<double> top_p = args.GetDouble("top-p", 1.0);
  absl::StatusOr<int64_t> top_k = args.GetInt("top-k", 0);
  absl::StatusOr<double> min_p = args.GetDouble("min-p", 0.0);
  for (const absl::Status& status : {max_tokens.status(), temperature.status(), top_p.status(),
                                     top_k.status(), min_p.status()}) {
    if (!status.ok()) return status;
  }
  params.max_tokens = static_cast<int32_t>(*max_tokens);
  params.temperature = static_cast<float>(*temperature);
  params.top_p = static_cast<float>(*top_p);
  params.top_k = static_cast<int32_t>(*top_k);
  params.min_p = static_cast<float>(*min_p);
  if (auto seed = args.GetInt("seed", -1); !seed.ok()) {
    return seed.status();
  } else if (*seed >= 0) {
    params.seed = static_cast<uint64_t>(*seed);
  }
  return params;
}

// Loads everything, then runs the loop until the one request finishes.
// Returns the finish reason, or the error that ended it.
absl::StatusOr<std::string> Generate(const std::filesystem::path& model_dir,
                                     const std::string& prompt,
                                     const engine::SamplingParams& params) {
  absl::StatusOr<ServingEngine> serving =
      LoadServingEngine(model_dir, "cpu", engine::BackendOptions{});
  if (!serving.ok()) return serving.status();
  absl::StatusOr<std::vector<engine::TokenId>> prompt_ids =
      serving->tokenizer->Encode(prompt, /*add_special_tokens=*/true);
  if (!prompt_ids.ok()) return prompt_ids.status();
  scheduler::Scheduler scheduler(serving->scheduler_options);
  const scheduler::Request request{.id = 1, .prompt_ids = *prompt_ids, .sampling = params};
  scheduler::OutputStreams streams(*serving->tokenizer, serving->scheduler_options.eos_token_ids);
  streams.Add(request);
  absl::Status added = scheduler.AddRequest(request);
  if (!added.ok()) return added;

  std::cout << prompt << std::flush;
  std::string finish_reason;
  while (scheduler.HasWork()) {
    for (const scheduler::TokenEvent& event :
         streams.Apply(scheduler, scheduler::RunStep(scheduler, *serving->backend))) {
      std::cout << event.text << std::flush;
      if (!event.finished) continue;
      if (!event.error.ok()) return event.error;
      finish_reason = std::string(scheduler::FinishReasonName(event.finish_reason));
    }
  }
  std::cout << "\n";
  return finish_reason;
}

int RunGenerate(const std::vector<std::string>& raw_args) {
  ArgSpec spec{.value_options = {"model", "prompt", "max-tokens", "temperature", "top-p", "top-k",
                                 "min-p", "seed"}};
  absl::StatusOr<ParsedArgs> args = ParseArgs(raw_args, spec);
  if (!args.ok()) return UsageError(kName, std::string(args.status().message()));
  absl::StatusOr<engine::SamplingParams> params = SamplingFromArgs(*args);
  if (!params.ok()) return UsageError(kName, std::string(params.status().message()));
  std::filesystem::path model_dir = args->Get("model").value_or(DefaultModelDir().string());
  absl::StatusOr<std::string> finished = Generate(model_dir, args->Get("prompt").value_or(""), *params);
  if (!finished.ok()) {
    std::cerr << "strata generate: " << finished.status().message() << "\n";
    return kExitFailure;
  }
  std::cerr << "[finished: " << *finished << "]\n";
  return kExitOk;
}

const CommandRegistrar kRegistrar({
    .name = kName,
    .usage = "[--model DIR] [--prompt TEXT] [--max-tokens N] [--temperature T] [--top-p P] "
             "[--top-k K] [--min-p P] [--seed S]",
    .run = RunGenerate,
});

}  // namespace
}  // namespace strata::server
