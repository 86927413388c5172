// Property tests of the step contract: a sequence's logits do not depend on
// how its tokens are split into steps, on which other sequences share a step
// (prefill and decode mixed), or on whether its prefix blocks are shared.
#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "engine/cpu/cpu_backend.h"
#include "engine/model_weights.h"
#include "gtest/gtest.h"
#include "tests/bitwise.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace strata::engine::cpu {
namespace {

using testing::ArgmaxRows;
using testing::Blocks;
using testing::MakeBackend;
using testing::MaxAbsDiff;
using testing::RunChunked;
using testing::WeightsDir;

// The GEMM fixes every output's summation order whatever the batch (see
// engine/cpu/gemm.h) and attention, norms and RoPE are per row, so logits
// must match bitwise, not merely closely: compared by their bits
// (tests/bitwise.h), so a NaN or a signed zero cannot slip through.

std::vector<TokenId> RandomIds(std::mt19937& rng, int64_t n, int64_t vocab) {
  std::uniform_int_distribution<TokenId> dist(0, static_cast<TokenId>(vocab - 1));
  std::vector<TokenId> ids(static_cast<size_t>(n));
  for (TokenId& id : ids) id = dist(rng);
  return ids;
}

// Every model in the split mode (fp32 attention products) and in the bf16
// serving mode (bf16 products on AMX where the CPU has it).
class BatchInvarianceTest : public ::testing::TestWithParam<std::tuple<std::string, Precision>> {
 protected:
  std::string Name() const {
    return std::get<0>(GetParam()) +
           (std::get<1>(GetParam()) == Precision::kBf16 ? " [bf16]" : " [split]");
  }

  void SetUp() override {
    auto model = LoadModel(WeightsDir(std::get<0>(GetParam())));
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::make_unique<LoadedModel>(*std::move(model));
    BackendOptions options;
    options.precision = std::get<1>(GetParam());
    backend_ = MakeBackend(*model_, options);
    ASSERT_NE(backend_, nullptr);
    vocab_ = model_->config.vocab_size;
  }

  void ExpectSame(const std::vector<float>& got, const std::vector<float>& want,
                  const std::string& what) {
    const float error = MaxAbsDiff(got, want);
    std::printf("%s %s: max abs diff %.3g\n", Name().c_str(), what.c_str(), error);
    EXPECT_TRUE(strata::testing::BitwiseEqual(got, want)) << what;
    EXPECT_EQ(ArgmaxRows(got, vocab_), ArgmaxRows(want, vocab_)) << what;
  }

  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<CpuBackend> backend_;
  int64_t vocab_ = 0;
};

TEST_P(BatchInvarianceTest, ChunkingDoesNotChangeLogits) {
  std::mt19937 rng(1234);
  const int64_t n = std::min<int64_t>(150, model_->config.max_position_embeddings);
  const std::vector<TokenId> ids = RandomIds(rng, n, vocab_);
  const std::vector<float> whole = RunChunked(*backend_, ids, n, Blocks(0, 10));
  for (int64_t chunk : {1, 7, 64}) {
    ExpectSame(RunChunked(*backend_, ids, chunk, Blocks(20, 10)), whole,
               "chunks of " + std::to_string(chunk));
  }
  // Random chunk sizes.
  std::vector<float> random;
  std::uniform_int_distribution<int64_t> size(1, 40);
  for (int64_t begin = 0; begin < n;) {
    const int64_t end = std::min<int64_t>(n, begin + size(rng));
    StepPlan plan;
    plan.sequences.push_back(testing::Span(1, ids, begin, end, Blocks(40, 10)));
    auto result = backend_->Execute(plan);
    ASSERT_TRUE(result.ok()) << result.status();
    random.insert(random.end(), result->outputs[0].logits.begin(), result->outputs[0].logits.end());
    begin = end;
  }
  ExpectSame(random, whole, "random chunks");
}

TEST_P(BatchInvarianceTest, MixedBatchesMatchSequencesRunAlone) {
  std::mt19937 rng(99);
  // Three sequences of different lengths, each with its own blocks.
  const std::vector<std::vector<TokenId>> seqs = {
      RandomIds(rng, 120, vocab_), RandomIds(rng, 37, vocab_), RandomIds(rng, 70, vocab_)};
  const std::vector<std::vector<BlockId>> tables = {Blocks(0, 8), Blocks(10, 3), Blocks(20, 5)};
  std::vector<std::vector<float>> alone;
  for (size_t s = 0; s < seqs.size(); ++s) {
    alone.push_back(
        RunChunked(*backend_, seqs[s], static_cast<int64_t>(seqs[s].size()), Blocks(100, 8)));
  }
  // Sequence 0 prefills in random chunks; 1 decodes one token per step after
  // a short prefill; 2 prefills in chunks of 16. They share every step.
  std::vector<int64_t> done(seqs.size(), 0);
  std::vector<std::vector<float>> batched(seqs.size());
  std::uniform_int_distribution<int64_t> chunk0(1, 30);
  while (done[0] < 120 || done[1] < 37 || done[2] < 70) {
    StepPlan plan;
    std::vector<size_t> order;
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int64_t n = static_cast<int64_t>(seqs[s].size());
      if (done[s] >= n) continue;
      int64_t want = s == 0 ? chunk0(rng) : (s == 1 ? (done[1] == 0 ? 5 : 1) : 16);
      const int64_t end = std::min(n, done[s] + want);
      plan.sequences.push_back(
          testing::Span(static_cast<SequenceId>(s), seqs[s], done[s], end, tables[s]));
      order.push_back(s);
      done[s] = end;
    }
    auto result = backend_->Execute(plan);
    ASSERT_TRUE(result.ok()) << result.status();
    for (size_t i = 0; i < order.size(); ++i) {
      const std::vector<float>& part = result->outputs[i].logits;
      batched[order[i]].insert(batched[order[i]].end(), part.begin(), part.end());
    }
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    ExpectSame(batched[s], alone[s], "batched sequence " + std::to_string(s));
  }
}

TEST_P(BatchInvarianceTest, SharedPrefixBlocksGiveTheSameLogits) {
  std::mt19937 rng(7);
  const std::vector<TokenId> prefix = RandomIds(rng, 40, vocab_);  // 2.5 blocks of 16
  std::vector<TokenId> a = prefix, b = prefix;
  for (TokenId id : RandomIds(rng, 30, vocab_)) a.push_back(id);
  for (TokenId id : RandomIds(rng, 25, vocab_)) b.push_back(id);
  const std::vector<float> b_alone = RunChunked(*backend_, b, 65, Blocks(100, 5));

  // a owns blocks 0..4. b shares a's two full blocks and gets a copy of the
  // partly shared third one (copy-on-write), then computes only its suffix.
  RunChunked(*backend_, a, 70, Blocks(0, 5));
  StepPlan plan;
  SequenceStep step = testing::Span(2, b, 40, 65, {0, 1, 10, 11, 12});
  plan.block_moves.push_back({2, 10, BlockMoveKind::kCopy});
  plan.sequences.push_back(step);
  auto result = backend_->Execute(plan);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->moves_completed, 1);
  const std::vector<float> suffix(b_alone.begin() + 40 * vocab_, b_alone.end());
  ExpectSame(result->outputs[0].logits, suffix, "shared prefix");

  // Both sequences decode in one step, still reading the shared blocks.
  StepPlan both;
  both.sequences.push_back(testing::Span(1, a, 69, 70, Blocks(0, 5)));
  both.sequences.push_back(testing::Span(2, b, 64, 65, {0, 1, 10, 11, 12}));
  auto again = backend_->Execute(both);
  ASSERT_TRUE(again.ok()) << again.status();
  const std::vector<float> b_last(b_alone.end() - vocab_, b_alone.end());
  ExpectSame(again->outputs[1].logits, b_last, "shared prefix decode");
}

INSTANTIATE_TEST_SUITE_P(
    Models, BatchInvarianceTest,
    ::testing::Combine(::testing::Values("llama-tiny", "qwen2-tiny", "qwen3-tiny", "aidreams260K"),
                       ::testing::Values(Precision::kBf16Split, Precision::kBf16)));

}  // namespace
}  // namespace strata::engine::cpu
