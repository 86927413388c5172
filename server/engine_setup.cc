#include "server/engine_setup.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cache/block_hash.h"

namespace strata::server {

absl::StatusOr<cache::ModelFingerprint> FingerprintModel(const engine::LoadedModel& model,
                                                         const std::filesystem::path& model_dir,
                                                         const engine::KvCacheSpec& kv_spec) {
  cache::ModelFingerprintBuilder builder(cache::WeightDigest::kSampled);
  builder.AddConfig(engine::ModelConfigToJson(model.config).dump());
  // The same ids mean the same text only under the same tokenizer.
  const std::filesystem::path tokenizer_path = model_dir / "tokenizer.json";
  std::ifstream tokenizer_file(tokenizer_path, std::ios::binary);
  if (!tokenizer_file) {
    return absl::NotFoundError(absl::StrCat("cannot read ", tokenizer_path.string()));
  }
  std::ostringstream tokenizer_bytes;
  tokenizer_bytes << tokenizer_file.rdbuf();
  builder.AddConfig(tokenizer_bytes.str());
  for (const engine::TensorView& tensor : engine::ModelTensors(model.weights)) {
    builder.AddTensor(tensor.name, tensor.dtype, tensor.shape,
                      absl::Span<const std::byte>(tensor.data, tensor.nbytes));
  }
  return std::move(builder).Finish(kv_spec.dtype, kv_spec.block_size);
}

absl::StatusOr<ServingEngine> LoadServingEngine(const std::filesystem::path& model_dir,
                                                const std::string& backend_name,
                                                const engine::BackendOptions& options) {
  absl::StatusOr<engine::LoadedModel> model = engine::LoadModel(model_dir);
  if (!model.ok()) return model.status();
  ServingEngine serving;
  absl::StatusOr<std::unique_ptr<engine::Tokenizer>> tokenizer = engine::Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) return tokenizer.status();
  serving.tokenizer = *std::move(tokenizer);
  absl::StatusOr<std::unique_ptr<engine::Backend>> backend =
      engine::CreateBackend(backend_name, *model, options);
  if (!backend.ok()) return backend.status();
  serving.backend = *std::move(backend);

  const engine::ModelConfig& config = model->config;
  const engine::KvArenaInfo arena = serving.backend->kv_arena_info();
  absl::StatusOr<cache::ModelFingerprint> fingerprint =
      FingerprintModel(*model, model_dir, arena.spec);
  if (!fingerprint.ok()) return fingerprint.status();
  scheduler::SchedulerOptions& scheduler_options = serving.scheduler_options;
  scheduler_options.block_size = arena.spec.block_size;
  scheduler_options.num_blocks = arena.num_blocks;
  scheduler_options.max_model_len = config.max_position_embeddings;
  scheduler_options.vocab_size = config.vocab_size;
  for (int64_t id : config.eos_token_ids) {
    scheduler_options.eos_token_ids.push_back(static_cast<engine::TokenId>(id));
  }
  scheduler_options.model_fingerprint = *fingerprint;
  scheduler_options.kv_spec = arena.spec;
  return serving;
}

}  // namespace strata::server
