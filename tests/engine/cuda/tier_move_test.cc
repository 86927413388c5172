// Tier moves on the CUDA backend: demotion to pinned host memory and
// promotion back are bit-exact and leave the logits unchanged; moves in a
// plan run (on the transfer stream) before the forward pass reads the
// blocks; in-arena copies batch into one kernel yet keep plan order; and a
// block written by one backend is a valid block for the other (the layouts
// are byte-compatible), so KV demoted from the GPU can be resumed on the CPU
// and vice versa.
#include <cstring>
#include <vector>

#include "engine/cuda/device_memory.h"
#include "tests/engine/cuda/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::engine::cuda {
namespace {

using testing::Blocks;
using testing::RunChunked;

class CudaTierMoveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto model = cpu::MakeRandomModel(testing::RandomConfig(64), 31);
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::make_unique<LoadedModel>(*std::move(model));
    gpu_ = testing::MakeCudaBackend(*model_, {.num_kv_blocks = 64});
    ASSERT_NE(gpu_, nullptr);
    block_bytes_ = static_cast<size_t>(gpu_->kv_arena_info().bytes_per_block);
    ids_ = testing::Prompt(41, model_->config.vocab_size, 8);
  }

  std::vector<std::byte> DeviceBlock(BlockId id) {
    std::vector<std::byte> bytes(block_bytes_);
    EXPECT_EQ(
        cudaMemcpy(bytes.data(), gpu_->arena().BlockData(id), block_bytes_, cudaMemcpyDeviceToHost),
        cudaSuccess);
    return bytes;
  }

  // Logits of the last token (position 40) over the first 40 tokens' KV in `table`.
  std::vector<float> LastLogits(Backend& backend, const std::vector<BlockId>& table) {
    StepPlan plan;
    plan.sequences.push_back(testing::Span(1, ids_, 40, 41, table));
    auto result = backend.Execute(plan);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->outputs[0].logits : std::vector<float>();
  }

  std::unique_ptr<LoadedModel> model_;
  std::unique_ptr<CudaBackend> gpu_;
  size_t block_bytes_ = 0;
  std::vector<TokenId> ids_;
};

TEST_F(CudaTierMoveTest, DemoteClobberPromoteIsBitExact) {
  ASSERT_FALSE(RunChunked(*gpu_, ids_, 40, Blocks(0, 3)).empty());  // positions 0..39
  const std::vector<float> reference = LastLogits(*gpu_, Blocks(0, 3));
  std::vector<std::vector<std::byte>> before = {DeviceBlock(0), DeviceBlock(1), DeviceBlock(2)};
  auto host = gpu_->AllocateHostBuffer(3 * block_bytes_);
  ASSERT_TRUE(host.ok()) << host.status();
  absl::Span<std::byte> staging((*host)->data(), 3 * block_bytes_);
  std::vector<BlockMove> demote;
  for (BlockId b = 0; b < 3; ++b) {
    demote.push_back({.src = b,
                      .kind = BlockMoveKind::kDeviceToHost,
                      .host_dst = staging.subspan(b * block_bytes_, block_bytes_)});
  }
  ASSERT_TRUE(gpu_->CopyBlocks(demote).ok());
  for (BlockId b = 0; b < 3; ++b) {
    EXPECT_EQ(std::memcmp(staging.data() + b * block_bytes_, before[b].data(), block_bytes_), 0);
  }
  // Clobber blocks 0..2 with another sequence's KV.
  ASSERT_FALSE(RunChunked(*gpu_, testing::Prompt(48, 1000, 99), 48, Blocks(0, 3)).empty());
  // Promote into blocks 10..12 within the plan that reads them.
  StepPlan plan;
  for (BlockId b = 0; b < 3; ++b) {
    plan.block_moves.push_back({.dst = 10 + b,
                                .kind = BlockMoveKind::kHostToDevice,
                                .host_src = staging.subspan(b * block_bytes_, block_bytes_)});
  }
  plan.sequences.push_back(testing::Span(1, ids_, 40, 41, {10, 11, 12}));
  auto result = gpu_->Execute(plan);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->moves_completed, 3);
  EXPECT_EQ(result->outputs[0].logits, reference);
}

TEST_F(CudaTierMoveTest, InArenaCopiesKeepPlanOrder) {
  ASSERT_FALSE(RunChunked(*gpu_, ids_, 40, Blocks(0, 3)).empty());
  const std::vector<float> reference = LastLogits(*gpu_, Blocks(0, 3));
  const std::vector<std::byte> block0 = DeviceBlock(0);
  // 0 -> 20, 1 -> 21, 2 -> 22 batch together; then 20 -> 30 must see the
  // copy of 0 (a later move reading an earlier one's destination).
  std::vector<BlockMove> copies = {
      {.src = 0, .dst = 20}, {.src = 1, .dst = 21}, {.src = 2, .dst = 22}, {.src = 20, .dst = 30}};
  ASSERT_TRUE(gpu_->CopyBlocks(copies).ok());
  EXPECT_EQ(DeviceBlock(30), block0);
  EXPECT_EQ(LastLogits(*gpu_, {30, 21, 22}), reference);
}

// The CUDA backend's blocks are token rows; the CPU backend keeps bf16 in
// its kernels' chunks (engine/cpu/kv_layout.h), so its tiers are keyed apart
// (cache::WithKvLayout). Converted through KvArena's ImportRows/ExportRows,
// either backend resumes a sequence whose KV the other computed.
TEST_F(CudaTierMoveTest, BlocksConvertToAndFromTheCpuBackendsLayout) {
  auto cpu = testing::MakeCpuBackend(*model_, {.num_kv_blocks = 64});
  ASSERT_NE(cpu, nullptr);
  // GPU -> CPU: the GPU computes positions 0..39, the CPU resumes.
  ASSERT_FALSE(RunChunked(*gpu_, ids_, 40, Blocks(0, 3)).empty());
  const std::vector<float> gpu_logits = LastLogits(*gpu_, Blocks(0, 3));
  auto host = gpu_->AllocateHostBuffer(3 * block_bytes_);
  ASSERT_TRUE(host.ok()) << host.status();
  absl::Span<std::byte> staging((*host)->data(), 3 * block_bytes_);
  std::vector<BlockMove> demote, promote;
  for (BlockId b = 0; b < 3; ++b) {
    demote.push_back({.src = b,
                      .kind = BlockMoveKind::kDeviceToHost,
                      .host_dst = staging.subspan(b * block_bytes_, block_bytes_)});
    promote.push_back({.dst = 40 + b,
                       .kind = BlockMoveKind::kHostToDevice,
                       .host_src = staging.subspan(b * block_bytes_, block_bytes_)});
  }
  ASSERT_TRUE(gpu_->CopyBlocks(demote).ok());
  for (BlockId b = 0; b < 3; ++b) cpu->arena().ImportRows(b, staging.data() + b * block_bytes_);
  const std::vector<float> resumed_on_cpu = LastLogits(*cpu, Blocks(0, 3));
  testing::ExpectClose(gpu_logits, resumed_on_cpu, model_->config.vocab_size, "gpu kv, cpu decode");
  // CPU -> GPU: the CPU computes positions 0..39 in blocks 4..6.
  ASSERT_FALSE(RunChunked(*cpu, ids_, 40, Blocks(4, 3)).empty());
  const std::vector<float> cpu_logits = LastLogits(*cpu, Blocks(4, 3));
  for (BlockId b = 0; b < 3; ++b) cpu->arena().ExportRows(4 + b, staging.data() + b * block_bytes_);
  ASSERT_TRUE(gpu_->CopyBlocks(promote).ok());
  testing::ExpectClose(LastLogits(*gpu_, {40, 41, 42}), cpu_logits, model_->config.vocab_size,
                       "cpu kv, gpu decode");
}

TEST_F(CudaTierMoveTest, BadMovesAreRefused) {
  std::vector<std::byte> small(block_bytes_ - 1);
  std::vector<BlockMove> bad = {{.src = 64, .dst = 0}};
  EXPECT_EQ(gpu_->CopyBlocks(bad).code(), absl::StatusCode::kInvalidArgument);
  bad = {{.src = 0, .kind = BlockMoveKind::kDeviceToHost, .host_dst = absl::MakeSpan(small)}};
  EXPECT_EQ(gpu_->CopyBlocks(bad).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::engine::cuda
