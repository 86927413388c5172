// Runs `strata generate`, `strata logits` and `strata bench engine` as a user
// would: the embedded model's greedy text, logits against the reference, and
// exit codes for bad input.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/common/temp_dir.h"
#include "tests/server/commands/strata_runner.h"

namespace strata {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::RunStrata;

nlohmann::json ReadJson(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

// A reference sequence's input ids as --ids takes them: "1,2,3".
std::string IdsArgument(const nlohmann::json& sequence) {
  std::string ids;
  for (const auto& id : sequence["input_ids"]) {
    if (!ids.empty()) ids.push_back(',');
    ids.append(id.dump());
  }
  return ids;
}

TEST(GenerateCommandTest, GreedyFromBosWritesTheReferenceText) {
  // reference_greedy.json: 60 greedy tokens after BOS, from llama2.c's run.c.
  const nlohmann::json reference =
      ReadJson(fs::path(STRATA_TEST_DATA_DIR) / "models/aidreams260K/reference_greedy.json");
  testing::StrataResult result = RunStrata({"generate", "--max-tokens", "60"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out, reference["text"].get<std::string>() + "\n");
  EXPECT_THAT(result.err, HasSubstr("[finished: length]"));
}

TEST(GenerateCommandTest, SeededSamplingIsReproducibleAndStreamsAfterThePrompt) {
  std::vector<std::string> args = {"generate", "--prompt",      "The sea", "--max-tokens",
                                   "30",       "--temperature", "0.8",     "--top-p",
                                   "0.9",      "--seed",        "7"};
  testing::StrataResult first = RunStrata(args);
  testing::StrataResult second = RunStrata(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.out, second.out);
  EXPECT_THAT(first.out, ::testing::StartsWith("The sea"));
  EXPECT_GT(first.out.size(), std::string("The sea\n").size());
}

TEST(GenerateCommandTest, BadArgumentsAreUsageErrors) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"generate", "--bogus"},
                                             {"generate", "--max-tokens", "many"},
                                             {"generate", "--temperature"}}) {
    testing::StrataResult result = RunStrata(args);
    EXPECT_EQ(result.exit_code, 2) << args.back();
    EXPECT_THAT(result.err, HasSubstr("usage: strata generate"));
  }
}

TEST(GenerateCommandTest, BadSamplingAndMissingModelFailWithTheirReason) {
  testing::StrataResult result = RunStrata({"generate", "--top-p", "1.5"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("top_p"));
  result = RunStrata({"generate", "--model", "/nonexistent/model"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("/nonexistent/model"));
}

TEST(LogitsCommandTest, WritesLogitsThatMatchTheReference) {
  const fs::path data = fs::path(STRATA_TEST_DATA_DIR) / "models/llama-tiny";
  const nlohmann::json sequence = ReadJson(data / "reference.json")["sequences"][1];
  const std::string ids = IdsArgument(sequence);
  strata::testing::TempDir dir;
  const fs::path out = dir.path() / "logits.safetensors";
  testing::StrataResult result =
      RunStrata({"logits", "--model", data.string(), "--ids", ids, "--out", out.string()});
  ASSERT_EQ(result.exit_code, 0) << result.err;

  auto written = engine::SafetensorsFile::Open(out);
  ASSERT_TRUE(written.ok()) << written.status();
  auto reference = engine::SafetensorsFile::Open(data / "reference.safetensors");
  ASSERT_TRUE(reference.ok()) << reference.status();
  const engine::TensorView* logits = (*written)->Find("logits");
  const engine::TensorView* expected = (*reference)->Find(sequence["tensor"].get<std::string>());
  ASSERT_TRUE(logits != nullptr && expected != nullptr);
  ASSERT_EQ(logits->shape, expected->shape);
  float max_error = 0;
  for (int64_t i = 0; i < expected->NumElements(); ++i) {
    max_error =
        std::max(max_error, std::abs(logits->ElementAsFloat(i) - expected->ElementAsFloat(i)));
  }
  EXPECT_LT(max_error, 5e-2);  // the default serving precision keeps K/V in bf16
}

// The exact mode (fp32 weights and activations, fp32 K/V) from the command
// line, held to the reference by the command's own --reference check.
TEST(LogitsCommandTest, ExactModeMatchesTheReferenceFromTheCommandLine) {
  const fs::path data = fs::path(STRATA_TEST_DATA_DIR) / "models/llama-tiny";
  const nlohmann::json sequence = ReadJson(data / "reference.json")["sequences"][2];
  const std::string ids = IdsArgument(sequence);
  strata::testing::TempDir dir;
  const fs::path out = dir.path() / "logits.safetensors";
  const std::string tensor = sequence["tensor"].get<std::string>();
  testing::StrataResult result =
      RunStrata({"logits", "--model", data.string(), "--ids", ids, "--out", out.string(),
                 "--precision", "f32", "--kv-dtype", "f32", "--reference",
                 (data / "reference.safetensors").string(), "--tensor", tensor});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const std::string prefix = "max abs error vs " + tensor + ": ";
  ASSERT_THAT(result.out, HasSubstr(prefix));
  const double error = std::stod(result.out.substr(result.out.find(prefix) + prefix.size()));
  EXPECT_LT(error, 1e-4);
  EXPECT_TRUE(fs::exists(out));
}

TEST(LogitsCommandTest, BadModeAndReferenceArgumentsAreRejected) {
  strata::testing::TempDir dir;
  const fs::path out = dir.path() / "logits.safetensors";
  testing::StrataResult result =
      RunStrata({"logits", "--ids", "1,2", "--out", out.string(), "--precision", "fp8"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("--precision"));
  result = RunStrata({"logits", "--ids", "1,2", "--out", out.string(), "--kv-dtype", "f16"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_THAT(result.err, HasSubstr("--kv-dtype"));
  result = RunStrata({"logits", "--ids", "1,2", "--out", out.string(), "--tensor", "logits"});
  EXPECT_EQ(result.exit_code, 2);
  result = RunStrata({"logits", "--ids", "1,2", "--out", out.string(), "--reference",
                      (dir.path() / "missing.safetensors").string(), "--tensor", "logits"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("missing.safetensors"));
}

TEST(LogitsCommandTest, OutOfVocabularyIdFailsAndBadIdsAreUsageErrors) {
  strata::testing::TempDir dir;
  const fs::path out = dir.path() / "logits.safetensors";
  testing::StrataResult result = RunStrata({"logits", "--ids", "1,99999", "--out", out.string()});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("99999"));
  EXPECT_FALSE(fs::exists(out));
  result = RunStrata({"logits", "--ids", "1,x", "--out", out.string()});
  EXPECT_EQ(result.exit_code, 2);
  result = RunStrata({"logits", "--ids", "1,2"});
  EXPECT_EQ(result.exit_code, 2);
}

TEST(BenchEngineCommandTest, PrintsATableAndAJsonReport) {
  testing::StrataResult result =
      RunStrata({"bench", "engine", "--contexts", "8,32", "--batches", "1,2"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  std::string last_line = result.out.substr(result.out.rfind('\n', result.out.size() - 2) + 1);
  nlohmann::json report = nlohmann::json::parse(last_line);
  ASSERT_EQ(report["results"].size(), 6u);  // per context: one prefill, one decode per batch
  for (const auto& row : report["results"]) {
    EXPECT_GT(row["tokens_per_second"].get<double>(), 0);
    // Decode rows are held to weights + the KV they read: a longer context
    // lowers the roof.
    if (row["phase"] == "decode") {
      EXPECT_GT(row["roofline_tokens_per_second"].get<double>(), 0);
    }
    // Each row's yardstick (oneDNN's GEMM, or the read bandwidth) was
    // measured again beside it.
    EXPECT_GT(row["yardstick_beside"].get<double>(), 0);
  }
  EXPECT_EQ(report["precision"], "bf16");  // the daemon's serving default
  // Which attention kernel ran, as the table's header line says too: the
  // embedded model's head_dim (16) leaves it to fp32 products.
  const std::string attention = report["attention_kernel"];
  EXPECT_TRUE(attention == "f32-avx512" || attention == "f32-scalar") << attention;
  EXPECT_NE(result.out.find("attention kernel " + attention), std::string::npos);
  EXPECT_GT(report["read_bandwidth_bytes_per_second"].get<double>(), 0);
  EXPECT_EQ(RunStrata({"bench", "engine", "--batches", "0"}).exit_code, 2);
  EXPECT_EQ(RunStrata({"bench", "nothing"}).exit_code, 2);
}

}  // namespace
}  // namespace strata
