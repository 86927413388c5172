// The validation of CacheBlend steps every backend runs
// (engine/blend_validation.h).
#include "engine/blend_validation.h"

#include "gtest/gtest.h"

namespace strata::engine {
namespace {

constexpr int64_t kLayers = 4, kBlockSize = 4, kBlocks = 16;

// Span [0, 12) in blocks 0, 1, 2; a chunk at [2, 7) from blocks 5, 6.
SequenceStep Valid() {
  SequenceStep s;
  s.seq_id = 42;
  s.token_ids.assign(12, 1);
  s.block_table = {0, 1, 2};
  BlendSpec spec;
  spec.chunks.push_back({.blocks = {5, 6}, .length = 5, .position = 2});
  spec.check_layers = {1, 2};
  s.blend = spec;
  return s;
}

absl::Status Check(const SequenceStep& s) { return ValidateBlend(s, kLayers, kBlockSize, kBlocks); }

TEST(BlendValidationTest, AcceptsValidAndPlainSteps) {
  EXPECT_TRUE(Check(Valid()).ok()) << Check(Valid());
  SequenceStep plain = Valid();
  plain.blend.reset();
  EXPECT_TRUE(Check(plain).ok());
}

TEST(BlendValidationTest, RefusesEachBadFieldNamingIt) {
  const auto refused = [](const SequenceStep& s, const std::string& text) {
    const absl::Status status = Check(s);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_NE(status.message().find("sequence 42: "), std::string::npos) << status;
    EXPECT_NE(status.message().find(text), std::string::npos) << status;
  };
  SequenceStep s = Valid();
  s.blend->recompute_ratio = 1.5f;
  refused(s, "recompute ratio 1.5");
  s = Valid();
  s.blend->check_layers = {2, 2};
  refused(s, "check layer 2 is not ascending within [0, 4)");
  s = Valid();
  s.blend->check_layers = {4};
  refused(s, "check layer 4");
  s = Valid();
  s.blend->chunks[0].position = 10;  // [10, 15) leaves [0, 12)
  refused(s, "blend chunk 0: positions [10, 15)");
  s = Valid();
  s.blend->chunks.push_back({.blocks = {7}, .length = 1, .position = 6});  // overlaps [2, 7)
  refused(s, "blend chunk 1: positions [6, 7)");
  s = Valid();
  s.blend->chunks[0].blocks = {5};
  refused(s, "1 blocks for 5 standalone positions");
  s = Valid();
  s.blend->chunks[0].blocks = {5, 16};
  refused(s, "block id 16 is outside the arena of 16 blocks");
  s = Valid();
  s.blend->chunks[0].blocks = {5, 1};
  refused(s, "block 1 is also written by the step");
}

}  // namespace
}  // namespace strata::engine
