#include "engine/model_config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace strata::engine {
namespace {

using nlohmann::json;

// Typed reads of config keys. Every helper checks the JSON type itself, so no
// nlohmann exception escapes, and every error names the file and key.
class ConfigReader {
 public:
  ConfigReader(const json& json, const std::string& source) : json_(json), source_(source) {}

  // Present and not null.
  bool Has(const char* key) const { return json_.contains(key) && !json_[key].is_null(); }

  absl::Status Error(const char* key, const std::string& problem) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": key '", key, "' ", problem));
  }

  absl::StatusOr<int64_t> PositiveInt(const char* key) const {
    if (!Has(key)) return Error(key, "is required");
    const json& value = json_[key];
    if (!value.is_number_integer() || value.get<int64_t>() <= 0) {
      return Error(key, absl::StrCat("must be a positive integer, got ", value.dump()));
    }
    return value.get<int64_t>();
  }

  absl::StatusOr<int64_t> PositiveInt(const char* key, int64_t fallback) const {
    return Has(key) ? PositiveInt(key) : fallback;
  }

  absl::StatusOr<double> PositiveNumber(const char* key, double fallback) const {
    if (!Has(key)) return fallback;
    const json& value = json_[key];
    if (!value.is_number() || value.get<double>() <= 0) {
      return Error(key, absl::StrCat("must be a positive number, got ", value.dump()));
    }
    return value.get<double>();
  }

  absl::StatusOr<bool> Bool(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    if (!json_[key].is_boolean()) return Error(key, "must be true or false");
    return json_[key].get<bool>();
  }

  absl::StatusOr<std::string> String(const char* key, const std::string& fallback) const {
    if (!Has(key)) return fallback;
    if (!json_[key].is_string()) return Error(key, "must be a string");
    return json_[key].get<std::string>();
  }

  // Token ids: an int, a list of ints, or null/absent (empty).
  absl::StatusOr<std::vector<int64_t>> TokenIds(const char* key) const {
    std::vector<int64_t> ids;
    if (!Has(key)) return ids;
    const json& value = json_[key];
    auto add = [&](const json& id) -> absl::Status {
      if (!id.is_number_integer() || id.get<int64_t>() < 0) {
        return Error(key, absl::StrCat("must hold non-negative token ids, got ", value.dump()));
      }
      ids.push_back(id.get<int64_t>());
      return absl::OkStatus();
    };
    if (value.is_array()) {
      for (const json& id : value) {
        if (absl::Status status = add(id); !status.ok()) return status;
      }
    } else if (absl::Status status = add(value); !status.ok()) {
      return status;
    }
    return ids;
  }

  const json& raw() const { return json_; }
  const std::string& source() const { return source_; }

 private:
  const json& json_;
  const std::string& source_;
};

#define STRATA_ASSIGN_OR_RETURN_CONFIG(lhs, expr) \
  {                                               \
    auto result_ = (expr);                        \
    if (!result_.ok()) return result_.status();   \
    lhs = *std::move(result_);                    \
  }

absl::StatusOr<Architecture> ParseArchitecture(const ConfigReader& reader, std::string* name) {
  const json& raw = reader.raw();
  if (!raw.contains("architectures") || !raw["architectures"].is_array() ||
      raw["architectures"].empty() || !raw["architectures"][0].is_string()) {
    return reader.Error("architectures", "must be a non-empty list of names");
  }
  *name = raw["architectures"][0].get<std::string>();
  if (*name == "LlamaForCausalLM") return Architecture::kLlama;
  if (*name == "MistralForCausalLM") return Architecture::kMistral;
  if (*name == "Qwen2ForCausalLM") return Architecture::kQwen2;
  if (*name == "Qwen3ForCausalLM") return Architecture::kQwen3;
  return absl::UnimplementedError(absl::StrCat(
      reader.source(), ": unsupported architecture '", *name,
      "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM)"));
}

absl::StatusOr<RopeScaling> ParseRopeScaling(const ConfigReader& reader) {
  RopeScaling scaling;
  if (!reader.Has("rope_scaling")) return scaling;
  const json& object = reader.raw()["rope_scaling"];
  if (!object.is_object()) return reader.Error("rope_scaling", "must be null or an object");
  ConfigReader rope(object, reader.source());
  std::string type;
  if (rope.Has("rope_type")) {
    STRATA_ASSIGN_OR_RETURN_CONFIG(type, rope.String("rope_type", ""));
  } else {
    STRATA_ASSIGN_OR_RETURN_CONFIG(type, rope.String("type", ""));
  }
  if (type == "default") return scaling;
  if (type.empty()) return reader.Error("rope_scaling", "lacks 'rope_type' (or 'type')");
  if (type != "linear" && type != "llama3") {
    return absl::UnimplementedError(absl::StrCat(reader.source(), ": rope_scaling type '", type,
                                                 "' is not supported (default, linear, llama3)"));
  }
  if (!rope.Has("factor")) return rope.Error("rope_scaling.factor", "is required");
  STRATA_ASSIGN_OR_RETURN_CONFIG(scaling.factor, rope.PositiveNumber("factor", 1.0));
  scaling.type = RopeType::kLinear;
  if (type == "linear") return scaling;
  scaling.type = RopeType::kLlama3;
  for (const char* key :
       {"low_freq_factor", "high_freq_factor", "original_max_position_embeddings"}) {
    if (!rope.Has(key)) return rope.Error(key, "is required by rope_scaling llama3");
  }
  STRATA_ASSIGN_OR_RETURN_CONFIG(scaling.low_freq_factor,
                                 rope.PositiveNumber("low_freq_factor", 0));
  STRATA_ASSIGN_OR_RETURN_CONFIG(scaling.high_freq_factor,
                                 rope.PositiveNumber("high_freq_factor", 0));
  STRATA_ASSIGN_OR_RETURN_CONFIG(scaling.original_max_position_embeddings,
                                 rope.PositiveInt("original_max_position_embeddings"));
  if (scaling.high_freq_factor <= scaling.low_freq_factor) {
    return rope.Error("high_freq_factor", "must exceed low_freq_factor");
  }
  return scaling;
}

absl::StatusOr<DType> ParseTorchDtype(const ConfigReader& reader) {
  const char* key = reader.Has("torch_dtype") ? "torch_dtype" : "dtype";
  std::string name;
  STRATA_ASSIGN_OR_RETURN_CONFIG(name, reader.String(key, "bfloat16"));
  if (name == "bfloat16") return DType::kBF16;
  if (name == "float16") return DType::kF16;
  if (name == "float32") return DType::kF32;
  return absl::UnimplementedError(absl::StrCat(reader.source(), ": ", key, " '", name,
                                               "' is not supported (bfloat16, float16, float32)"));
}

// Shapes: heads, head_dim and their divisibility.
absl::Status ParseShapes(const ConfigReader& reader, ModelConfig& config) {
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.vocab_size, reader.PositiveInt("vocab_size"));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.hidden_size, reader.PositiveInt("hidden_size"));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.intermediate_size, reader.PositiveInt("intermediate_size"));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.num_layers, reader.PositiveInt("num_hidden_layers"));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.num_heads, reader.PositiveInt("num_attention_heads"));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.max_position_embeddings,
                                 reader.PositiveInt("max_position_embeddings"));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.num_kv_heads,
                                 reader.PositiveInt("num_key_value_heads", config.num_heads));
  if (config.num_heads % config.num_kv_heads != 0) {
    return reader.Error("num_key_value_heads",
                        absl::StrCat("(", config.num_kv_heads,
                                     ") must divide num_attention_heads (", config.num_heads, ")"));
  }
  if (reader.Has("head_dim")) {
    STRATA_ASSIGN_OR_RETURN_CONFIG(config.head_dim, reader.PositiveInt("head_dim"));
  } else if (config.hidden_size % config.num_heads != 0) {
    return reader.Error("num_attention_heads",
                        absl::StrCat("(", config.num_heads, ") must divide hidden_size (",
                                     config.hidden_size, ") when head_dim is absent"));
  } else {
    config.head_dim = config.hidden_size / config.num_heads;
  }
  // NumParameters and KvBytesPerToken compute in int64: absurd shapes (a
  // hostile or mistyped config.json) must be refused here, not overflow
  // there. Counted as if biases and norms were on and embeddings untied, in
  // long double, which holds any product of int64s (approximately: enough
  // for a bound).
  using Wide = long double;
  const auto hidden = static_cast<Wide>(config.hidden_size);
  const Wide q_dim = static_cast<Wide>(config.num_heads) * config.head_dim;
  const Wide kv_dim = static_cast<Wide>(config.num_kv_heads) * config.head_dim;
  const Wide per_layer = 2 * hidden + (q_dim + 2 * kv_dim) * hidden + hidden * q_dim + q_dim +
                         2 * kv_dim + 2 * static_cast<Wide>(config.head_dim) +
                         3 * static_cast<Wide>(config.intermediate_size) * hidden;
  const Wide parameters = 2 * static_cast<Wide>(config.vocab_size) * hidden +
                          static_cast<Wide>(config.num_layers) * per_layer + hidden;
  constexpr Wide kMaxParameters = 1125899906842624.0L;  // 2^50: far beyond any model
  if (parameters > kMaxParameters ||
      2 * static_cast<Wide>(config.num_layers) * kv_dim * 8 > kMaxParameters) {
    return reader.Error("hidden_size",
                        "with vocab_size, intermediate_size, num_hidden_layers and the heads "
                        "describes more than 2^50 parameters");
  }
  return absl::OkStatus();
}

// Architecture-specific attention options and sliding window.
absl::Status ParseFamilyOptions(const ConfigReader& reader, ModelConfig& config) {
  bool attention_bias = false;
  STRATA_ASSIGN_OR_RETURN_CONFIG(attention_bias, reader.Bool("attention_bias", false));
  config.qkv_bias = config.architecture == Architecture::kQwen2 || attention_bias;
  config.qk_norm = config.architecture == Architecture::kQwen3;
  const bool qwen =
      config.architecture == Architecture::kQwen2 || config.architecture == Architecture::kQwen3;
  bool window_enabled = config.architecture == Architecture::kMistral;
  if (qwen)
    STRATA_ASSIGN_OR_RETURN_CONFIG(window_enabled, reader.Bool("use_sliding_window", false));
  if (window_enabled && reader.Has("sliding_window")) {
    int64_t window = 0;
    STRATA_ASSIGN_OR_RETURN_CONFIG(window, reader.PositiveInt("sliding_window"));
    config.sliding_window = window;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelConfig> ParseModelConfig(const json& json, const std::string& source) {
  if (!json.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": config is not a JSON object"));
  }
  ConfigReader reader(json, source);
  ModelConfig config;
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.architecture,
                                 ParseArchitecture(reader, &config.architecture_name));
  if (absl::Status status = ParseShapes(reader, config); !status.ok()) return status;
  std::string activation;
  STRATA_ASSIGN_OR_RETURN_CONFIG(activation, reader.String("hidden_act", "silu"));
  if (activation != "silu") {
    return absl::UnimplementedError(
        absl::StrCat(source, ": hidden_act '", activation, "' is not supported (silu only)"));
  }
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.rms_norm_eps, reader.PositiveNumber("rms_norm_eps", 1e-6));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.rope_theta, reader.PositiveNumber("rope_theta", 10000.0));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.rope_scaling, ParseRopeScaling(reader));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.tie_word_embeddings,
                                 reader.Bool("tie_word_embeddings", false));
  if (absl::Status status = ParseFamilyOptions(reader, config); !status.ok()) return status;
  std::vector<int64_t> bos;
  STRATA_ASSIGN_OR_RETURN_CONFIG(bos, reader.TokenIds("bos_token_id"));
  if (bos.size() > 1) return reader.Error("bos_token_id", "must be a single id");
  if (!bos.empty()) config.bos_token_id = bos.front();
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.eos_token_ids, reader.TokenIds("eos_token_id"));
  STRATA_ASSIGN_OR_RETURN_CONFIG(config.torch_dtype, ParseTorchDtype(reader));
  return config;
}

absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / "config.json";
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat(path.string(), ": no such file"));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path.string(), ": cannot read"));
  json parsed = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not valid JSON"));
  }
  return ParseModelConfig(parsed, path.string());
}

int64_t ModelConfig::NumParameters() const {
  const int64_t q_dim = num_heads * head_dim;
  const int64_t kv_dim = num_kv_heads * head_dim;
  int64_t per_layer = 2 * hidden_size;                                    // the two norms
  per_layer += (q_dim + 2 * kv_dim) * hidden_size + hidden_size * q_dim;  // q, k, v, o
  if (qkv_bias) per_layer += q_dim + 2 * kv_dim;
  if (qk_norm) per_layer += 2 * head_dim;
  per_layer += 3 * intermediate_size * hidden_size;  // gate, up, down
  int64_t total = vocab_size * hidden_size + num_layers * per_layer + hidden_size;
  if (!tie_word_embeddings) total += vocab_size * hidden_size;
  return total;
}

int64_t ModelConfig::KvBytesPerToken(size_t kv_element_bytes) const {
  return 2 * num_layers * num_kv_heads * head_dim * static_cast<int64_t>(kv_element_bytes);
}

std::string ArchitectureName(Architecture architecture) {
  switch (architecture) {
    case Architecture::kLlama:
      return "llama";
    case Architecture::kMistral:
      return "mistral";
    case Architecture::kQwen2:
      return "qwen2";
    case Architecture::kQwen3:
      return "qwen3";
  }
  return "unknown";
}

std::string RopeTypeName(RopeType type) {
  switch (type) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kLlama3:
      return "llama3";
  }
  return "unknown";
}

json ModelConfigToJson(const ModelConfig& config) {
  json rope = {{"rope_type", RopeTypeName(config.rope_scaling.type)}};
  if (config.rope_scaling.type != RopeType::kDefault) rope["factor"] = config.rope_scaling.factor;
  if (config.rope_scaling.type == RopeType::kLlama3) {
    rope["low_freq_factor"] = config.rope_scaling.low_freq_factor;
    rope["high_freq_factor"] = config.rope_scaling.high_freq_factor;
    rope["original_max_position_embeddings"] = config.rope_scaling.original_max_position_embeddings;
  }
  static constexpr const char* kDtypeNames[] = {"float32", "float16", "bfloat16"};
  return json{
      {"architecture", config.architecture_name},
      {"family", ArchitectureName(config.architecture)},
      {"vocab_size", config.vocab_size},
      {"hidden_size", config.hidden_size},
      {"intermediate_size", config.intermediate_size},
      {"num_layers", config.num_layers},
      {"num_heads", config.num_heads},
      {"num_kv_heads", config.num_kv_heads},
      {"head_dim", config.head_dim},
      {"max_position_embeddings", config.max_position_embeddings},
      {"rms_norm_eps", config.rms_norm_eps},
      {"rope_theta", config.rope_theta},
      {"rope_scaling", rope},
      {"tie_word_embeddings", config.tie_word_embeddings},
      {"qkv_bias", config.qkv_bias},
      {"qk_norm", config.qk_norm},
      {"sliding_window", config.sliding_window ? json(*config.sliding_window) : json(nullptr)},
      {"bos_token_id", config.bos_token_id ? json(*config.bos_token_id) : json(nullptr)},
      {"eos_token_ids", config.eos_token_ids},
      {"torch_dtype", kDtypeNames[static_cast<int>(config.torch_dtype)]},
  };
}

}  // namespace strata::engine
