// CacheBlend on the CPU backend (engine/step.h BlendSpec, engine/cpu/kv_blend.h):
// re-rotated K against K computed at the new position, bit copies for a zero
// shift, exactness at r = 1 and for one chunk at offset 0 with r = 0, batch
// mates untouched, no selected query seeing a later key, and the selection's
// counts and determinism.
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/decoder.h"
#include "engine/cpu/kv_blend.h"
#include "engine/cpu/random_weights.h"
#include "engine/model_weights.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/bitwise.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace strata::engine::cpu {
namespace {

using testing::Blocks;
using ::testing::HasSubstr;
using testing::TinyConfig;

constexpr int64_t kBlockSize = 4;

// Bit equality (tests/bitwise.h): what "bit-identical" means, which a float
// compare (NaN, signed zero) is not.
::testing::AssertionResult SameBits(const std::vector<float>& a, const std::vector<float>& b) {
  return strata::testing::BitwiseEqual(a, b);
}

std::vector<TokenId> RandomIds(std::mt19937& rng, int64_t n, int64_t vocab) {
  std::uniform_int_distribution<TokenId> dist(0, static_cast<TokenId>(vocab - 1));
  std::vector<TokenId> ids(static_cast<size_t>(n));
  for (TokenId& id : ids) id = dist(rng);
  return ids;
}

ModelConfig WithRope(ModelConfig c, RopeType type) {
  c.rope_scaling.type = type;
  c.rope_scaling.factor = 4.0;
  c.rope_scaling.original_max_position_embeddings = 16;
  return c;
}

std::vector<ModelConfig> Configs() {
  ModelConfig qwen3 = TinyConfig();
  qwen3.qk_norm = true;
  ModelConfig qwen2 = TinyConfig();
  qwen2.qkv_bias = true;
  qwen2.num_layers = 3;
  return {TinyConfig(), WithRope(TinyConfig(), RopeType::kLinear),
          WithRope(TinyConfig(), RopeType::kLlama3), qwen3, qwen2};
}

// A backend on a random tiny model; fp32 weights, activations and K/V unless
// told otherwise (the exact configuration).
class BlendTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override { Build(DType::kF32); }

  void Build(DType kv_dtype) {
    config_ = Configs()[static_cast<size_t>(GetParam())];
    auto model = MakeRandomModel(config_, 7 + GetParam());
    ASSERT_TRUE(model.ok()) << model.status();
    BackendOptions options;
    options.block_size = kBlockSize;
    options.num_kv_blocks = 200;
    options.kv_dtype = kv_dtype;
    options.precision = Precision::kF32;
    backend_ = testing::MakeBackend(*model, options);
    ASSERT_NE(backend_, nullptr);
  }

  // Computes `tokens` at positions [start, start + n) into `table`; returns
  // the last position's logits.
  std::vector<float> Prefill(const std::vector<TokenId>& tokens, int64_t start,
                             const std::vector<BlockId>& table) {
    StepPlan plan;
    SequenceStep step;
    step.seq_id = 1;
    step.token_ids = tokens;
    step.start_position = start;
    step.block_table = table;
    step.return_logits = true;
    plan.sequences.push_back(step);
    auto result = backend_->Execute(plan);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok()) return {};
    const std::vector<float>& all = result->outputs[0].logits;
    return std::vector<float>(all.end() - config_.vocab_size, all.end());
  }

  // A blend step over `prompt` from `start`, chunks given as (position,
  // length, first block of their standalone copy).
  struct Chunk {
    int64_t position, length;
    BlockId first_block;
    int64_t source_position = 0;  // template tokens before it in its own blocks
  };
  SequenceStep BlendStep(const std::vector<TokenId>& prompt, int64_t start,
                         const std::vector<BlockId>& table, const std::vector<Chunk>& chunks,
                         float ratio, std::vector<int32_t> check_layers) {
    SequenceStep step;
    step.seq_id = 2;
    step.token_ids.assign(prompt.begin() + start, prompt.end());
    step.start_position = start;
    step.block_table = table;
    step.return_logits = true;
    BlendSpec spec{.recompute_ratio = ratio, .check_layers = std::move(check_layers)};
    for (const Chunk& c : chunks) {
      const int64_t own = c.source_position + c.length;
      spec.chunks.push_back({.blocks = Blocks(c.first_block, (own + kBlockSize - 1) / kBlockSize),
                             .length = c.length,
                             .source_position = c.source_position,
                             .position = c.position});
    }
    step.blend = std::move(spec);
    return step;
  }

  StepResult Run(const SequenceStep& step) {
    StepPlan plan;
    plan.sequences.push_back(step);
    auto result = backend_->Execute(plan);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : StepResult{};
  }

  std::vector<float> HeadFloats(BlockId block, int64_t layer, bool value, int64_t head,
                                int64_t slot) {
    const float* p =
        reinterpret_cast<const float*>(backend_->arena().HeadData(block, layer, value, head));
    return std::vector<float>(p + slot * config_.head_dim, p + (slot + 1) * config_.head_dim);
  }

  ModelConfig config_;
  std::unique_ptr<CpuBackend> backend_;
};

TEST_P(BlendTest, ReRotatedKeyMatchesTheKeyComputedAtTheNewPosition) {
  std::mt19937 rng(3);
  const std::vector<TokenId> chunk = RandomIds(rng, 6, config_.vocab_size);
  Prefill(chunk, 0, Blocks(0, 2));  // standalone, positions 0..5
  // The chunk after 37 other tokens: its layer-0 K depends only on each
  // token and its position, so it is what re-rotation must reproduce.
  const int64_t at = 37;
  std::vector<TokenId> placed = RandomIds(rng, at, config_.vocab_size);
  placed.insert(placed.end(), chunk.begin(), chunk.end());
  Prefill(placed, 0, Blocks(100, 11));
  const std::vector<BlockId> table = Blocks(50, 11);
  ThreadPool pool(2);
  PlaceChunk({.blocks = Blocks(0, 2), .length = 6, .position = at}, table,
             RopeInverseFrequencies(config_), backend_->arena(), pool);
  float worst = 0.0f;
  for (int64_t t = 0; t < 6; ++t) {
    const int64_t pos = at + t;
    for (int64_t head = 0; head < config_.num_kv_heads; ++head) {
      const std::vector<float> got =
          HeadFloats(table[pos / kBlockSize], 0, false, head, pos % kBlockSize);
      const std::vector<float> want = HeadFloats(100 + static_cast<BlockId>(pos / kBlockSize), 0,
                                                 false, head, pos % kBlockSize);
      worst = std::max(worst, testing::MaxAbsDiff(got, want));
      EXPECT_TRUE(SameBits(HeadFloats(table[pos / kBlockSize], 0, true, head, pos % kBlockSize),
                           HeadFloats(100 + static_cast<BlockId>(pos / kBlockSize), 0, true, head,
                                      pos % kBlockSize)))
          << "V is copied untouched";
    }
  }
  std::printf("re-rotated K vs K at position %ld: max abs diff %.3g\n", static_cast<long>(at),
              worst);
  EXPECT_LE(worst, 1e-5f);
}

TEST_P(BlendTest, ZeroShiftCopiesTheBits) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    Build(dtype);
    std::mt19937 rng(4);
    const std::vector<TokenId> chunk = RandomIds(rng, 7, config_.vocab_size);
    Prefill(chunk, 0, Blocks(0, 2));
    ThreadPool pool(2);
    PlaceChunk({.blocks = Blocks(0, 2), .length = 7, .position = 0}, Blocks(10, 2),
               RopeInverseFrequencies(config_), backend_->arena(), pool);
    const KvArena& arena = backend_->arena();
    for (int64_t layer = 0; layer < config_.num_layers; ++layer) {
      for (int value = 0; value < 2; ++value) {
        for (int64_t head = 0; head < config_.num_kv_heads; ++head) {
          for (BlockId b = 0; b < 2; ++b) {
            const int64_t tokens = b == 0 ? kBlockSize : 3;
            const size_t bytes = static_cast<size_t>(tokens * config_.head_dim) * DTypeSize(dtype);
            EXPECT_EQ(std::memcmp(arena.HeadData(b, layer, value == 1, head),
                                  arena.HeadData(10 + b, layer, value == 1, head), bytes),
                      0);
          }
        }
      }
    }
  }
}

TEST_P(BlendTest, RecomputingEverythingIsBitIdenticalToAFullPrefill) {
  std::mt19937 rng(5);
  const std::vector<TokenId> prompt = RandomIds(rng, 25, config_.vocab_size);
  // prefix [0, 5), chunk [5, 12), chunk [12, 21), question [21, 25)
  const std::vector<float> full = Prefill(prompt, 0, Blocks(0, 7));
  Prefill(std::vector<TokenId>(prompt.begin() + 5, prompt.begin() + 12), 0, Blocks(20, 2));
  Prefill(std::vector<TokenId>(prompt.begin() + 12, prompt.begin() + 21), 0, Blocks(30, 3));
  for (const std::vector<int32_t>& checks :
       {std::vector<int32_t>{0}, std::vector<int32_t>{1}, std::vector<int32_t>{0, 1}}) {
    // From 0, and after an exact cached prefix block (start 4).
    for (int64_t start : {0, 4}) {
      std::vector<BlockId> table = Blocks(40, 7);
      if (start == 4) table[0] = 0;  // the full prefill's first block
      const StepResult result =
          Run(BlendStep(prompt, start, table, {{5, 7, 20}, {12, 9, 30}}, 1.0f, checks));
      ASSERT_EQ(result.outputs.size(), 1u);
      EXPECT_TRUE(SameBits(result.outputs[0].logits, full)) << "start " << start;
      EXPECT_EQ(result.outputs[0].blend_recomputed_tokens, 16);
      EXPECT_EQ(result.outputs[0].blend_reused_tokens, 0);
    }
  }
}

TEST_P(BlendTest, ChunksComputedAfterTheirOwnBosBlendExactlyAtRatioOne) {
  // Each chunk computed as a prompt of its own: the prompt's first token
  // (its BOS) then the chunk; placed from source position 1.
  std::mt19937 rng(12);
  const std::vector<TokenId> prompt = RandomIds(rng, 22, config_.vocab_size);
  const std::vector<float> full = Prefill(prompt, 0, Blocks(0, 6));
  std::vector<TokenId> first = {prompt[0]}, second = {prompt[0]};
  first.insert(first.end(), prompt.begin() + 1, prompt.begin() + 9);
  second.insert(second.end(), prompt.begin() + 9, prompt.begin() + 18);
  Prefill(first, 0, Blocks(20, 3));
  Prefill(second, 0, Blocks(30, 3));
  const StepResult exact =
      Run(BlendStep(prompt, 0, Blocks(40, 6), {{1, 8, 20, 1}, {9, 9, 30, 1}}, 1.0f, {1}));
  EXPECT_TRUE(SameBits(exact.outputs[0].logits, full));
  // The first chunk stands where it stood on its own: a prefix, with bits
  // copied; r = 0 then equals prefix caching of BOS + the chunk.
  std::vector<BlockId> prefix_table = {20, 21, 70, 71, 72, 73};
  const std::vector<float> cached =
      Prefill(std::vector<TokenId>(prompt.begin() + 8, prompt.end()), 8, prefix_table);
  const StepResult reused = Run(BlendStep(prompt, 0, Blocks(50, 6), {{1, 8, 20, 1}}, 0.0f, {0}));
  EXPECT_TRUE(SameBits(reused.outputs[0].logits, cached));
}

TEST_P(BlendTest, OneChunkAtOffsetZeroWithRatioZeroEqualsPrefixCaching) {
  std::mt19937 rng(6);
  const std::vector<TokenId> prompt = RandomIds(rng, 15, config_.vocab_size);
  const std::vector<TokenId> chunk(prompt.begin(), prompt.begin() + 10);
  Prefill(chunk, 0, Blocks(0, 3));
  // Prefix caching reuses the chunk's two full blocks and computes the rest.
  std::vector<BlockId> prefix_table = {0, 1, 60, 61};
  const std::vector<float> cached =
      Prefill(std::vector<TokenId>(prompt.begin() + 8, prompt.end()), 8, prefix_table);
  for (int32_t check = 0; check < config_.num_layers; ++check) {
    const StepResult result = Run(BlendStep(prompt, 0, Blocks(70, 4), {{0, 10, 0}}, 0.0f, {check}));
    EXPECT_TRUE(SameBits(result.outputs[0].logits, cached)) << "check layer " << check;
    EXPECT_EQ(result.outputs[0].blend_reused_tokens, 10);
  }
}

TEST_P(BlendTest, BatchMatesAreBitwiseUnchanged) {
  std::mt19937 rng(8);
  const std::vector<TokenId> other = RandomIds(rng, 11, config_.vocab_size);
  const std::vector<TokenId> prompt = RandomIds(rng, 20, config_.vocab_size);
  Prefill(std::vector<TokenId>(prompt.begin() + 3, prompt.begin() + 12), 0, Blocks(0, 3));
  const std::vector<float> alone = Prefill(other, 0, Blocks(100, 3));
  StepPlan plan;
  plan.sequences.push_back(BlendStep(prompt, 0, Blocks(10, 5), {{3, 9, 0}}, 0.3f, {1}));
  SequenceStep mate;
  mate.seq_id = 9;
  mate.token_ids = other;
  mate.block_table = Blocks(120, 3);
  mate.return_logits = true;
  plan.sequences.push_back(mate);
  auto result = backend_->Execute(plan);
  ASSERT_TRUE(result.ok()) << result.status();
  const std::vector<float>& logits = result->outputs[1].logits;
  EXPECT_TRUE(SameBits(std::vector<float>(logits.end() - config_.vocab_size, logits.end()), alone));
}

TEST_P(BlendTest, NoSelectedQuerySeesALaterKey) {
  // What later tokens say must not reach the K/V of earlier positions: run
  // the same chunks with two different questions after them and compare the
  // blended cache of every chunk position, in every layer.
  std::mt19937 rng(9);
  const std::vector<TokenId> context =
      RandomIds(rng, 18, config_.vocab_size);  // chunks [2,10), [10,18)
  Prefill(std::vector<TokenId>(context.begin() + 2, context.begin() + 10), 0, Blocks(0, 2));
  Prefill(std::vector<TokenId>(context.begin() + 10, context.end()), 0, Blocks(4, 2));
  for (float ratio : {1.0f, 0.5f, 0.25f}) {
    std::vector<std::vector<float>> caches;
    for (int question = 0; question < 2; ++question) {
      std::vector<TokenId> prompt = context;
      const std::vector<TokenId> tail = RandomIds(rng, 6, config_.vocab_size);
      prompt.insert(prompt.end(), tail.begin(), tail.end());
      const BlockId base = 20 + question * 10;
      Run(BlendStep(prompt, 0, Blocks(base, 6), {{2, 8, 0}, {10, 8, 4}}, ratio, {0}));
      std::vector<float> cache;
      for (int64_t pos = 0; pos < 18; ++pos) {
        for (int64_t layer = 0; layer < config_.num_layers; ++layer) {
          for (int value = 0; value < 2; ++value) {
            for (int64_t head = 0; head < config_.num_kv_heads; ++head) {
              const std::vector<float> v = HeadFloats(base + static_cast<BlockId>(pos / kBlockSize),
                                                      layer, value == 1, head, pos % kBlockSize);
              cache.insert(cache.end(), v.begin(), v.end());
            }
          }
        }
      }
      caches.push_back(std::move(cache));
    }
    EXPECT_TRUE(SameBits(caches[0], caches[1])) << "ratio " << ratio;
  }
}

TEST_P(BlendTest, KeepsTheRatioOfChunkTokensPlusTheLastToken) {
  std::mt19937 rng(10);
  const std::vector<TokenId> prompt = RandomIds(rng, 16, config_.vocab_size);
  Prefill(prompt, 0, Blocks(0, 4));  // one chunk: the whole prompt
  // The chunk ends the prompt, so its last token is kept whatever the ratio.
  const StepResult half = Run(BlendStep(prompt, 0, Blocks(10, 4), {{0, 16, 0}}, 0.5f, {0}));
  EXPECT_EQ(half.outputs[0].blend_recomputed_tokens, 9);  // ceil(0.5 * 16) + the last
  EXPECT_EQ(half.outputs[0].blend_reused_tokens, 7);
  const StepResult none = Run(BlendStep(prompt, 0, Blocks(10, 4), {{0, 16, 0}}, 0.0f, {}));
  EXPECT_EQ(none.outputs[0].blend_recomputed_tokens, 1);
  // Gradual: 0.25 then 0.125 of 16 -> 2 kept (+ the last).
  const StepResult gradual = Run(BlendStep(prompt, 0, Blocks(10, 4), {{0, 16, 0}}, 0.125f, {0, 1}));
  EXPECT_EQ(gradual.outputs[0].blend_recomputed_tokens, 3);
  // Deterministic: the same step twice gives the same bits.
  const StepResult again = Run(BlendStep(prompt, 0, Blocks(10, 4), {{0, 16, 0}}, 0.5f, {0}));
  EXPECT_TRUE(SameBits(again.outputs[0].logits, half.outputs[0].logits));
}

TEST_P(BlendTest, RejectsBadBlendSteps) {
  std::mt19937 rng(11);
  const std::vector<TokenId> prompt = RandomIds(rng, 12, config_.vocab_size);
  const auto expect_invalid = [&](const SequenceStep& step, const std::string& words) {
    StepPlan plan;
    plan.sequences.push_back(step);
    auto result = backend_->Execute(plan);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(result.status().message()), HasSubstr(words));
  };
  expect_invalid(BlendStep(prompt, 0, Blocks(10, 3), {{0, 4, 0}}, 1.5f, {0}), "ratio");
  expect_invalid(BlendStep(prompt, 0, Blocks(10, 3), {{0, 4, 0}}, 0.1f,
                           {static_cast<int32_t>(config_.num_layers)}),
                 "check layer");
  expect_invalid(BlendStep(prompt, 0, Blocks(10, 3), {{0, 4, 10}}, 0.1f, {0}), "also written");
  expect_invalid(BlendStep(prompt, 0, Blocks(10, 3), {{0, 6, 0}, {4, 4, 20}}, 0.1f, {0}),
                 "overlap");
  expect_invalid(BlendStep(prompt, 4, Blocks(10, 3), {{2, 4, 0}}, 0.1f, {0}), "span");
}

std::string ConfigName(const ::testing::TestParamInfo<int>& info) {
  static const char* const kNames[] = {"llama", "linear_rope", "llama3_rope", "qk_norm",
                                       "qkv_bias"};
  return kNames[info.param];
}

INSTANTIATE_TEST_SUITE_P(Configs, BlendTest, ::testing::Range(0, 5), ConfigName);

TEST(BlendSelectionTest, TopDeviationsWithTiesToTheLowerIndex) {
  EXPECT_EQ(SelectMostDeviating({1.0, 5.0, 3.0, 5.0, 0.0}, 2), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(SelectMostDeviating({2.0, 2.0, 2.0}, 2), (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(SelectMostDeviating({1.0, 2.0}, 5), (std::vector<int64_t>{0, 1}));
  EXPECT_TRUE(SelectMostDeviating({1.0, 2.0}, 0).empty());
}

TEST(BlendSelectionTest, KeptCountsAndGradualRatios) {
  EXPECT_EQ(KeptCount(0.15f, 100), 15);
  EXPECT_EQ(KeptCount(0.15f, 7), 2);
  EXPECT_EQ(KeptCount(1.0f, 7), 7);
  EXPECT_EQ(KeptCount(0.0f, 7), 0);
  EXPECT_FLOAT_EQ(CheckLayerRatio(0.15f, 0, 1), 0.15f);
  EXPECT_FLOAT_EQ(CheckLayerRatio(0.15f, 0, 3), 0.3f);
  EXPECT_FLOAT_EQ(CheckLayerRatio(0.15f, 1, 3), 0.225f);
  EXPECT_FLOAT_EQ(CheckLayerRatio(0.15f, 2, 3), 0.15f);
  EXPECT_FLOAT_EQ(CheckLayerRatio(0.8f, 0, 2), 1.0f);
}

}  // namespace
}  // namespace strata::engine::cpu
