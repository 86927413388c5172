#include "server/engine_setup.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cache/block_hash.h"

namespace strata::server {

absl::StatusOr<engine::Precision> ParsePrecision(std::string_view name, std::string_view what) {
  if (name == "split") return engine::Precision::kBf16Split;
  if (name == "bf16") return engine::Precision::kBf16;
  if (name == "f32") return engine::Precision::kF32;
  return absl::InvalidArgumentError(absl::StrCat(std::string(what), ": \"", std::string(name),
                                                 "\" is not one of split, bf16, f32"));
}

absl::StatusOr<engine::DType> ParseKvDtype(std::string_view name, std::string_view what) {
  if (name == "bf16") return engine::DType::kBF16;
  if (name == "f32") return engine::DType::kF32;
  return absl::InvalidArgumentError(
      absl::StrCat(std::string(what), ": \"", std::string(name), "\" is not one of bf16, f32"));
}

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

namespace {

// The backend's host buffers as the storage tiers' memory (pinned on CUDA).
class BackendHostMemory : public storage::HostMemory {
 public:
  explicit BackendHostMemory(std::unique_ptr<engine::HostBuffer> buffer)
      : buffer_(std::move(buffer)) {}
  std::byte* data() override { return buffer_->data(); }
  size_t size() const override { return buffer_->size(); }

 private:
  std::unique_ptr<engine::HostBuffer> buffer_;
};

storage::HostAllocator BackendAllocator(engine::Backend* backend) {
  return [backend](size_t bytes) -> absl::StatusOr<std::unique_ptr<storage::HostMemory>> {
    absl::StatusOr<std::unique_ptr<engine::HostBuffer>> buffer = backend->AllocateHostBuffer(bytes);
    if (!buffer.ok()) return buffer.status();
    return std::make_unique<BackendHostMemory>(*std::move(buffer));
  };
}

}  // namespace

absl::StatusOr<ServingEngine> MakeServingEngine(const engine::LoadedModel& model,
                                                std::unique_ptr<engine::Tokenizer> tokenizer,
                                                const cache::ModelFingerprint& fingerprint,
                                                const ServingOptions& options) {
  if (absl::Status valid = cache::ValidateKvCacheOptions(options.cache); !valid.ok()) return valid;
  engine::BackendOptions backend_options = options.backend_options;
  backend_options.block_size = options.cache.block_size;
  if (options.cache.device_blocks > 0) backend_options.num_kv_blocks = options.cache.device_blocks;
  if (options.cache.device_bytes > 0) backend_options.kv_bytes = options.cache.device_bytes;
  backend_options.kv_memory_fraction = options.cache.device_memory_fraction;
  ServingEngine serving;
  serving.tokenizer = std::move(tokenizer);
  absl::StatusOr<std::unique_ptr<engine::Backend>> backend =
      engine::CreateBackend(options.backend, model, backend_options);
  if (!backend.ok()) return backend.status();
  serving.backend = *std::move(backend);

  const engine::ModelConfig& config = model.config;
  const engine::KvArenaInfo arena = serving.backend->kv_arena_info();
  // Tier bytes are keyed by the arena's element layout too (the CPU
  // backend's bf16 chunks are not the CUDA backend's token rows).
  const cache::ModelFingerprint keyed =
      cache::WithKvLayout(fingerprint, engine::KvLayoutName(arena.layout));
  absl::StatusOr<cache::TierStores> tiers =
      cache::OpenTierStores(options.cache, static_cast<size_t>(arena.bytes_per_block), keyed,
                            BackendAllocator(serving.backend.get()));
  if (!tiers.ok()) return tiers.status();
  serving.tiers = *std::move(tiers);

  scheduler::SchedulerOptions& scheduler_options = serving.scheduler_options;
  scheduler_options.block_size = arena.spec.block_size;
  scheduler_options.num_blocks = arena.num_blocks;
  scheduler_options.max_model_len = config.max_position_embeddings;
  scheduler_options.vocab_size = config.vocab_size;
  for (int64_t id : config.eos_token_ids) {
    scheduler_options.eos_token_ids.push_back(static_cast<engine::TokenId>(id));
  }
  scheduler_options.model_fingerprint = keyed;
  scheduler_options.kv_spec = arena.spec;
  scheduler_options.host_tier = serving.tiers.host.get();
  scheduler_options.disk_tier = serving.tiers.disk.get();
  scheduler_options.load_cost.policy = options.cache.load_by_cost
                                           ? scheduler::LoadPolicy::kCost
                                           : scheduler::LoadPolicy::kAlwaysLoad;
  scheduler_options.staging_allocator = BackendAllocator(serving.backend.get());
  scheduler_options.write_behind_blocks_per_step = options.cache.write_behind_blocks_per_step;
  return serving;
}

absl::StatusOr<ServingEngine> LoadServingEngine(const std::filesystem::path& model_dir,
                                                const ServingOptions& options) {
  absl::StatusOr<engine::LoadedModel> model = engine::LoadModel(model_dir);
  if (!model.ok()) return model.status();
  absl::StatusOr<std::unique_ptr<engine::Tokenizer>> tokenizer = engine::Tokenizer::Load(model_dir);
  if (!tokenizer.ok()) return tokenizer.status();
  // A template this server cannot render fails here, not on the first chat.
  absl::StatusOr<std::unique_ptr<engine::ChatTemplate>> chat_template =
      engine::ChatTemplate::Load(model_dir);
  if (!chat_template.ok()) return chat_template.status();
  // The fingerprint covers the KV layout, which the cache options decide.
  const engine::KvCacheSpec spec{.num_layers = model->config.num_layers,
                                 .num_kv_heads = model->config.num_kv_heads,
                                 .head_dim = model->config.head_dim,
                                 .block_size = options.cache.block_size,
                                 .dtype = options.backend_options.kv_dtype};
  absl::StatusOr<cache::ModelFingerprint> fingerprint = FingerprintModel(*model, model_dir, spec);
  if (!fingerprint.ok()) return fingerprint.status();
  absl::StatusOr<ServingEngine> serving =
      MakeServingEngine(*model, *std::move(tokenizer), *fingerprint, options);
  if (serving.ok()) serving->chat_template = *std::move(chat_template);
  return serving;
}

absl::StatusOr<ServingEngine> LoadServingEngine(const std::filesystem::path& model_dir,
                                                const std::string& backend_name,
                                                const engine::BackendOptions& options) {
  ServingOptions serving_options{.backend = backend_name, .backend_options = options};
  serving_options.cache.block_size = options.block_size;
  serving_options.cache.device_blocks = options.num_kv_blocks;
  serving_options.cache.device_bytes = options.kv_bytes;
  return LoadServingEngine(model_dir, serving_options);
}

}  // namespace strata::server
