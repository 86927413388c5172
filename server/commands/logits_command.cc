// `strata logits --model DIR --ids 5,6,7 --out FILE.safetensors`: the fp32
// logits of every position of one sequence, written as tensor `logits`
// [T, vocab]. Runs through the CPU backend with a one-sequence StepPlan, the
// same path serving uses, so it doubles as a numerical check against other
// implementations. --precision and --kv-dtype pick the engine mode (default:
// the daemon's serving defaults), so that the exact modes (f32 + f32 KV) can
// be held to a reference; --reference FILE --tensor NAME prints the largest
// absolute difference from that tensor.
#include <algorithm>
#include <cmath>
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
#include "server/config/daemon_config.h"
#include "server/engine_setup.h"

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

// The largest |logits - reference[tensor]|; the shapes must agree.
absl::StatusOr<float> MaxErrorAgainst(const std::vector<float>& logits,
                                      const std::vector<int64_t>& shape,
                                      const std::string& reference, const std::string& tensor) {
  auto file = engine::SafetensorsFile::Open(reference);
  if (!file.ok()) return file.status();
  const engine::TensorView* expected = (*file)->Find(tensor);
  if (expected == nullptr) {
    return absl::NotFoundError(absl::StrCat(reference, ": no tensor '", tensor, "'"));
  }
  if (expected->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        reference, ": tensor '", tensor, "' has ", expected->NumElements(),
        " elements in another shape than the logits [", shape[0], ", ", shape[1], "]"));
  }
  float worst = 0.0f;
  for (int64_t i = 0; i < expected->NumElements(); ++i) {
    worst = std::max(worst, std::abs(logits[static_cast<size_t>(i)] - expected->ElementAsFloat(i)));
  }
  return worst;
}

struct LogitsRequest {
  std::string model_dir;
  std::vector<engine::TokenId> ids;
  std::string out;
  engine::BackendOptions options;
  std::string reference, tensor;  // both or neither
};

absl::Status WriteLogits(const LogitsRequest& request) {
  const std::vector<engine::TokenId>& ids = request.ids;
  auto model = engine::LoadModel(request.model_dir);
  if (!model.ok()) return model.status();
  engine::BackendOptions options = request.options;
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
  absl::Status written =
      engine::WriteSafetensors(request.out, std::span<const engine::TensorView>(&view, 1));
  if (!written.ok() || request.reference.empty()) return written;
  absl::StatusOr<float> error =
      MaxErrorAgainst(logits, view.shape, request.reference, request.tensor);
  if (!error.ok()) return error.status();
  std::cout << "max abs error vs " << request.tensor << ": " << *error << "\n";
  return absl::OkStatus();
}

int RunLogits(const std::vector<std::string>& args) {
  auto parsed = ParseArgs(args, ArgSpec{.value_options = {"model", "ids", "out", "precision",
                                                          "kv-dtype", "reference", "tensor"}});
  if (!parsed.ok()) return UsageError(kCommand, std::string(parsed.status().message()));
  auto ids_text = parsed->Require("ids");
  if (!ids_text.ok()) return UsageError(kCommand, std::string(ids_text.status().message()));
  auto out = parsed->Require("out");
  if (!out.ok()) return UsageError(kCommand, std::string(out.status().message()));
  auto ids = ParseIds(*ids_text);
  if (!ids.ok()) return UsageError(kCommand, std::string(ids.status().message()));
  LogitsRequest request{.model_dir = parsed->Get("model").value_or(DefaultModelDir().string()),
                        .ids = *std::move(ids),
                        .out = *out,
                        .reference = parsed->Get("reference").value_or(""),
                        .tensor = parsed->Get("tensor").value_or("")};
  const EngineSection defaults;  // the daemon's serving mode
  absl::StatusOr<engine::Precision> precision =
      ParsePrecision(parsed->Get("precision").value_or(defaults.precision), "--precision");
  if (!precision.ok()) return UsageError(kCommand, std::string(precision.status().message()));
  absl::StatusOr<engine::DType> kv_dtype =
      ParseKvDtype(parsed->Get("kv-dtype").value_or(defaults.kv_dtype), "--kv-dtype");
  if (!kv_dtype.ok()) return UsageError(kCommand, std::string(kv_dtype.status().message()));
  request.options.precision = *precision;
  request.options.kv_dtype = *kv_dtype;
  if (request.reference.empty() != request.tensor.empty()) {
    return UsageError(kCommand, "--reference and --tensor go together");
  }
  absl::Status status = WriteLogits(request);
  if (!status.ok()) {
    std::cerr << "strata logits: " << status << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

const CommandRegistrar kLogitsRegistrar(CommandInfo{
    .name = kCommand,
    .usage = "[--model DIR] --ids ID,ID,... --out FILE.safetensors [--precision split|bf16|f32] "
             "[--kv-dtype bf16|f32] [--reference FILE.safetensors --tensor NAME]",
    .run = RunLogits,
});

}  // namespace
}  // namespace strata::server
