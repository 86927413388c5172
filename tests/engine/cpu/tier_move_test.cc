// Tier moves in the step contract: a whole KV block goes from the arena to
// host memory and back as one copy, bit for bit, before the forward pass; a
// bad move is refused with the arena untouched.
#include <cstring>
#include <memory>
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
using testing::Blocks;
using testing::MakeBackend;
using testing::RunChunked;


class TierMoveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = MakeRandomModel(TinyConfig(), 11);
    ASSERT_TRUE(model.ok()) << model.status();
    BackendOptions options;
    options.block_size = 4;
    options.num_kv_blocks = 16;
    backend_ = MakeBackend(*model, options);
    ASSERT_NE(backend_, nullptr);
    block_bytes_ = static_cast<size_t>(backend_->kv_arena_info().bytes_per_block);
  }

  std::vector<std::byte> ArenaBlock(BlockId id) {
    std::vector<std::byte> image(block_bytes_);
    backend_->arena().ReadBlock(id, image.data());
    return image;
  }

  std::unique_ptr<CpuBackend> backend_;
  size_t block_bytes_ = 0;
};

TEST_F(TierMoveTest, DemoteThenPromoteIsBitExactAndGivesTheSameLogits) {
  const std::vector<TokenId> ids = {5, 9, 13, 2, 40, 7, 7, 31, 12, 3};
  // Reference: all ten tokens computed in blocks 0..2.
  const std::vector<float> reference = RunChunked(*backend_, ids, 10, Blocks(0, 3));
  const std::vector<std::byte> block0 = ArenaBlock(0);
  const std::vector<std::byte> block1 = ArenaBlock(1);

  // Demote blocks 0 and 1 into host memory from the backend.
  auto host = backend_->AllocateHostBuffer(2 * block_bytes_);
  ASSERT_TRUE(host.ok()) << host.status();
  absl::Span<std::byte> staging((*host)->data(), 2 * block_bytes_);
  std::vector<BlockMove> demote = {
      {.src = 0, .kind = BlockMoveKind::kDeviceToHost, .host_dst = staging.subspan(0, block_bytes_)},
      {.src = 1,
       .kind = BlockMoveKind::kDeviceToHost,
       .host_dst = staging.subspan(block_bytes_, block_bytes_)}};
  ASSERT_TRUE(backend_->CopyBlocks(demote).ok());
  EXPECT_EQ(std::memcmp(staging.data(), block0.data(), block_bytes_), 0);
  EXPECT_EQ(std::memcmp(staging.data() + block_bytes_, block1.data(), block_bytes_), 0);

  // Promote them into blocks 7 and 9 in the plan that computes the rest
  // (positions 8..9) there: the moves run before the forward pass reads them.
  StepPlan plan;
  plan.block_moves = {
      {.dst = 7, .kind = BlockMoveKind::kHostToDevice, .host_src = staging.subspan(0, block_bytes_)},
      {.dst = 9,
       .kind = BlockMoveKind::kHostToDevice,
       .host_src = staging.subspan(block_bytes_, block_bytes_)}};
  plan.sequences.push_back(testing::Span(1, ids, 8, 10, {7, 9, 12}));
  auto result = backend_->Execute(plan);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->moves_completed, 2);
  EXPECT_EQ(ArenaBlock(7), block0);
  EXPECT_EQ(ArenaBlock(9), block1);
  const std::vector<float> tail(reference.begin() + 8 * TinyConfig().vocab_size, reference.end());
  EXPECT_EQ(result->outputs[0].logits, tail);  // exact: same bytes, batch-invariant GEMM
}

TEST_F(TierMoveTest, BadMovesAreRefusedAndTheArenaIsUnchanged) {
  RunChunked(*backend_, {1, 2, 3, 4, 5}, 5, Blocks(0, 2));
  const std::vector<std::byte> before = ArenaBlock(0);
  std::vector<std::byte> host(block_bytes_, std::byte{0x5a});
  const absl::Span<std::byte> whole(host);

  // A good promotion first, then a bad move: nothing at all is performed.
  const BlockMove good{.dst = 0, .kind = BlockMoveKind::kHostToDevice, .host_src = whole};
  struct Case {
    BlockMove bad;
    const char* message;
  };
  const std::vector<Case> cases = {
      {{.dst = 16, .kind = BlockMoveKind::kHostToDevice, .host_src = whole}, "outside the arena"},
      {{.src = -1, .kind = BlockMoveKind::kDeviceToHost, .host_dst = whole}, "outside the arena"},
      {{.src = 1, .kind = BlockMoveKind::kDeviceToHost, .host_dst = whole.subspan(1)},
       "host span of"},
      {{.dst = 1, .kind = BlockMoveKind::kHostToDevice}, "host span of 0 bytes"},
  };
  for (const Case& c : cases) {
    StepPlan plan;
    plan.block_moves = {good, c.bad};
    plan.sequences.push_back(testing::Span(1, {1, 2, 3, 4, 5, 6}, 5, 6, Blocks(0, 2)));
    absl::Status status = backend_->Execute(plan).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.message;
    EXPECT_THAT(status.message(), HasSubstr(c.message));
    EXPECT_EQ(backend_->CopyBlocks(plan.block_moves).code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ArenaBlock(0), before) << c.message;
  }
  EXPECT_EQ(host, std::vector<std::byte>(block_bytes_, std::byte{0x5a}));
}

}  // namespace
}  // namespace strata::engine::cpu
