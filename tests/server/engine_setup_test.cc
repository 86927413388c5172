#include "server/engine_setup.h"

#include "engine/cpu/random_weights.h"
#include "gtest/gtest.h"
#include "server/daemon/random_model.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace strata::server {
namespace {

const std::filesystem::path kEmbedded =
    std::filesystem::path(STRATA_SOURCE_DIR) / "models/aidreams260K";

cache::ModelFingerprint Fingerprint(const std::filesystem::path& dir, engine::DType kv_dtype) {
  absl::StatusOr<engine::LoadedModel> model = engine::LoadModel(dir);
  EXPECT_TRUE(model.ok()) << model.status();
  engine::KvCacheSpec spec{.num_layers = model->config.num_layers,
                           .num_kv_heads = model->config.num_kv_heads,
                           .head_dim = model->config.head_dim,
                           .block_size = 16,
                           .dtype = kv_dtype};
  absl::StatusOr<cache::ModelFingerprint> fingerprint = FingerprintModel(*model, dir, spec);
  EXPECT_TRUE(fingerprint.ok()) << fingerprint.status();
  return fingerprint.value_or(cache::ModelFingerprint{});
}

TEST(EngineSetupTest, FingerprintIsStableAndTellsModelsAndKvFormatsApart) {
  cache::ModelFingerprint first = Fingerprint(kEmbedded, engine::DType::kBF16);
  EXPECT_EQ(first, Fingerprint(kEmbedded, engine::DType::kBF16));
  EXPECT_NE(first, Fingerprint(kEmbedded, engine::DType::kF32));
}

TEST(EngineSetupTest, ServingEngineIsReadyForTheScheduler) {
  absl::StatusOr<ServingEngine> serving = LoadServingEngine(kEmbedded, "cpu", {});
  ASSERT_TRUE(serving.ok()) << serving.status();
  const scheduler::SchedulerOptions& options = serving->scheduler_options;
  EXPECT_EQ(options.vocab_size, 512);
  EXPECT_EQ(options.max_model_len, 128);
  EXPECT_EQ(options.eos_token_ids, std::vector<engine::TokenId>{2});
  EXPECT_EQ(options.num_blocks, serving->backend->kv_arena_info().num_blocks);
  EXPECT_GT(options.num_blocks, 0);
}

// The CPU backend keeps bf16 K/V of head_dim 64 in its kernels' chunks, not
// in the token rows of the CUDA backend (and of the embedded model's
// head_dim 16): blocks are keyed under a fingerprint that says so, so no tier
// hands one layout's bytes to the other.
TEST(EngineSetupTest, BlocksAreKeyedByTheArenasLayout) {
  engine::ModelConfig config = engine::cpu::testing::TinyConfig();
  config.head_dim = 64;
  absl::StatusOr<engine::LoadedModel> model = engine::cpu::MakeRandomModel(config, 5);
  ASSERT_TRUE(model.ok()) << model.status();
  const cache::ModelFingerprint fingerprint{1, 2};
  absl::StatusOr<ServingEngine> chunked = MakeServingEngine(
      *model, std::make_unique<NumberTokenizer>(config.vocab_size), fingerprint, {});
  ASSERT_TRUE(chunked.ok()) << chunked.status();
  EXPECT_EQ(chunked->backend->kv_arena_info().layout, engine::KvLayout::kChunks);
  EXPECT_EQ(chunked->scheduler_options.model_fingerprint,
            cache::WithKvLayout(fingerprint, "chunks16"));
  EXPECT_NE(chunked->scheduler_options.model_fingerprint, fingerprint);

  absl::StatusOr<ServingEngine> rows = LoadServingEngine(kEmbedded, "cpu", {});
  ASSERT_TRUE(rows.ok()) << rows.status();
  EXPECT_EQ(rows->backend->kv_arena_info().layout, engine::KvLayout::kRows);
}

TEST(EngineSetupTest, UnknownBackendAndMissingModelAreErrors) {
  EXPECT_EQ(LoadServingEngine(kEmbedded, "tpu", {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadServingEngine("/nonexistent/model", "cpu", {}).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace strata::server
