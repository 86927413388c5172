// Runs the real `strata inspect` binary and checks its JSON and exit codes.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/files.h"
#include "tests/common/temp_dir.h"
#include "nlohmann/json.hpp"
#include "tests/server/commands/strata_runner.h"

namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using json = nlohmann::json;

const fs::path kEmbedded = fs::path(STRATA_SOURCE_DIR) / "models/aidreams260K";
const fs::path kModels = fs::path(STRATA_TEST_DATA_DIR) / "models";

using strata::testing::TempDir;

using strata::testing::ReadFile;

using strata::testing::RunStrata;
using RunResult = strata::testing::StrataResult;

// Parameter count and stored bytes computed straight from the safetensors
// header, independently of the loader.
struct HeaderTotals {
  int64_t num_parameters = 0;
  int64_t bytes = 0;
};

HeaderTotals TotalsFromHeader(const fs::path& file) {
  const std::string raw = ReadFile(file);
  uint64_t length = 0;
  std::memcpy(&length, raw.data(), 8);
  json header = json::parse(raw.substr(8, length));
  HeaderTotals totals;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    int64_t numel = 1;
    for (const auto& dim : entry["shape"]) numel *= dim.get<int64_t>();
    totals.num_parameters += numel;
    totals.bytes +=
        entry["data_offsets"][1].get<int64_t>() - entry["data_offsets"][0].get<int64_t>();
  }
  return totals;
}

TEST(InspectCommandTest, DescribesTheEmbeddedModelByDefault) {
  RunResult run = RunStrata({"inspect"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  json out = json::parse(run.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << run.out;
  EXPECT_THAT(out["model_dir"].get<std::string>(), HasSubstr("aidreams260K"));

  // aidreams260K is tied and stores exactly the tensors its config implies.
  const HeaderTotals totals = TotalsFromHeader(kEmbedded / "model.safetensors");
  EXPECT_EQ(out["num_parameters"].get<int64_t>(), totals.num_parameters);
  EXPECT_EQ(out["weights_bytes"].get<int64_t>(), totals.bytes);
  EXPECT_EQ(out["weights_bytes"].get<int64_t>(), 4 * totals.num_parameters);  // fp32
  EXPECT_EQ(out["weights_bytes_bf16"].get<int64_t>(), 2 * totals.num_parameters);

  const json config = json::parse(ReadFile(kEmbedded / "config.json"));
  const int64_t kv_per_token = 2 * config["num_hidden_layers"].get<int64_t>() *
                               config["num_key_value_heads"].get<int64_t>() *
                               config["head_dim"].get<int64_t>() * 2;
  EXPECT_EQ(out["kv_bytes_per_token"].get<int64_t>(), kv_per_token);
  EXPECT_EQ(out["kv_bytes_max_context"].get<int64_t>(),
            kv_per_token * config["max_position_embeddings"].get<int64_t>());
  EXPECT_EQ(out["memory_bytes_estimate"].get<int64_t>(),
            out["weights_bytes_bf16"].get<int64_t>() + out["kv_bytes_max_context"].get<int64_t>());
  EXPECT_EQ(out["config"]["architecture"], "LlamaForCausalLM");
  EXPECT_EQ(out["config"]["hidden_size"], config["hidden_size"]);
  EXPECT_EQ(out["config"]["tie_word_embeddings"], true);
  EXPECT_EQ(out["config"]["torch_dtype"], "float32");
}

TEST(InspectCommandTest, DescribesAnExplicitModel) {
  const fs::path dir = kModels / "qwen2-tiny";
  RunResult run = RunStrata({"inspect", "--model", dir.string()});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  json out = json::parse(run.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << run.out;
  EXPECT_EQ(out["model_dir"], dir.string());
  const HeaderTotals totals = TotalsFromHeader(dir / "model.safetensors");
  EXPECT_EQ(out["num_parameters"].get<int64_t>(), totals.num_parameters);
  EXPECT_EQ(out["weights_bytes"].get<int64_t>(), totals.bytes);
  EXPECT_EQ(out["config"]["qkv_bias"], true);
  EXPECT_EQ(out["config"]["family"], "qwen2");
}

TEST(InspectCommandTest, UsageErrorsExitTwo) {
  RunResult run = RunStrata({"inspect", "--bogus"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, AllOf(HasSubstr("--bogus"), HasSubstr("usage: strata inspect")));
  EXPECT_TRUE(run.out.empty());

  run = RunStrata({"inspect", "--model"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.err, HasSubstr("--model needs a value"));
}

TEST(InspectCommandTest, LoadErrorsExitOneWithTheMessage) {
  TempDir dir;
  const fs::path missing = dir.path() / "no_such_model";
  RunResult run = RunStrata({"inspect", "--model", missing.string()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err,
              AllOf(HasSubstr((missing / "config.json").string()), HasSubstr("NOT_FOUND")));
  EXPECT_TRUE(run.out.empty());

  // A model whose config asks for an unsupported rope type.
  json config = json::parse(ReadFile(kModels / "llama-tiny/config.json"));
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  std::ofstream(dir.path() / "config.json") << config.dump();
  fs::copy_file(kModels / "llama-tiny/model.safetensors", dir.path() / "model.safetensors");
  run = RunStrata({"inspect", "--model", dir.path().string()});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_THAT(run.err, AllOf(HasSubstr("yarn"), HasSubstr((dir.path() / "config.json").string())));
}

}  // namespace
