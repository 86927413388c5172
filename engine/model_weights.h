// Loading a checkpoint directory: config.json plus safetensors (single file or
// sharded through model.safetensors.index.json), memory-mapped and validated
// against the config. Backends convert or pack these views at load time.
#ifndef STRATA_ENGINE_MODEL_WEIGHTS_H_
#define STRATA_ENGINE_MODEL_WEIGHTS_H_

#include <filesystem>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/tensor_view.h"

namespace strata::engine {

// Owns the memory the views point into (mapped files, or heap buffers for
// random weights). Views stay valid for the owner's lifetime.
class WeightStorage {
 public:
  virtual ~WeightStorage() = default;
};

// Views of one decoder layer. Optional tensors are empty() when absent.
struct LayerWeights {
  TensorView input_norm;           // [hidden]
  TensorView q_proj;               // [heads*head_dim, hidden]
  TensorView k_proj;               // [kv_heads*head_dim, hidden]
  TensorView v_proj;               // [kv_heads*head_dim, hidden]
  TensorView o_proj;               // [hidden, heads*head_dim]
  TensorView q_bias, k_bias, v_bias;  // qkv_bias only
  TensorView q_norm, k_norm;          // qk_norm only: [head_dim]
  TensorView post_attention_norm;  // [hidden]
  TensorView gate_proj;            // [intermediate, hidden]
  TensorView up_proj;              // [intermediate, hidden]
  TensorView down_proj;            // [hidden, intermediate]
};

struct ModelWeights {
  TensorView embed_tokens;  // [vocab, hidden]
  std::vector<LayerWeights> layers;
  TensorView final_norm;    // [hidden]
  TensorView lm_head;       // [vocab, hidden]; the embedding when tied
  std::unique_ptr<WeightStorage> storage;
};

struct LoadedModel {
  ModelConfig config;
  ModelWeights weights;
};

// Loads and validates `dir`. Every tensor the config implies must exist with
// the right shape and a supported dtype, and lie inside its file. Errors name
// the file and the tensor or key: NOT_FOUND (missing file or tensor),
// DATA_LOSS (truncated file, header that lies about sizes or offsets),
// INVALID_ARGUMENT (wrong shape, bad dtype), UNIMPLEMENTED (architecture).
absl::StatusOr<LoadedModel> LoadModel(const std::filesystem::path& dir);

// The distinct tensors of `weights` in load order (embedding, each layer's
// present tensors, final norm, then lm_head unless it aliases the embedding).
// The views borrow `weights.storage`. For sizing (`strata inspect`) and tests.
std::vector<TensorView> ModelTensors(const ModelWeights& weights);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_MODEL_WEIGHTS_H_
