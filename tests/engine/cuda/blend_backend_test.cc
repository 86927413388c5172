// CacheBlend steps on the CUDA backend against the CPU backend (the
// reference): chunks computed standalone, placed with K re-rotated, then
// gradual selection at check layers; the same kept counts and last-row
// logits within the bf16 tolerance. Also: ratio 1 is a full prefill, no
// check layers reuse every chunk token, and a blend sequence batched with
// plain prefill and decode sequences gives each of them its solo result.
#include <string>
#include <vector>

#include "common/check.h"
#include "engine/cpu/random_weights.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace strata::engine::cuda {
namespace {

using testing::Blocks;
using testing::ExpectClose;

struct Chunk {
  int64_t position;
  int64_t length;
  BlockId first_block;  // its standalone blocks: first_block ..
};

struct Blended {
  std::vector<float> logits;  // the span's last row
  int64_t reused = -1, recomputed = -1;
  TokenId token = -1;
};

constexpr int64_t kBlockSize = 16;
const std::vector<Chunk> kChunks = {{20, 37, 200}, {57, 16, 210}};

LoadedModel Model(int64_t head_dim) {
  ModelConfig c = testing::RandomConfig(head_dim);
  c.num_layers = 4;
  auto model = cpu::MakeRandomModel(c, 7);
  CHECK(model.ok());
  return *std::move(model);
}

// Each chunk's tokens computed alone (positions 0..), as a cached chunk's
// standalone K/V is, into its own blocks.
void ComputeStandalone(Backend& backend, const std::vector<TokenId>& prompt) {
  for (const Chunk& chunk : kChunks) {
    const std::vector<TokenId> ids(prompt.begin() + chunk.position,
                                   prompt.begin() + chunk.position + chunk.length);
    StepPlan plan;
    plan.sequences.push_back(
        testing::Span(9, ids, 0, chunk.length,
                      Blocks(chunk.first_block, (chunk.length + kBlockSize - 1) / kBlockSize)));
    auto result = backend.Execute(plan);
    ASSERT_TRUE(result.ok()) << result.status();
  }
}

SequenceStep BlendStep(const std::vector<TokenId>& prompt, std::vector<int32_t> check_layers,
                       float ratio) {
  SequenceStep step = testing::Span(1, prompt, 0, static_cast<int64_t>(prompt.size()),
                                    Blocks(0, (static_cast<int64_t>(prompt.size()) + 15) / 16));
  step.sample = true;
  step.sampling.temperature = 0.0f;
  BlendSpec spec;
  for (const Chunk& chunk : kChunks) {
    spec.chunks.push_back(
        {.blocks = Blocks(chunk.first_block, (chunk.length + kBlockSize - 1) / kBlockSize),
         .length = chunk.length,
         .position = chunk.position});
  }
  spec.check_layers = std::move(check_layers);
  spec.recompute_ratio = ratio;
  step.blend = spec;
  return step;
}

Blended Collect(const SequenceOutput& out) {
  Blended b;
  b.logits = out.logits;
  b.reused = out.blend_reused_tokens;
  b.recomputed = out.blend_recomputed_tokens;
  if (out.token.has_value()) b.token = out.token->id;
  return b;
}

Blended RunBlend(Backend& backend, const std::vector<TokenId>& prompt,
                 std::vector<int32_t> check_layers, float ratio) {
  ComputeStandalone(backend, prompt);
  StepPlan plan;
  plan.sequences.push_back(BlendStep(prompt, std::move(check_layers), ratio));
  auto result = backend.Execute(plan);
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? Collect(result->outputs[0]) : Blended{};
}

class BlendBackendTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(BlendBackendTest, MatchesTheCpuBackend) {
  const LoadedModel model = Model(GetParam());
  const int64_t vocab = model.config.vocab_size;
  const std::vector<TokenId> prompt = testing::Prompt(90, vocab, 3);
  for (const auto& [layers, ratio] : std::vector<std::pair<std::vector<int32_t>, float>>{
           {{1}, 0.3f}, {{1, 2}, 0.15f}, {{}, 0.15f}}) {
    auto gpu = testing::MakeCudaBackend(model);
    auto cpu = testing::MakeCpuBackend(model);
    ASSERT_NE(gpu, nullptr);
    ASSERT_NE(cpu, nullptr);
    const Blended g = RunBlend(*gpu, prompt, layers, ratio);
    const Blended c = RunBlend(*cpu, prompt, layers, ratio);
    const std::string what = "head_dim " + std::to_string(GetParam()) + ", " +
                             std::to_string(layers.size()) + " check layers, ratio " +
                             std::to_string(ratio);
    EXPECT_EQ(g.reused, c.reused) << what;
    EXPECT_EQ(g.recomputed, c.recomputed) << what;
    EXPECT_EQ(g.reused + g.recomputed, 37 + 16) << what;
    ASSERT_EQ(g.logits.size(), static_cast<size_t>(vocab)) << what;
    ExpectClose(g.logits, c.logits, vocab, what);
  }
}

// Ratio 1 recomputes every token: the last row of a plain prefill.
TEST_P(BlendBackendTest, RatioOneIsAFullPrefill) {
  const LoadedModel model = Model(GetParam());
  const int64_t vocab = model.config.vocab_size;
  const std::vector<TokenId> prompt = testing::Prompt(90, vocab, 4);
  auto gpu = testing::MakeCudaBackend(model);
  ASSERT_NE(gpu, nullptr);
  const Blended g = RunBlend(*gpu, prompt, {0}, 1.0f);
  EXPECT_EQ(g.recomputed, 37 + 16);
  EXPECT_EQ(g.reused, 0);
  auto plain = testing::MakeCudaBackend(model);
  const std::vector<float> full = testing::RunChunked(*plain, prompt, 90, Blocks(0, 6));
  ExpectClose(g.logits, std::vector<float>(full.end() - vocab, full.end()), vocab,
              "ratio 1 vs full prefill");
}

// A blend sequence batched with a plain prefill and a decode step: every
// sequence gets what it gets alone.
TEST_P(BlendBackendTest, BatchedWithPlainSequences) {
  const LoadedModel model = Model(GetParam());
  const int64_t vocab = model.config.vocab_size;
  const std::vector<TokenId> prompt = testing::Prompt(90, vocab, 5);
  const std::vector<TokenId> other = testing::Prompt(40, vocab, 6);
  auto gpu = testing::MakeCudaBackend(model);
  ASSERT_NE(gpu, nullptr);
  // Alone: the blend, the other prompt's first 39 tokens, then its last.
  const Blended alone = RunBlend(*gpu, prompt, {1}, 0.3f);
  const std::vector<float> other_alone = testing::RunChunked(*gpu, other, 39, Blocks(300, 3));
  // Batched, on a fresh backend: the decode sequence's first 39 tokens
  // first, then one step with the blend, a plain prefill and the decode.
  auto batched = testing::MakeCudaBackend(model);
  ComputeStandalone(*batched, prompt);
  {
    StepPlan plan;
    plan.sequences.push_back(testing::Span(3, other, 0, 39, Blocks(300, 3)));
    ASSERT_TRUE(batched->Execute(plan).ok());
  }
  StepPlan plan;
  plan.sequences.push_back(testing::Span(2, other, 0, 40, Blocks(400, 3)));
  plan.sequences.push_back(BlendStep(prompt, {1}, 0.3f));
  plan.sequences.push_back(testing::Span(3, other, 39, 40, Blocks(300, 3)));
  auto result = batched->Execute(plan);
  ASSERT_TRUE(result.ok()) << result.status();
  const Blended b = Collect(result->outputs[1]);
  EXPECT_EQ(b.reused, alone.reused);
  EXPECT_EQ(b.recomputed, alone.recomputed);
  // cuBLASLt may pick other kernels for another row count: close, not equal.
  ExpectClose(b.logits, alone.logits, vocab, "batched blend vs alone");
  EXPECT_GE(b.token, 0);
  EXPECT_EQ(result->outputs[0].blend_recomputed_tokens, 0);
  ExpectClose(result->outputs[0].logits, other_alone, vocab, "batched prefill vs alone");
  ExpectClose(result->outputs[2].logits,
              std::vector<float>(other_alone.end() - vocab, other_alone.end()), vocab,
              "batched decode vs alone");
}

INSTANTIATE_TEST_SUITE_P(HeadDims, BlendBackendTest, ::testing::Values(64, 128));

}  // namespace
}  // namespace strata::engine::cuda
