#include "engine/model_weights.h"

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/temp_dir.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

const fs::path kModels = fs::path(STRATA_TEST_DATA_DIR) / "models";
const fs::path kEmbedded = fs::path(STRATA_SOURCE_DIR) / "models/aidreams260K";

using strata::testing::TempDir;

using strata::testing::ReadFile;

// A safetensors file decoded without the library under test.
struct RawFile {
  explicit RawFile(const fs::path& path) : bytes(ReadFile(path)) {
    uint64_t length = 0;
    std::memcpy(&length, bytes.data(), 8);
    header = json::parse(bytes.substr(8, length));
    header.erase("__metadata__");
    data_start = 8 + length;
  }
  float Element(const std::string& name, int64_t i) const {
    const json& entry = header.at(name);
    const std::string dtype = entry["dtype"];
    const char* base = bytes.data() + data_start + entry["data_offsets"][0].get<size_t>();
    float value = 0;
    if (dtype == "F32") {
      std::memcpy(&value, base + 4 * i, 4);
    } else if (dtype == "BF16") {
      uint16_t half;
      std::memcpy(&half, base + 2 * i, 2);
      uint32_t bits = static_cast<uint32_t>(half) << 16;
      std::memcpy(&value, &bits, 4);
    } else {
      ADD_FAILURE() << "test decoder lacks " << dtype;
    }
    return value;
  }
  std::string bytes;
  json header;
  size_t data_start = 0;
};

struct FixtureCase {
  fs::path dir;
  size_t num_tensors;  // distinct tensors the loader returns
  DType dtype;
  bool tied, qkv_bias, qk_norm;
};

class ModelWeightsFixtureTest : public ::testing::TestWithParam<FixtureCase> {};

TEST_P(ModelWeightsFixtureTest, LoadsEveryTensorWithTheStoredShapeAndBytes) {
  const FixtureCase& c = GetParam();
  auto model = LoadModel(c.dir);
  ASSERT_TRUE(model.ok()) << model.status();
  const ModelConfig& config = model->config;
  const ModelWeights& weights = model->weights;
  ASSERT_EQ(weights.layers.size(), static_cast<size_t>(config.num_layers));
  const std::vector<TensorView> tensors = ModelTensors(weights);
  EXPECT_EQ(tensors.size(), c.num_tensors);

  // Every stored tensor is loaded, exactly once, with its stored shape and
  // dtype, and its first, middle and last elements agree with the raw bytes.
  const RawFile raw(c.dir / "model.safetensors");
  std::set<std::string> loaded_names;
  for (const TensorView& view : tensors) {
    EXPECT_TRUE(loaded_names.insert(view.name).second) << view.name;
    ASSERT_TRUE(raw.header.contains(view.name)) << view.name;
    const json& entry = raw.header[view.name];
    EXPECT_EQ(view.shape, entry["shape"].get<std::vector<int64_t>>()) << view.name;
    EXPECT_EQ(view.dtype, c.dtype) << view.name;
    for (int64_t i : {int64_t{0}, view.NumElements() / 2, view.NumElements() - 1}) {
      EXPECT_EQ(view.ElementAsFloat(i), raw.Element(view.name, i)) << view.name << "[" << i << "]";
    }
  }
  EXPECT_EQ(loaded_names.size(), raw.header.size());

  const int64_t hidden = config.hidden_size;
  const int64_t q_dim = config.num_heads * config.head_dim;
  const int64_t kv_dim = config.num_kv_heads * config.head_dim;
  const LayerWeights& last = weights.layers.back();
  EXPECT_EQ(last.q_proj.name,
            "model.layers." + std::to_string(config.num_layers - 1) + ".self_attn.q_proj.weight");
  EXPECT_EQ(last.q_proj.shape, (std::vector<int64_t>{q_dim, hidden}));
  EXPECT_EQ(last.k_proj.shape, (std::vector<int64_t>{kv_dim, hidden}));
  EXPECT_EQ(last.o_proj.shape, (std::vector<int64_t>{hidden, q_dim}));
  EXPECT_EQ(last.down_proj.shape, (std::vector<int64_t>{hidden, config.intermediate_size}));
  EXPECT_EQ(weights.final_norm.name, "model.norm.weight");
  EXPECT_EQ(!last.q_bias.empty(), c.qkv_bias);
  EXPECT_EQ(!last.v_bias.empty(), c.qkv_bias);
  if (c.qkv_bias) {
    EXPECT_EQ(last.k_bias.shape, (std::vector<int64_t>{kv_dim}));
  }
  EXPECT_EQ(!last.q_norm.empty(), c.qk_norm);
  EXPECT_EQ(!last.k_norm.empty(), c.qk_norm);
  if (c.qk_norm) {
    EXPECT_EQ(last.k_norm.shape, (std::vector<int64_t>{config.head_dim}));
  }
  EXPECT_EQ(weights.lm_head.data == weights.embed_tokens.data, c.tied);
  EXPECT_EQ(weights.lm_head.name, c.tied ? "model.embed_tokens.weight" : "lm_head.weight");
  EXPECT_EQ(weights.lm_head.shape, (std::vector<int64_t>{config.vocab_size, hidden}));
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, ModelWeightsFixtureTest,
    ::testing::Values(FixtureCase{kModels / "llama-tiny", 30, DType::kBF16, false, false, false},
                      FixtureCase{kModels / "qwen2-tiny", 38, DType::kBF16, true, true, false},
                      FixtureCase{kModels / "qwen3-tiny", 35, DType::kBF16, true, false, true},
                      FixtureCase{kEmbedded, 38, DType::kF32, true, false, false}));

// Copies `source` into `dir`, letting `edit_tensors` change the tensors (it
// may keep replacement bytes alive in `buffers`) and `edit_config` the config.
void CopyModel(
    const fs::path& source, const fs::path& dir,
    const std::function<void(std::vector<TensorView>&, std::vector<std::string>&)>& edit_tensors,
    const std::function<void(json&)>& edit_config = [](json&) {}) {
  auto file = SafetensorsFile::Open(source / "model.safetensors");
  ASSERT_TRUE(file.ok()) << file.status();
  std::vector<TensorView> tensors = (*file)->tensors();
  std::vector<std::string> buffers;
  buffers.reserve(tensors.size());
  edit_tensors(tensors, buffers);
  ASSERT_TRUE(WriteSafetensors(dir / "model.safetensors", tensors).ok());
  json config = json::parse(ReadFile(source / "config.json"));
  edit_config(config);
  std::ofstream(dir / "config.json") << config.dump(2);
}

void NoTensorEdit(std::vector<TensorView>&, std::vector<std::string>&) {}

TEST(ModelWeightsTest, ShardedCheckpointLoadsIdenticalTensors) {
  TempDir dir;
  const fs::path source = kModels / "qwen3-tiny";
  auto file = SafetensorsFile::Open(source / "model.safetensors");
  ASSERT_TRUE(file.ok());
  const size_t num_shards = 4;
  std::vector<std::vector<TensorView>> shards(num_shards);
  json weight_map;
  for (size_t i = 0; i < (*file)->tensors().size(); ++i) {
    shards[i * num_shards / (*file)->tensors().size()].push_back((*file)->tensors()[i]);
  }
  for (size_t s = 0; s < num_shards; ++s) {
    const std::string name = "part" + std::to_string(s) + ".safetensors";
    ASSERT_TRUE(WriteSafetensors(dir.path() / name, shards[s]).ok());
    for (const TensorView& view : shards[s]) weight_map[view.name] = name;
  }
  std::ofstream(dir.path() / kShardIndexName) << json{{"weight_map", weight_map}}.dump();
  fs::copy_file(source / "config.json", dir.path() / "config.json");

  auto single = LoadModel(source);
  auto sharded = LoadModel(dir.path());
  ASSERT_TRUE(single.ok()) << single.status();
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  const std::vector<TensorView> a = ModelTensors(single->weights);
  const std::vector<TensorView> b = ModelTensors(sharded->weights);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].shape, b[i].shape) << a[i].name;
    EXPECT_EQ(a[i].dtype, b[i].dtype) << a[i].name;
    ASSERT_EQ(a[i].nbytes, b[i].nbytes) << a[i].name;
    EXPECT_EQ(std::memcmp(a[i].data, b[i].data, a[i].nbytes), 0) << a[i].name;
    EXPECT_NE(a[i].data, b[i].data) << "the sharded copy maps its own files";
  }
}

TEST(ModelWeightsTest, LoadsFloat32AndFloat16Checkpoints) {
  // float32: widen the bf16 fixture exactly (bf16 is the top half of f32).
  TempDir f32_dir;
  CopyModel(
      kModels / "llama-tiny", f32_dir.path(),
      [](std::vector<TensorView>& tensors, std::vector<std::string>& buffers) {
        for (TensorView& view : tensors) {
          std::string& out = buffers.emplace_back(view.nbytes * 2, '\0');
          for (size_t i = 0; i < view.nbytes / 2; ++i) {
            std::memcpy(&out[4 * i + 2], view.data + 2 * i, 2);  // little-endian high half
          }
          view = TensorView{view.name, DType::kF32, view.shape,
                            reinterpret_cast<const std::byte*>(out.data()), out.size()};
        }
      },
      [](json& config) { config["torch_dtype"] = "float32"; });
  auto f32 = LoadModel(f32_dir.path());
  ASSERT_TRUE(f32.ok()) << f32.status();
  auto bf16 = LoadModel(kModels / "llama-tiny");
  ASSERT_TRUE(bf16.ok()) << bf16.status();
  EXPECT_EQ(f32->config.torch_dtype, DType::kF32);
  const TensorView& wide = f32->weights.layers[1].gate_proj;
  const TensorView& narrow = bf16->weights.layers[1].gate_proj;
  EXPECT_EQ(wide.dtype, DType::kF32);
  for (int64_t i = 0; i < wide.NumElements(); i += 997) {
    EXPECT_EQ(wide.ElementAsFloat(i), narrow.ElementAsFloat(i)) << i;
  }

  // float16: a repeating pattern of exactly representable values.
  const uint16_t kHalfBits[] = {0x3C00, 0xC000, 0x3800};  // 1, -2, 0.5
  const float kHalfValues[] = {1.0f, -2.0f, 0.5f};
  TempDir f16_dir;
  CopyModel(
      kModels / "llama-tiny", f16_dir.path(),
      [&](std::vector<TensorView>& tensors, std::vector<std::string>& buffers) {
        for (TensorView& view : tensors) {
          std::string& out = buffers.emplace_back(view.nbytes, '\0');
          for (size_t i = 0; i < view.nbytes / 2; ++i)
            std::memcpy(&out[2 * i], &kHalfBits[i % 3], 2);
          view = TensorView{view.name, DType::kF16, view.shape,
                            reinterpret_cast<const std::byte*>(out.data()), out.size()};
        }
      },
      [](json& config) { config["torch_dtype"] = "float16"; });
  auto f16 = LoadModel(f16_dir.path());
  ASSERT_TRUE(f16.ok()) << f16.status();
  EXPECT_EQ(f16->config.torch_dtype, DType::kF16);
  for (const TensorView& view : ModelTensors(f16->weights)) {
    EXPECT_EQ(view.dtype, DType::kF16) << view.name;
    EXPECT_EQ(view.ElementAsFloat(4), kHalfValues[1]) << view.name;
  }
  EXPECT_EQ(f16->weights.lm_head.ElementAsFloat(3), kHalfValues[0]);
  EXPECT_EQ(f16->weights.embed_tokens.ElementAsFloat(5), kHalfValues[2]);
}

TEST(ModelWeightsTest, MissingTensorIsNotFoundNamingFileAndTensor) {
  TempDir dir;
  const std::string dropped = "model.layers.1.mlp.up_proj.weight";
  CopyModel(kModels / "llama-tiny", dir.path(),
            [&](std::vector<TensorView>& tensors, std::vector<std::string>&) {
              std::erase_if(tensors, [&](const TensorView& v) { return v.name == dropped; });
            });
  auto model = LoadModel(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(model.status().message()),
              AllOf(HasSubstr((dir.path() / "model.safetensors").string()), HasSubstr(dropped)));
}

TEST(ModelWeightsTest, MissingBiasOrNormIsNotFound) {
  for (const auto& [model_dir, dropped] :
       {std::pair{kModels / "qwen2-tiny", std::string("model.layers.2.self_attn.v_proj.bias")},
        std::pair{kModels / "qwen3-tiny", std::string("model.layers.0.self_attn.k_norm.weight")},
        std::pair{kModels / "llama-tiny", std::string("lm_head.weight")}}) {
    TempDir dir;
    CopyModel(model_dir, dir.path(),
              [&](std::vector<TensorView>& tensors, std::vector<std::string>&) {
                std::erase_if(tensors, [&](const TensorView& v) { return v.name == dropped; });
              });
    auto model = LoadModel(dir.path());
    EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound) << dropped;
    EXPECT_THAT(std::string(model.status().message()), HasSubstr(dropped));
  }
}

TEST(ModelWeightsTest, WrongShapeIsInvalidArgumentNamingBothShapes) {
  TempDir dir;
  const std::string reshaped = "model.layers.0.self_attn.k_proj.weight";
  CopyModel(kModels / "llama-tiny", dir.path(),
            [&](std::vector<TensorView>& tensors, std::vector<std::string>&) {
              for (TensorView& view : tensors) {
                if (view.name == reshaped) view.shape = {128, 64};  // transposed, same bytes
              }
            });
  auto model = LoadModel(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(model.status().message()),
              AllOf(HasSubstr((dir.path() / "model.safetensors").string()), HasSubstr(reshaped),
                    HasSubstr("[128, 64]"), HasSubstr("[64, 128]")));
}

TEST(ModelWeightsTest, ConfigErrorsSurfaceThroughLoadModel) {
  struct Case {
    std::function<void(json&)> edit;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {[](json& c) { c["architectures"] = {"FalconForCausalLM"}; },
       absl::StatusCode::kUnimplemented, "FalconForCausalLM"},
      {[](json& c) {
         c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
       },
       absl::StatusCode::kUnimplemented, "yarn"},
      {[](json& c) { c.erase("intermediate_size"); }, absl::StatusCode::kInvalidArgument,
       "intermediate_size"},
      // A config that disagrees with the weights is a shape error.
      {[](json& c) { c["intermediate_size"] = 256; }, absl::StatusCode::kInvalidArgument,
       "model.layers.0.mlp.gate_proj.weight' has shape [352, 128]"},
  };
  for (const Case& c : cases) {
    TempDir dir;
    CopyModel(kModels / "llama-tiny", dir.path(), NoTensorEdit, c.edit);
    auto model = LoadModel(dir.path());
    EXPECT_EQ(model.status().code(), c.code) << c.message;
    EXPECT_THAT(std::string(model.status().message()),
                AllOf(HasSubstr(dir.path().string()), HasSubstr(c.message)));
  }
}

TEST(ModelWeightsTest, FileErrorsSurfaceThroughLoadModel) {
  TempDir dir;
  auto model = LoadModel(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(model.status().message()), HasSubstr("config.json"));

  CopyModel(kModels / "llama-tiny", dir.path(), NoTensorEdit);
  const fs::path weights = dir.path() / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  model = LoadModel(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(model.status().message()), HasSubstr(weights.string()));

  fs::remove(weights);
  model = LoadModel(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(model.status().message()), HasSubstr(dir.path().string()));
}

TEST(ModelWeightsTest, ShardErrorsSurfaceThroughLoadModel) {
  TempDir dir;
  const fs::path source = kModels / "llama-tiny";
  auto file = SafetensorsFile::Open(source / "model.safetensors");
  ASSERT_TRUE(file.ok());
  std::vector<TensorView> first, second;
  json weight_map;
  for (const TensorView& view : (*file)->tensors()) {
    const bool in_first = view.name < "model.layers.1";
    (in_first ? first : second).push_back(view);
    weight_map[view.name] = in_first ? "a.safetensors" : "b.safetensors";
  }
  ASSERT_TRUE(WriteSafetensors(dir.path() / "a.safetensors", first).ok());
  ASSERT_TRUE(WriteSafetensors(dir.path() / "b.safetensors", second).ok());
  fs::copy_file(source / "config.json", dir.path() / "config.json");
  weight_map["model.norm.weight"] = "a.safetensors";  // actually in b
  std::ofstream(dir.path() / kShardIndexName) << json{{"weight_map", weight_map}}.dump();
  auto model = LoadModel(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(model.status().message()),
              AllOf(HasSubstr("model.norm.weight"), HasSubstr("a.safetensors")));

  fs::remove(dir.path() / "b.safetensors");
  model = LoadModel(dir.path());
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(model.status().message()),
              HasSubstr((dir.path() / "b.safetensors").string()));
}

}  // namespace
}  // namespace strata::engine
