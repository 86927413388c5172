// Invalid plans are refused with precise INVALID_ARGUMENT errors before the
// arena is touched; nothing crashes.
#include <cstring>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/cpu/cpu_backend.h"
#include "engine/cpu/random_weights.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/engine/cpu/cpu_test_util.h"

namespace strata::engine::cpu {
namespace {

using ::testing::HasSubstr;
using testing::TinyConfig;


class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = MakeRandomModel(TinyConfig(), 5);
    ASSERT_TRUE(model.ok()) << model.status();
    BackendOptions options;
    options.num_kv_blocks = 8;
    auto backend = CreateBackend("cpu", *model, options);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = *std::move(backend);
  }

  absl::Status Run(SequenceStep step, std::vector<BlockMove> moves = {}) {
    StepPlan plan;
    plan.sequences.push_back(std::move(step));
    plan.block_moves = std::move(moves);
    return backend_->Execute(plan).status();
  }

  static SequenceStep Step(std::vector<TokenId> ids, int64_t start, std::vector<BlockId> table) {
    SequenceStep step;
    step.seq_id = 3;
    step.token_ids = std::move(ids);
    step.start_position = start;
    step.block_table = std::move(table);
    return step;
  }

  std::unique_ptr<Backend> backend_;
};

void ExpectInvalid(const absl::Status& status, const std::string& text) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(text));
}

TEST_F(BadInputTest, ValidPlanRuns) { EXPECT_TRUE(Run(Step({1, 2, 3}, 0, {0})).ok()); }

TEST_F(BadInputTest, TokenIdOutsideVocabulary) {
  ExpectInvalid(Run(Step({1, 64}, 0, {0})), "token id 64 at index 1 is outside the vocabulary");
  ExpectInvalid(Run(Step({-1}, 0, {0})), "token id -1");
}

TEST_F(BadInputTest, PositionBeyondContext) {
  ExpectInvalid(Run(Step({1}, 64, {0, 1, 2, 3, 4})), "beyond the model's maximum context of 64");
  ExpectInvalid(Run(Step({1}, -1, {0})), "negative start position");
}

TEST_F(BadInputTest, BlockTableTooShort) {
  ExpectInvalid(Run(Step(std::vector<TokenId>(17, 1), 0, {0})),
                "needs 2 blocks of 16 tokens but the block table has 1");
}

TEST_F(BadInputTest, BlockIdOutOfRange) {
  ExpectInvalid(Run(Step({1}, 16, {0, 8})), "block id 8 at table index 1 is outside the arena");
  ExpectInvalid(Run(Step({1}, 0, {-2})), "block id -2");
  ExpectInvalid(Run(Step({1}, 0, {0}), {{0, 9, BlockMoveKind::kCopy}}), "block move 0 -> 9");
  std::vector<BlockMove> moves = {{1, 99, BlockMoveKind::kCopy}};
  ExpectInvalid(backend_->CopyBlocks(moves), "outside the arena of 8 blocks");
}

TEST_F(BadInputTest, EmptySpanAndBadSampling) {
  ExpectInvalid(Run(Step({}, 0, {0})), "no tokens to compute");
  SequenceStep step = Step({1}, 0, {0});
  step.sample = true;
  step.sampling.temperature = -1.0f;
  EXPECT_EQ(Run(step).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ArenaSizeTest, MemoryFractionSizesTheArenaFromAvailableMemory) {
  auto model = MakeRandomModel(TinyConfig(), 5);
  ASSERT_TRUE(model.ok());
  BackendOptions options;
  options.kv_memory_fraction = 0.001;
  auto backend = CpuBackend::Create(*model, options);
  ASSERT_TRUE(backend.ok()) << backend.status();
  const KvArenaInfo info = (*backend)->kv_arena_info();
  // A thousandth of any real machine's free memory holds more blocks than the
  // default (one max-length sequence), and the arena really is that big.
  const int64_t default_blocks =
      (TinyConfig().max_position_embeddings + options.block_size - 1) / options.block_size;
  EXPECT_GT(info.num_blocks, default_blocks);
  for (double bad : {-0.1, 1.0, 2.0}) {
    options.kv_memory_fraction = bad;
    auto refused = CpuBackend::Create(*model, options);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(refused.status().message()), HasSubstr("kv_memory_fraction"));
  }
}

TEST_F(BadInputTest, UnknownBackendName) {
  auto model = MakeRandomModel(TinyConfig(), 5);
  ASSERT_TRUE(model.ok());
  auto backend = CreateBackend("tpu", *model, {});
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(backend.status().message()), HasSubstr("known: cpu"));
}

TEST(KvArenaTest, EachHeadsBlocksLieSideBySideAndBlocksCopy) {
  KvCacheSpec spec{2, 2, 8, 16, DType::kBF16};
  auto arena = KvArena::Create(spec, 4);
  ASSERT_TRUE(arena.ok()) << arena.status();
  KvArena& kv = **arena;
  const int64_t head_bytes = 16 * 8 * 2;
  EXPECT_EQ(kv.bytes_per_block(), 2 * 2 * 2 * head_bytes);
  // One (layer, k|v, kv head) run holds that head's slice of every block...
  EXPECT_EQ(kv.block_stride(), head_bytes);
  EXPECT_EQ(kv.HeadData(3, 1, true, 0), kv.HeadData(0, 1, true, 0) + 3 * kv.block_stride());
  // ...and the next run starts after the last block's slice.
  EXPECT_EQ(kv.HeadData(0, 0, false, 1), kv.HeadData(3, 0, false, 0) + head_bytes);
  EXPECT_EQ(kv.HeadData(0, 0, true, 0), kv.HeadData(3, 0, false, 1) + head_bytes);
  EXPECT_EQ(kv.HeadData(0, 1, false, 0), kv.HeadData(3, 0, true, 1) + head_bytes);
  // A block's image is its head slices in [layer][k|v][kv head] order.
  std::memset(kv.HeadData(2, 1, false, 1), 0x5a, static_cast<size_t>(head_bytes));
  std::vector<std::byte> image(static_cast<size_t>(kv.bytes_per_block()));
  kv.ReadBlock(2, image.data());
  const size_t at = static_cast<size_t>((2 * 2 + 1) * head_bytes);  // layer 1, keys, head 1
  EXPECT_EQ(image[at], std::byte{0x5a});
  EXPECT_EQ(image[at + static_cast<size_t>(head_bytes) - 1], std::byte{0x5a});
  EXPECT_EQ(image[at - 1], std::byte{0});
  EXPECT_EQ(image[at + static_cast<size_t>(head_bytes)], std::byte{0});
  std::vector<BlockMove> moves = {{2, 3, BlockMoveKind::kCopy}};
  ASSERT_TRUE(kv.CopyBlocks(moves).ok());
  std::vector<std::byte> copy(image.size());
  kv.ReadBlock(3, copy.data());
  EXPECT_EQ(copy, image);
}

}  // namespace
}  // namespace strata::engine::cpu
