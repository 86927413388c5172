// `strata logits --model DIR --ids 5,6,7 --out FILE.safetensors`: the fp32
// logits of every position of one sequence, written as tensor `logits`
// [T, vocab]. Runs through the CPU backend with a one-sequence StepPlan, the
// same path serving uses, so it doubles as a numerical check against other
// implementations.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/backend.h"
#include "engine/model_weights.h"
#include "engine/safetensors.h"
#include "engine/step.h"
#include "server/commands/args.h"
#include "server/commands/command_registry.h"

namespace strata::server {
namespace {

constexpr char kCommand[] = "logits";

absl::StatusOr<std::vector<engine::TokenId>> ParseIds(const std::string& text) {
  std::vector<engine::TokenId> ids;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--ids: '", part, "' is not a token id"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) return absl::InvalidArgumentError("--ids is empty");
  return ids;
}

absl::Status WriteLogits(const std::string& model_dir, const std::vector<engine::TokenId>& ids,
                         const std::string& out) {
  auto model = engine::LoadModel(model_dir);
  if (!model.ok()) return model.status();
  engine::BackendOptions options;
  options.num_kv_blocks =
      (static_cast<int64_t>(ids.size()) + options.block_size - 1) / options.block_size;
  auto backend = engine::CreateBackend("cpu", *model, options);
  if (!backend.ok()) return backend.status();
  engine::StepPlan plan;
  engine::SequenceStep step;
  step.token_ids = ids;
  for (int64_t b = 0; b < options.num_kv_blocks; ++b) {
    step.block_table.push_back(static_cast<engine::BlockId>(b));
  }
  step.return_logits = true;
  plan.sequences.push_back(std::move(step));
  auto result = (*backend)->Execute(plan);
  if (!result.ok()) return result.status();
  const std::vector<float>& logits = result->outputs[0].logits;
  engine::TensorView view;
  view.name = "logits";
  view.dtype = engine::DType::kF32;
  view.shape = {static_cast<int64_t>(ids.size()), model->config.vocab_size};
  view.data = reinterpret_cast<const std::byte*>(logits.data());
  view.nbytes = logits.size() * sizeof(float);
  return engine::WriteSafetensors(out, std::span<const engine::TensorView>(&view, 1));
}

int RunLogits(const std::vector<std::string>& args) {
  auto parsed = ParseArgs(args, ArgSpec{.value_options = {"model", "ids", "out"}});
  if (!parsed.ok()) return UsageError(kCommand, std::string(parsed.status().message()));
  auto ids_text = parsed->Require("ids");
  if (!ids_text.ok()) return UsageError(kCommand, std::string(ids_text.status().message()));
  auto out = parsed->Require("out");
  if (!out.ok()) return UsageError(kCommand, std::string(out.status().message()));
  auto ids = ParseIds(*ids_text);
  if (!ids.ok()) return UsageError(kCommand, std::string(ids.status().message()));
  const std::string model = parsed->Get("model").value_or(DefaultModelDir().string());
  absl::Status status = WriteLogits(model, *ids, *out);
  if (!status.ok()) {
    std::cerr << "strata logits: " << status << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

const CommandRegistrar kLogitsRegistrar(CommandInfo{
    .name = kCommand,
    .usage = "[--model DIR] --ids ID,ID,... --out FILE.safetensors",
    .run = RunLogits,
});

}  // namespace
}  // namespace strata::server
