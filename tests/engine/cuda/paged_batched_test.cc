// The same prompt's logits agree however the CUDA backend is asked for
// them: in one step, in chunks (later chunks read earlier chunks' keys from
// the arena), through a scrambled block table, and batched with other
// sequences of different lengths (prefill and decode rows in one step). The
// GPU is not batch-invariant bit for bit (cuBLASLt picks kernels by shape),
// so agreement is within a tolerance far below the CPU comparison's.
// Decode graphs: a bucket's first run is eager, its second captures, and
// every replay computes bit for bit what the eager run did.
#include <numeric>
#include <random>
#include <vector>

#include "tests/engine/cuda/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::engine::cuda {
namespace {

using testing::Blocks;
using testing::RunChunked;

constexpr double kAgreement = 5e-3;  // relative, between two GPU runs

class PagedBatchedTest : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    auto model = cpu::MakeRandomModel(testing::RandomConfig(GetParam()), 23);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::make_unique<LoadedModel>(*std::move(model));
    backend_ = testing::MakeCudaBackend(*model_);
    ASSERT_NE(backend_, nullptr);
    vocab_ = model_->config.vocab_size;
    prompt_ = testing::Prompt(200, vocab_, 77);
    whole_ = RunChunked(*backend_, prompt_, 200, Blocks(0, 16));
  }

  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<CudaBackend> backend_;
  int64_t vocab_ = 0;
  std::vector<TokenId> prompt_;
  std::vector<float> whole_;
};

TEST_P(PagedBatchedTest, ChunkedPrefillAgrees) {
  for (int64_t chunk : {1, 7, 64, 150}) {
    const std::vector<float> chunked = RunChunked(*backend_, prompt_, chunk, Blocks(20, 16));
    EXPECT_LT(kernels::testing::RelativeError(chunked, whole_), kAgreement) << "chunk " << chunk;
  }
}

TEST_P(PagedBatchedTest, ScrambledBlockTableAgrees) {
  std::vector<BlockId> table(16);
  std::iota(table.begin(), table.end(), 100);
  std::shuffle(table.begin(), table.end(), std::mt19937(5));
  EXPECT_LT(kernels::testing::RelativeError(RunChunked(*backend_, prompt_, 200, table), whole_),
            kAgreement);
}

TEST_P(PagedBatchedTest, BatchedWithOtherSequencesAgrees) {
  // Others already hold some context, so the batch mixes decode rows,
  // a chunk continuation and a fresh prompt with ours.
  const std::vector<TokenId> other = testing::Prompt(90, vocab_, 3);
  ASSERT_FALSE(RunChunked(*backend_, other, 90, Blocks(200, 8)).empty());
  ASSERT_FALSE(RunChunked(*backend_, other, 89, Blocks(220, 8)).empty());
  StepPlan plan;
  plan.sequences.push_back(
      testing::Span(11, other, 89, 90, Blocks(200, 8)));  // decode, position 89
  plan.sequences.push_back(testing::Span(12, prompt_, 0, 200, Blocks(40, 16)));
  plan.sequences.push_back(testing::Span(13, other, 89, 90, Blocks(220, 8)));
  plan.sequences.push_back(testing::Span(14, testing::Prompt(33, vocab_, 4), 0, 33, Blocks(60, 4)));
  auto result = backend_->Execute(plan);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_LT(kernels::testing::RelativeError(result->outputs[1].logits, whole_), kAgreement);
  // Both decode rows saw the same tokens (their keys were computed in
  // different chunkings).
  EXPECT_LT(kernels::testing::RelativeError(result->outputs[0].logits, result->outputs[2].logits),
            kAgreement);
}

TEST_P(PagedBatchedTest, DecodeGraphReplaysMatchTheEagerRunBitForBit) {
  auto eager_backend = testing::MakeCudaBackend(*model_, {}, {.use_graphs = false});
  ASSERT_NE(eager_backend, nullptr);
  // Three sequences (bucket 4, one padding row), each with its own context.
  StepPlan plan;
  for (int s = 0; s < 3; ++s) {
    const std::vector<TokenId> ids = testing::Prompt(50 + 20 * s, vocab_, 90 + s);
    const std::vector<BlockId> table = Blocks(300 + 8 * s, 8);
    for (Backend* b :
         {static_cast<Backend*>(backend_.get()), static_cast<Backend*>(eager_backend.get())}) {
      ASSERT_FALSE(RunChunked(*b, ids, static_cast<int64_t>(ids.size()) - 1, table).empty());
    }
    plan.sequences.push_back(testing::Span(s, ids, static_cast<int64_t>(ids.size()) - 1,
                                           static_cast<int64_t>(ids.size()), table));
  }
  // Rerunning a decode step rewrites the same slots with the same values.
  const int captured_before = backend_->graphs_captured();
  std::vector<std::vector<float>> runs;
  for (int i = 0; i < 3; ++i) {
    auto result = backend_->Execute(plan);
    ASSERT_TRUE(result.ok()) << result.status();
    std::vector<float> all;
    for (const SequenceOutput& out : result->outputs)
      all.insert(all.end(), out.logits.begin(), out.logits.end());
    runs.push_back(all);
  }
  EXPECT_EQ(backend_->graphs_captured(), captured_before + 1);
  EXPECT_EQ(runs[1], runs[0]);
  EXPECT_EQ(runs[2], runs[0]);
  auto eager = eager_backend->Execute(plan);
  ASSERT_TRUE(eager.ok()) << eager.status();
  EXPECT_EQ(eager_backend->graphs_captured(), 0);
  std::vector<float> eager_all;
  for (const SequenceOutput& out : eager->outputs)
    eager_all.insert(eager_all.end(), out.logits.begin(), out.logits.end());
  EXPECT_LT(kernels::testing::RelativeError(runs[0], eager_all), kAgreement);
}

INSTANTIATE_TEST_SUITE_P(HeadDims, PagedBatchedTest, ::testing::Values(64, 128));

}  // namespace
}  // namespace strata::engine::cuda
