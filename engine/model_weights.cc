#include "engine/model_weights.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/checkpoint.h"

namespace strata::engine {
namespace {

// Keeps the checkpoint's mappings alive for as long as the views are used.
class CheckpointStorage : public WeightStorage {
 public:
  explicit CheckpointStorage(std::unique_ptr<Checkpoint> checkpoint)
      : checkpoint_(std::move(checkpoint)) {}

 private:
  std::unique_ptr<Checkpoint> checkpoint_;
};

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Fetches tensors by Hugging Face name and checks them against the shapes the
// config implies. Dtypes need no check here: SafetensorsFile admits only the
// dtypes every backend converts from (F32, F16, BF16).
class TensorFetcher {
 public:
  TensorFetcher(const Checkpoint& checkpoint, std::string config_path)
      : checkpoint_(checkpoint), config_path_(std::move(config_path)) {}

  absl::StatusOr<TensorView> Fetch(const std::string& name, std::vector<int64_t> shape) const {
    absl::StatusOr<TensorView> view = checkpoint_.Find(name);
    if (!view.ok()) return view.status();
    if (view->shape != shape) {
      return absl::InvalidArgumentError(absl::StrCat(
          checkpoint_.FileFor(name).string(), ": tensor '", name, "' has shape ",
          ShapeString(view->shape), " but ", config_path_, " implies ", ShapeString(shape)));
    }
    return view;
  }

 private:
  const Checkpoint& checkpoint_;
  std::string config_path_;
};

#define STRATA_FETCH(field, name, ...)                                        \
  {                                                                           \
    absl::StatusOr<TensorView> fetched_ = fetcher.Fetch(name, {__VA_ARGS__}); \
    if (!fetched_.ok()) return fetched_.status();                             \
    field = *std::move(fetched_);                                             \
  }

absl::StatusOr<LayerWeights> LoadLayer(const TensorFetcher& fetcher, const ModelConfig& config,
                                       int64_t layer) {
  const std::string prefix = absl::StrCat("model.layers.", layer, ".");
  const std::string attn = prefix + "self_attn.";
  const int64_t hidden = config.hidden_size;
  const int64_t q_dim = config.num_heads * config.head_dim;
  const int64_t kv_dim = config.num_kv_heads * config.head_dim;
  const int64_t inter = config.intermediate_size;
  LayerWeights w;
  STRATA_FETCH(w.input_norm, prefix + "input_layernorm.weight", hidden);
  STRATA_FETCH(w.q_proj, attn + "q_proj.weight", q_dim, hidden);
  STRATA_FETCH(w.k_proj, attn + "k_proj.weight", kv_dim, hidden);
  STRATA_FETCH(w.v_proj, attn + "v_proj.weight", kv_dim, hidden);
  STRATA_FETCH(w.o_proj, attn + "o_proj.weight", hidden, q_dim);
  if (config.qkv_bias) {
    STRATA_FETCH(w.q_bias, attn + "q_proj.bias", q_dim);
    STRATA_FETCH(w.k_bias, attn + "k_proj.bias", kv_dim);
    STRATA_FETCH(w.v_bias, attn + "v_proj.bias", kv_dim);
  }
  if (config.qk_norm) {
    STRATA_FETCH(w.q_norm, attn + "q_norm.weight", config.head_dim);
    STRATA_FETCH(w.k_norm, attn + "k_norm.weight", config.head_dim);
  }
  STRATA_FETCH(w.post_attention_norm, prefix + "post_attention_layernorm.weight", hidden);
  STRATA_FETCH(w.gate_proj, prefix + "mlp.gate_proj.weight", inter, hidden);
  STRATA_FETCH(w.up_proj, prefix + "mlp.up_proj.weight", inter, hidden);
  STRATA_FETCH(w.down_proj, prefix + "mlp.down_proj.weight", hidden, inter);
  return w;
}

}  // namespace

absl::StatusOr<LoadedModel> LoadModel(const std::filesystem::path& dir) {
  LoadedModel model;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  model.config = *std::move(config);
  absl::StatusOr<std::unique_ptr<Checkpoint>> checkpoint = Checkpoint::Open(dir);
  if (!checkpoint.ok()) return checkpoint.status();
  const ModelConfig& c = model.config;
  TensorFetcher fetcher(**checkpoint, (dir / "config.json").string());
  ModelWeights& weights = model.weights;
  STRATA_FETCH(weights.embed_tokens, "model.embed_tokens.weight", c.vocab_size, c.hidden_size);
  weights.layers.reserve(static_cast<size_t>(c.num_layers));
  for (int64_t layer = 0; layer < c.num_layers; ++layer) {
    absl::StatusOr<LayerWeights> loaded = LoadLayer(fetcher, c, layer);
    if (!loaded.ok()) return loaded.status();
    weights.layers.push_back(*std::move(loaded));
  }
  STRATA_FETCH(weights.final_norm, "model.norm.weight", c.hidden_size);
  if (c.tie_word_embeddings) {
    // Tied checkpoints may still carry a copy of lm_head.weight; the
    // embedding is authoritative, as in transformers.
    weights.lm_head = weights.embed_tokens;
  } else {
    STRATA_FETCH(weights.lm_head, "lm_head.weight", c.vocab_size, c.hidden_size);
  }
  weights.storage = std::make_unique<CheckpointStorage>(*std::move(checkpoint));
  return model;
}

std::vector<TensorView> ModelTensors(const ModelWeights& weights) {
  std::vector<TensorView> tensors;
  auto add = [&tensors](const TensorView& view) {
    if (!view.empty()) tensors.push_back(view);
  };
  add(weights.embed_tokens);
  for (const LayerWeights& layer : weights.layers) {
    for (const TensorView* view :
         {&layer.input_norm, &layer.q_proj, &layer.k_proj, &layer.v_proj, &layer.o_proj,
          &layer.q_bias, &layer.k_bias, &layer.v_bias, &layer.q_norm, &layer.k_norm,
          &layer.post_attention_norm, &layer.gate_proj, &layer.up_proj, &layer.down_proj}) {
      add(*view);
    }
  }
  add(weights.final_norm);
  if (weights.lm_head.data != weights.embed_tokens.data) add(weights.lm_head);
  return tensors;
}

}  // namespace strata::engine
