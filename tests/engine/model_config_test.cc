#include "engine/model_config.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using json = nlohmann::json;

const fs::path kModels = fs::path(STRATA_TEST_DATA_DIR) / "models";
const fs::path kEmbedded = fs::path(STRATA_SOURCE_DIR) / "models/aidreams260K";
constexpr char kSource[] = "/some/dir/config.json";

// A minimal valid Llama config; tests edit one key at a time.
json BaseConfig() {
  return json{{"architectures", {"LlamaForCausalLM"}},
              {"hidden_size", 64},
              {"intermediate_size", 160},
              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},
              {"vocab_size", 100},
              {"max_position_embeddings", 256}};
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(ModelConfigTest, ParsesLlamaFixture) {
  auto config = LoadModelConfig(kModels / "llama-tiny");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, Architecture::kLlama);
  EXPECT_EQ(config->architecture_name, "LlamaForCausalLM");
  EXPECT_EQ(config->vocab_size, 1024);
  EXPECT_EQ(config->hidden_size, 128);
  EXPECT_EQ(config->intermediate_size, 352);
  EXPECT_EQ(config->num_layers, 3);
  EXPECT_EQ(config->num_heads, 4);
  EXPECT_EQ(config->num_kv_heads, 2);
  EXPECT_EQ(config->head_dim, 32);
  EXPECT_EQ(config->max_position_embeddings, 4096);
  EXPECT_DOUBLE_EQ(config->rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(config->rope_theta, 10000.0);
  EXPECT_EQ(config->rope_scaling.type, RopeType::kDefault);
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_FALSE(config->qkv_bias);
  EXPECT_FALSE(config->qk_norm);
  EXPECT_FALSE(config->sliding_window.has_value());
  EXPECT_EQ(config->bos_token_id, 1);
  EXPECT_THAT(config->eos_token_ids, ElementsAre(2));
  EXPECT_EQ(config->torch_dtype, DType::kBF16);
  EXPECT_EQ(config->KvBytesPerToken(2), 2 * 3 * 2 * 32 * 2);
}

TEST(ModelConfigTest, ParsesQwenAndEmbeddedFixtures) {
  auto qwen2 = LoadModelConfig(kModels / "qwen2-tiny");
  ASSERT_TRUE(qwen2.ok()) << qwen2.status();
  EXPECT_EQ(qwen2->architecture, Architecture::kQwen2);
  EXPECT_TRUE(qwen2->qkv_bias);
  EXPECT_FALSE(qwen2->qk_norm);
  EXPECT_TRUE(qwen2->tie_word_embeddings);
  EXPECT_EQ(qwen2->head_dim, 32);  // derived: 128 / 4
  EXPECT_DOUBLE_EQ(qwen2->rope_theta, 1e6);
  EXPECT_FALSE(qwen2->sliding_window.has_value());

  auto qwen3 = LoadModelConfig(kModels / "qwen3-tiny");
  ASSERT_TRUE(qwen3.ok()) << qwen3.status();
  EXPECT_EQ(qwen3->architecture, Architecture::kQwen3);
  EXPECT_FALSE(qwen3->qkv_bias);
  EXPECT_TRUE(qwen3->qk_norm);
  EXPECT_EQ(qwen3->head_dim, 64);  // explicit, not 128 / 4

  auto embedded = LoadModelConfig(kEmbedded);
  ASSERT_TRUE(embedded.ok()) << embedded.status();
  EXPECT_EQ(embedded->torch_dtype, DType::kF32);
  EXPECT_TRUE(embedded->tie_word_embeddings);
  EXPECT_EQ(embedded->num_kv_heads, 4);
  EXPECT_EQ(embedded->head_dim, 16);
}

// The parameter count must equal the elements actually stored: every fixture
// stores exactly the tensors its config implies.
TEST(ModelConfigTest, NumParametersMatchesCheckpoints) {
  for (const fs::path& dir :
       {kModels / "llama-tiny", kModels / "qwen2-tiny", kModels / "qwen3-tiny", kEmbedded}) {
    auto config = LoadModelConfig(dir);
    ASSERT_TRUE(config.ok()) << config.status();
    auto file = SafetensorsFile::Open(dir / "model.safetensors");
    ASSERT_TRUE(file.ok()) << file.status();
    int64_t stored = 0;
    for (const TensorView& view : (*file)->tensors()) stored += view.NumElements();
    EXPECT_EQ(config->NumParameters(), stored) << dir;
  }
}

TEST(ModelConfigTest, AppliesDefaults) {
  auto config = ParseModelConfig(BaseConfig(), kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->num_kv_heads, 4);
  EXPECT_EQ(config->head_dim, 16);
  EXPECT_DOUBLE_EQ(config->rope_theta, 10000.0);
  EXPECT_DOUBLE_EQ(config->rms_norm_eps, 1e-6);
  EXPECT_EQ(config->torch_dtype, DType::kBF16);
  EXPECT_FALSE(config->tie_word_embeddings);
  EXPECT_FALSE(config->bos_token_id.has_value());
  EXPECT_TRUE(config->eos_token_ids.empty());

  json explicit_null = BaseConfig();
  explicit_null["head_dim"] = nullptr;
  explicit_null["num_key_value_heads"] = nullptr;
  config = ParseModelConfig(explicit_null, kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->head_dim, 16);
  EXPECT_EQ(config->num_kv_heads, 4);
}

TEST(ModelConfigTest, ReadsTokenIdsAndDtypeSpellings) {
  json config_json = BaseConfig();
  config_json["eos_token_id"] = {128001, 128008, 128009};
  config_json["dtype"] = "float16";
  auto config = ParseModelConfig(config_json, kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->eos_token_ids, ElementsAre(128001, 128008, 128009));
  EXPECT_EQ(config->torch_dtype, DType::kF16);

  config_json["torch_dtype"] = "float64";
  config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("float64")));

  config_json = BaseConfig();
  config_json["eos_token_id"] = "two";
  config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("eos_token_id")));
}

TEST(ModelConfigTest, ParsesSupportedRopeScaling) {
  json config_json = BaseConfig();
  config_json["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  auto config = ParseModelConfig(config_json, kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_scaling.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(config->rope_scaling.factor, 2.0);

  config_json["rope_scaling"] = {{"rope_type", "llama3"},
                                 {"factor", 8.0},
                                 {"low_freq_factor", 1.0},
                                 {"high_freq_factor", 4.0},
                                 {"original_max_position_embeddings", 8192}};
  config = ParseModelConfig(config_json, kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_scaling.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(config->rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(config->rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(config->rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(config->rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_EQ(ModelConfigToJson(*config)["rope_scaling"]["rope_type"], "llama3");

  config_json["rope_scaling"] = {{"rope_type", "default"}};
  config = ParseModelConfig(config_json, kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->rope_scaling.type, RopeType::kDefault);
}

TEST(ModelConfigTest, RejectsUnsupportedOrIncompleteRopeScaling) {
  for (const std::string type : {"yarn", "dynamic", "longrope"}) {
    json config_json = BaseConfig();
    config_json["rope_scaling"] = {{"rope_type", type}, {"factor", 4.0}};
    auto config = ParseModelConfig(config_json, kSource);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented) << type;
    EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("'" + type + "'")));
  }
  json config_json = BaseConfig();
  config_json["rope_scaling"] = {{"rope_type", "linear"}};
  auto config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("factor")));

  config_json["rope_scaling"] = {
      {"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}};
  config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("high_freq_factor")));
}

TEST(ModelConfigTest, UnknownArchitectureIsUnimplemented) {
  json config_json = BaseConfig();
  config_json["architectures"] = {"GPTNeoXForCausalLM"};
  auto config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("GPTNeoXForCausalLM")));

  config_json.erase("architectures");
  config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("architectures")));
}

TEST(ModelConfigTest, MissingOrMistypedRequiredKeyNamesIt) {
  for (const char* key : {"hidden_size", "intermediate_size", "num_hidden_layers",
                          "num_attention_heads", "vocab_size", "max_position_embeddings"}) {
    json config_json = BaseConfig();
    config_json.erase(key);
    auto config = ParseModelConfig(config_json, kSource);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(
        Message(config.status()),
        AllOf(HasSubstr(kSource), HasSubstr(std::string("'") + key + "'"), HasSubstr("required")));
    config_json[key] = "12";
    config = ParseModelConfig(config_json, kSource);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(Message(config.status()), HasSubstr(std::string("'") + key + "'"));
    config_json[key] = 0;
    config = ParseModelConfig(config_json, kSource);
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << key;
  }
}

TEST(ModelConfigTest, RejectsIndivisibleHeads) {
  json config_json = BaseConfig();
  config_json["num_key_value_heads"] = 3;
  auto config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()),
              AllOf(HasSubstr(kSource), HasSubstr("num_key_value_heads")));

  config_json = BaseConfig();
  config_json["num_attention_heads"] = 6;  // 64 % 6 != 0 and no head_dim
  config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("head_dim")));
  config_json["head_dim"] = 12;  // explicit head_dim makes it fine
  config = ParseModelConfig(config_json, kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->head_dim, 12);
}

TEST(ModelConfigTest, OnlySiluIsSupported) {
  json config_json = BaseConfig();
  config_json["hidden_act"] = "gelu";
  auto config = ParseModelConfig(config_json, kSource);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(kSource), HasSubstr("gelu")));
}

TEST(ModelConfigTest, FamilyOptions) {
  json mistral = BaseConfig();
  mistral["architectures"] = {"MistralForCausalLM"};
  mistral["sliding_window"] = 4096;
  auto config = ParseModelConfig(mistral, kSource);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->architecture, Architecture::kMistral);
  EXPECT_EQ(config->sliding_window, 4096);
  mistral["sliding_window"] = nullptr;
  config = ParseModelConfig(mistral, kSource);
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->sliding_window.has_value());

  json qwen2 = BaseConfig();
  qwen2["architectures"] = {"Qwen2ForCausalLM"};
  qwen2["sliding_window"] = 4096;
  qwen2["use_sliding_window"] = false;
  config = ParseModelConfig(qwen2, kSource);
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->sliding_window.has_value());
  EXPECT_TRUE(config->qkv_bias);
  qwen2["use_sliding_window"] = true;
  config = ParseModelConfig(qwen2, kSource);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->sliding_window, 4096);

  json llama = BaseConfig();
  llama["sliding_window"] = 4096;  // Llama has no sliding window
  llama["attention_bias"] = true;
  config = ParseModelConfig(llama, kSource);
  ASSERT_TRUE(config.ok());
  EXPECT_FALSE(config->sliding_window.has_value());
  EXPECT_TRUE(config->qkv_bias);

  json qwen3 = BaseConfig();
  qwen3["architectures"] = {"Qwen3ForCausalLM"};
  qwen3["attention_bias"] = true;
  config = ParseModelConfig(qwen3, kSource);
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->qkv_bias);
  EXPECT_TRUE(config->qk_norm);
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "strata_cfg_XXXXXX").string();
    const char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr) << pattern;
    path_ = pattern;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(ModelConfigTest, LoadErrorsNameTheFile) {
  TempDir dir;
  const fs::path path = dir.path() / "config.json";
  auto config = LoadModelConfig(dir.path());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Message(config.status()), HasSubstr(path.string()));

  std::ofstream(path) << "{\"hidden_size\": ";
  config = LoadModelConfig(dir.path());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(config.status()), HasSubstr(path.string()));

  json yarn = BaseConfig();
  yarn["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  std::ofstream(path) << yarn.dump();
  config = LoadModelConfig(dir.path());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(Message(config.status()), AllOf(HasSubstr(path.string()), HasSubstr("yarn")));
}

TEST(ModelConfigTest, ToJsonReportsEveryField) {
  auto config = LoadModelConfig(kModels / "qwen3-tiny");
  ASSERT_TRUE(config.ok()) << config.status();
  json out = ModelConfigToJson(*config);
  EXPECT_EQ(out["architecture"], "Qwen3ForCausalLM");
  EXPECT_EQ(out["family"], "qwen3");
  EXPECT_EQ(out["hidden_size"], 128);
  EXPECT_EQ(out["num_layers"], 3);
  EXPECT_EQ(out["num_kv_heads"], 2);
  EXPECT_EQ(out["head_dim"], 64);
  EXPECT_EQ(out["qk_norm"], true);
  EXPECT_EQ(out["qkv_bias"], false);
  EXPECT_EQ(out["tie_word_embeddings"], true);
  EXPECT_TRUE(out["sliding_window"].is_null());
  EXPECT_EQ(out["eos_token_ids"], json::array({2}));
  EXPECT_EQ(out["torch_dtype"], "bfloat16");
  EXPECT_EQ(out["rope_scaling"], json({{"rope_type", "default"}}));
}

}  // namespace
}  // namespace strata::engine
