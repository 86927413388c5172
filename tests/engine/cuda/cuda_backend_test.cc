// The CUDA backend against the CPU backend on the fixture models (llama,
// qwen2 with qkv bias, qwen3 with q/k norm and tied embeddings) and on
// random-weight configs with head_dim 64 and 128: logits of whole prompts
// within bf16 tolerance, greedy tokens equal wherever the CPU is confident,
// and greedy continuations decoded one token per step (the graph path).
#include <string>
#include <vector>

#include "engine/model_weights.h"
#include "tests/engine/cuda/cuda_test_util.h"

namespace strata::engine::cuda {
namespace {

using testing::Blocks;
using testing::ExpectClose;
using testing::RunChunked;

// Greedy decoding one token per step, as the scheduler would run it; the
// logits of every step come back too.
struct Decoded {
  std::vector<TokenId> tokens;
  std::vector<float> logits;  // [steps, vocab]
};

Decoded Greedy(Backend& backend, const std::vector<TokenId>& prompt, size_t steps) {
  Decoded out;
  SequenceStep step;
  step.seq_id = 3;
  step.token_ids = prompt;
  step.block_table = Blocks(0, 128);
  step.sample = true;
  step.sampling.temperature = 0.0f;
  step.prompt_ids = prompt;
  while (out.tokens.size() < steps) {
    StepPlan plan;
    step.return_logits = step.token_ids.size() == 1;
    plan.sequences = {step};
    auto result = backend.Execute(plan);
    EXPECT_TRUE(result.ok()) << result.status();
    if (!result.ok() || !result->outputs[0].token.has_value()) break;
    const TokenId next = result->outputs[0].token->id;
    out.tokens.push_back(next);
    out.logits.insert(out.logits.end(), result->outputs[0].logits.begin(),
                      result->outputs[0].logits.end());
    step.start_position += static_cast<int64_t>(step.token_ids.size());
    step.token_ids = {next};
    step.output_ids = out.tokens;
  }
  return out;
}

void CompareOnModel(const LoadedModel& model, const std::string& label, size_t prompt_length) {
  auto gpu = testing::MakeCudaBackend(model);
  auto cpu = testing::MakeCpuBackend(model);
  ASSERT_NE(gpu, nullptr);
  ASSERT_NE(cpu, nullptr);
  const int64_t vocab = model.config.vocab_size;
  const std::vector<TokenId> prompt = testing::Prompt(prompt_length, vocab, 5);
  const std::vector<BlockId> table = Blocks(0, 128);
  ExpectClose(RunChunked(*gpu, prompt, static_cast<int64_t>(prompt.size()), table),
              RunChunked(*cpu, prompt, static_cast<int64_t>(prompt.size()), table), vocab,
              label + " prompt logits");
  // Decode: the GPU follows its own greedy path; at each step the CPU,
  // fed the same tokens, must agree wherever it is confident.
  const Decoded g = Greedy(*gpu, prompt, 16);
  ASSERT_EQ(g.tokens.size(), 16u);
  auto cpu2 = testing::MakeCpuBackend(model);
  std::vector<TokenId> fed = prompt;
  fed.insert(fed.end(), g.tokens.begin(), g.tokens.end() - 1);
  const std::vector<float> cpu_logits = RunChunked(*cpu2, fed, 1 << 20, table);
  // The CPU's rows for the positions the GPU decoded one at a time.
  const std::vector<float> tail(cpu_logits.end() - static_cast<int64_t>(15 * vocab),
                                cpu_logits.end());
  ExpectClose(g.logits, tail, vocab, label + " decode logits");
}

class FixtureTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FixtureTest, MatchesTheCpuBackend) {
  auto model = LoadModel(testing::FixtureDir(GetParam()));
  ASSERT_TRUE(model.ok()) << model.status();
  CompareOnModel(*model, GetParam(), 57);
}

INSTANTIATE_TEST_SUITE_P(Models, FixtureTest,
                         ::testing::Values("llama-tiny", "qwen2-tiny", "qwen3-tiny"));

class RandomWeightsTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(RandomWeightsTest, MatchesTheCpuBackend) {
  auto model = cpu::MakeRandomModel(testing::RandomConfig(GetParam()), 17);
  ASSERT_TRUE(model.ok()) << model.status();
  // 300 tokens: several prefill tiles per head and two decode chunks.
  CompareOnModel(*model, "head_dim " + std::to_string(GetParam()), 300);
}

INSTANTIATE_TEST_SUITE_P(HeadDims, RandomWeightsTest, ::testing::Values(64, 128));

TEST(CudaBackendTest, GreedyTokenIsTheCpuSamplersOnTheSameLogits) {
  auto model = LoadModel(testing::FixtureDir("qwen2-tiny"));
  ASSERT_TRUE(model.ok()) << model.status();
  auto gpu = testing::MakeCudaBackend(*model);
  ASSERT_NE(gpu, nullptr);
  const std::vector<TokenId> prompt = testing::Prompt(40, model->config.vocab_size, 9);
  StepPlan plan;
  SequenceStep seq = testing::Span(1, prompt, 0, 40, Blocks(0, 8));
  seq.sample = true;
  seq.sampling.temperature = 0.0f;
  seq.sampling.return_logprob = true;
  seq.sampling.top_logprobs = 5;
  plan.sequences.push_back(seq);
  auto result = gpu->Execute(plan);
  ASSERT_TRUE(result.ok()) << result.status();
  const SequenceOutput& out = result->outputs[0];
  ASSERT_TRUE(out.token.has_value());
  const int64_t vocab = model->config.vocab_size;
  const absl::Span<const float> last(out.logits.data() + 39 * vocab, static_cast<size_t>(vocab));
  const SampledToken cpu = SampleToken(last, seq.sampling, {});
  EXPECT_EQ(out.token->id, cpu.id);
  EXPECT_NEAR(out.token->logprob, cpu.logprob, 1e-4f);
  ASSERT_EQ(out.token->top_logprobs.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(out.token->top_logprobs[i].id, cpu.top_logprobs[i].id);
}

TEST(CudaBackendTest, SeededSamplingIsReproducible) {
  auto model = LoadModel(testing::FixtureDir("llama-tiny"));
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<TokenId> tokens[2];
  for (int run = 0; run < 2; ++run) {
    auto gpu = testing::MakeCudaBackend(*model);
    ASSERT_NE(gpu, nullptr);
    SequenceStep step = testing::Span(1, testing::Prompt(20, 1024, 3), 0, 20, Blocks(0, 8));
    step.return_logits = false;
    step.sample = true;
    step.sampling.temperature = 0.9f;
    step.sampling.top_p = 0.95f;
    step.sampling.top_k = 40;
    step.sampling.seed = 1234;
    for (int i = 0; i < 12; ++i) {
      StepPlan plan;
      plan.sequences = {step};
      auto result = gpu->Execute(plan);
      ASSERT_TRUE(result.ok()) << result.status();
      const TokenId next = result->outputs[0].token->id;
      tokens[run].push_back(next);
      step.start_position += static_cast<int64_t>(step.token_ids.size());
      step.token_ids = {next};
      step.output_ids = tokens[run];
    }
  }
  EXPECT_EQ(tokens[0], tokens[1]);
}

TEST(CudaBackendTest, RefusesWhatTheKernelsDoNotSupport) {
  auto model = cpu::MakeRandomModel(cpu::testing::TinyConfig(), 2);  // head_dim 8
  ASSERT_TRUE(model.ok()) << model.status();
  auto tiny = CudaBackend::Create(*model, {.num_kv_blocks = 8});
  EXPECT_EQ(tiny.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(tiny.status().message()).find("head_dim in {16, 32, 64, 128}"),
            std::string::npos)
      << tiny.status();
  auto good = cpu::MakeRandomModel(testing::RandomConfig(64), 2);
  ASSERT_TRUE(good.ok()) << good.status();
  auto f32_kv = CudaBackend::Create(*good, {.num_kv_blocks = 8, .kv_dtype = DType::kF32});
  EXPECT_EQ(f32_kv.status().code(), absl::StatusCode::kInvalidArgument);
  auto f32 = CudaBackend::Create(*good, {.num_kv_blocks = 8, .precision = Precision::kF32});
  EXPECT_EQ(f32.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CudaBackendTest, RejectsBadPlansLikeTheCpuBackend) {
  auto model = cpu::MakeRandomModel(testing::RandomConfig(64), 4);
  ASSERT_TRUE(model.ok()) << model.status();
  auto gpu = testing::MakeCudaBackend(*model, {.num_kv_blocks = 8});
  ASSERT_NE(gpu, nullptr);
  const auto run = [&](SequenceStep seq) {
    StepPlan plan;
    plan.sequences = {std::move(seq)};
    return gpu->Execute(plan).status().code();
  };
  const std::vector<TokenId> ids = {1, 2, 3};
  EXPECT_EQ(run(testing::Span(1, {1, 2000}, 0, 2, {0})), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(run(testing::Span(1, ids, 0, 3, {8})), absl::StatusCode::kInvalidArgument);
  SequenceStep empty = testing::Span(1, ids, 0, 0, {0});
  EXPECT_EQ(run(empty), absl::StatusCode::kInvalidArgument);
  SequenceStep far = testing::Span(1, ids, 0, 3, {0});
  far.start_position = 4095;
  EXPECT_EQ(run(far), absl::StatusCode::kInvalidArgument);
  SequenceStep short_table = testing::Span(1, testing::Prompt(20, 1000, 1), 0, 20, {0});
  EXPECT_EQ(run(short_table), absl::StatusCode::kInvalidArgument);
  SequenceStep blend = testing::Span(1, ids, 0, 3, {0});
  blend.blend.emplace();
  blend.blend->recompute_ratio = 2.0f;
  EXPECT_EQ(run(blend), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(run(testing::Span(1, ids, 0, 3, {0})), absl::StatusCode::kOk);
}

}  // namespace
}  // namespace strata::engine::cuda
