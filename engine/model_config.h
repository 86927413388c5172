// The parsed config.json of a Hugging Face decoder checkpoint. One struct for
// every supported family (Llama, Mistral, Qwen2, Qwen3): the forward pass is a
// single parameterised decoder and reads only these fields.
#ifndef STRATA_ENGINE_MODEL_CONFIG_H_
#define STRATA_ENGINE_MODEL_CONFIG_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tensor_view.h"
#include "nlohmann/json.hpp"

namespace strata::engine {

enum class Architecture { kLlama, kMistral, kQwen2, kQwen3 };

enum class RopeType { kDefault, kLinear, kLlama3 };

struct RopeScaling {
  RopeType type = RopeType::kDefault;
  double factor = 1.0;                      // linear and llama3
  double low_freq_factor = 1.0;             // llama3
  double high_freq_factor = 4.0;            // llama3
  int64_t original_max_position_embeddings = 0;  // llama3
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_name;  // as written, e.g. "Qwen2ForCausalLM"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // == num_heads (MHA), 1 (MQA) or a divisor (GQA)
  int64_t head_dim = 0;      // explicit head_dim, else hidden_size / num_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;  // Qwen2, or Llama's attention_bias
  bool qk_norm = false;   // Qwen3: per-head RMSNorm on q and k
  std::optional<int64_t> sliding_window;  // only when the config enables it
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config allows an int or a list
  DType torch_dtype = DType::kBF16;

  // Parameter count implied by the shapes (embeddings counted once if tied).
  int64_t NumParameters() const;
  // KV cache bytes per token for the given KV element size.
  int64_t KvBytesPerToken(size_t kv_element_bytes) const;
};

// Parses and validates a config.json document. `source` names the file in
// error messages. Errors are INVALID_ARGUMENT (bad or missing key, naming it)
// or UNIMPLEMENTED (unknown architecture, unsupported rope type or activation).
absl::StatusOr<ModelConfig> ParseModelConfig(const nlohmann::json& json,
                                             const std::string& source);

// Reads `dir`/config.json and parses it. NOT_FOUND if the file is missing.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& dir);

std::string ArchitectureName(Architecture architecture);
std::string RopeTypeName(RopeType type);

// The config as JSON, for `strata inspect`.
nlohmann::json ModelConfigToJson(const ModelConfig& config);

}  // namespace strata::engine

#endif  // STRATA_ENGINE_MODEL_CONFIG_H_
