#include "engine/checkpoint.h"

#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "nlohmann/json.hpp"

namespace strata::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

const fs::path kModels = fs::path(STRATA_TEST_DATA_DIR) / "models";

using strata::testing::TempDir;

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// Splits `source` round-robin into `num_shards` files in `dir` and writes an
// index naming them. Returns the weight_map written.
nlohmann::json WriteShards(const fs::path& source, const fs::path& dir, int num_shards) {
  auto file = SafetensorsFile::Open(source);
  EXPECT_TRUE(file.ok()) << file.status();
  std::vector<std::vector<TensorView>> shards(num_shards);
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < (*file)->tensors().size(); ++i) {
    const TensorView& view = (*file)->tensors()[i];
    shards[i % num_shards].push_back(view);
  }
  for (int s = 0; s < num_shards; ++s) {
    const std::string name = "model-0000" + std::to_string(s + 1) + "-of-0000" +
                             std::to_string(num_shards) + ".safetensors";
    EXPECT_TRUE(WriteSafetensors(dir / name, shards[s]).ok());
    for (const TensorView& view : shards[s]) weight_map[view.name] = name;
  }
  WriteText(dir / kShardIndexName,
            nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}.dump(2));
  return weight_map;
}

void ExpectSameTensor(const TensorView& a, const TensorView& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.dtype, b.dtype) << a.name;
  EXPECT_EQ(a.shape, b.shape) << a.name;
  ASSERT_EQ(a.nbytes, b.nbytes) << a.name;
  EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << a.name;
}

TEST(CheckpointTest, OpensSingleFile) {
  const fs::path dir = kModels / "llama-tiny";
  auto checkpoint = Checkpoint::Open(dir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_FALSE((*checkpoint)->sharded());
  EXPECT_EQ((*checkpoint)->files().size(), 1u);
  const std::vector<std::string> names = (*checkpoint)->TensorNames();
  EXPECT_EQ(names.size(), 30u);
  EXPECT_EQ(names.front(), "lm_head.weight");
  auto view = (*checkpoint)->Find("model.layers.2.self_attn.k_proj.weight");
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->shape, (std::vector<int64_t>{64, 128}));
  EXPECT_EQ(view->dtype, DType::kBF16);
  EXPECT_EQ((*checkpoint)->FileFor("model.norm.weight"), dir / kSingleFileName);
}

TEST(CheckpointTest, ShardedCheckpointMatchesSingleFile) {
  TempDir dir;
  const fs::path source = kModels / "qwen2-tiny" / kSingleFileName;
  const nlohmann::json weight_map = WriteShards(source, dir.path(), 3);
  auto sharded = Checkpoint::Open(dir.path());
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  auto single = Checkpoint::Open(kModels / "qwen2-tiny");
  ASSERT_TRUE(single.ok()) << single.status();
  EXPECT_TRUE((*sharded)->sharded());
  EXPECT_EQ((*sharded)->files().size(), 3u);
  ASSERT_EQ((*sharded)->TensorNames(), (*single)->TensorNames());
  for (const std::string& name : (*single)->TensorNames()) {
    auto a = (*single)->Find(name);
    auto b = (*sharded)->Find(name);
    ASSERT_TRUE(a.ok() && b.ok()) << name;
    ExpectSameTensor(*a, *b);
    EXPECT_EQ((*sharded)->FileFor(name), dir.path() / weight_map[name].get<std::string>());
  }
}

TEST(CheckpointTest, MissingTensorIsNotFoundNamingIt) {
  auto single = Checkpoint::Open(kModels / "llama-tiny");
  ASSERT_TRUE(single.ok());
  auto view = (*single)->Find("model.layers.7.mlp.up_proj.weight");
  EXPECT_EQ(view.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(view.status().message()),
              AllOf(HasSubstr("model.layers.7.mlp.up_proj.weight"), HasSubstr(kSingleFileName)));

  TempDir dir;
  WriteShards(kModels / "llama-tiny" / kSingleFileName, dir.path(), 2);
  auto sharded = Checkpoint::Open(dir.path());
  ASSERT_TRUE(sharded.ok()) << sharded.status();
  view = (*sharded)->Find("model.layers.7.mlp.up_proj.weight");
  EXPECT_EQ(view.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(view.status().message()),
              AllOf(HasSubstr("model.layers.7.mlp.up_proj.weight"), HasSubstr(kShardIndexName)));
}

TEST(CheckpointTest, MissingShardIsNotFoundNamingIt) {
  TempDir dir;
  WriteShards(kModels / "llama-tiny" / kSingleFileName, dir.path(), 3);
  fs::remove(dir.path() / "model-00002-of-00003.safetensors");
  auto checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(checkpoint.status().message()),
              HasSubstr((dir.path() / "model-00002-of-00003.safetensors").string()));
}

TEST(CheckpointTest, TensorInWrongShardIsDataLossNamingTensorAndShard) {
  TempDir dir;
  nlohmann::json weight_map = WriteShards(kModels / "llama-tiny" / kSingleFileName, dir.path(), 2);
  const std::string moved = "model.norm.weight";
  const std::string actual = weight_map[moved].get<std::string>();
  const std::string claimed = actual == "model-00001-of-00002.safetensors"
                                  ? "model-00002-of-00002.safetensors"
                                  : "model-00001-of-00002.safetensors";
  weight_map[moved] = claimed;
  WriteText(dir.path() / kShardIndexName, nlohmann::json{{"weight_map", weight_map}}.dump());
  auto checkpoint = Checkpoint::Open(dir.path());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  auto view = (*checkpoint)->Find(moved);
  EXPECT_EQ(view.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(view.status().message()), AllOf(HasSubstr(moved), HasSubstr(claimed)));
  // Tensors the index places correctly still load.
  EXPECT_TRUE((*checkpoint)->Find("lm_head.weight").ok());
}

TEST(CheckpointTest, DirectoryWithoutWeightsIsNotFound) {
  TempDir dir;
  auto checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(checkpoint.status().message()),
              AllOf(HasSubstr(dir.path().string()), HasSubstr(kSingleFileName)));
}

TEST(CheckpointTest, MalformedIndexIsRejectedNamingIt) {
  TempDir dir;
  const fs::path index = dir.path() / kShardIndexName;
  struct Case {
    std::string text;
    absl::StatusCode code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"{not json", absl::StatusCode::kDataLoss, "not a valid JSON object"},
      {R"({"metadata":{}})", absl::StatusCode::kDataLoss, "weight_map"},
      {R"({"weight_map":{"w":7}})", absl::StatusCode::kDataLoss, "'w'"},
      {R"({"weight_map":{"w":"../model.safetensors"}})", absl::StatusCode::kInvalidArgument,
       "../model.safetensors"},
  };
  for (const Case& c : cases) {
    WriteText(index, c.text);
    auto checkpoint = Checkpoint::Open(dir.path());
    EXPECT_EQ(checkpoint.status().code(), c.code) << c.text;
    EXPECT_THAT(std::string(checkpoint.status().message()),
                AllOf(HasSubstr(index.string()), HasSubstr(c.message)))
        << c.text;
  }
}

TEST(CheckpointTest, CorruptShardErrorNamesTheShard) {
  TempDir dir;
  WriteShards(kModels / "llama-tiny" / kSingleFileName, dir.path(), 2);
  const fs::path shard = dir.path() / "model-00002-of-00002.safetensors";
  fs::resize_file(shard, fs::file_size(shard) - 10);
  auto checkpoint = Checkpoint::Open(dir.path());
  EXPECT_EQ(checkpoint.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(checkpoint.status().message()), HasSubstr(shard.string()));
}

}  // namespace
}  // namespace strata::engine
