// `strata inspect [--model DIR]`: loads and validates a model directory and
// prints its config and memory needs as JSON, without running it.
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "engine/model_weights.h"
#include "nlohmann/json.hpp"
#include "server/commands/args.h"
#include "server/commands/command_registry.h"

namespace strata::server {
namespace {

constexpr char kCommand[] = "inspect";
constexpr size_t kBf16Bytes = 2;

nlohmann::json DescribeModel(const std::filesystem::path& dir, const engine::LoadedModel& model) {
  const engine::ModelConfig& config = model.config;
  const std::vector<engine::TensorView> tensors = engine::ModelTensors(model.weights);
  int64_t weights_bytes = 0;
  for (const engine::TensorView& tensor : tensors) {
    weights_bytes += static_cast<int64_t>(tensor.nbytes);
  }
  const int64_t num_parameters = config.NumParameters();
  const int64_t weights_bytes_bf16 = num_parameters * static_cast<int64_t>(kBf16Bytes);
  const int64_t kv_bytes_per_token = config.KvBytesPerToken(kBf16Bytes);
  const int64_t kv_bytes_max_context = kv_bytes_per_token * config.max_position_embeddings;
  return nlohmann::json{
      {"model_dir", dir.string()},
      {"config", engine::ModelConfigToJson(config)},
      {"num_tensors", tensors.size()},
      {"num_parameters", num_parameters},
      {"weights_bytes", weights_bytes},
      {"weights_bytes_bf16", weights_bytes_bf16},
      {"kv_bytes_per_token", kv_bytes_per_token},
      {"kv_bytes_max_context", kv_bytes_max_context},
      // The backends compute in bf16, so serving one full-length sequence
      // needs the bf16 weights plus its bf16 KV cache (activations excluded).
      {"memory_bytes_estimate", weights_bytes_bf16 + kv_bytes_max_context},
  };
}

int RunInspect(const std::vector<std::string>& args) {
  absl::StatusOr<ParsedArgs> parsed = ParseArgs(args, ArgSpec{.value_options = {"model"}});
  if (!parsed.ok()) return UsageError(kCommand, std::string(parsed.status().message()));
  const std::filesystem::path dir = parsed->Get("model").value_or(DefaultModelDir().string());
  absl::StatusOr<engine::LoadedModel> model = engine::LoadModel(dir);
  if (!model.ok()) {
    std::cerr << "strata inspect: cannot load " << dir.string() << ": " << model.status() << "\n";
    return kExitFailure;
  }
  std::cout << DescribeModel(dir, *model).dump(2) << "\n";
  return kExitOk;
}

const CommandRegistrar kInspectRegistrar(CommandInfo{
    .name = kCommand,
    .usage = "[--model DIR]  print a model's config, parameter count and memory needs as JSON",
    .run = RunInspect,
});

}  // namespace
}  // namespace strata::server
