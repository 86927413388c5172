#include "engine/cpu/kv_layout.h"

#include <cstring>
#include <set>
#include <vector>

#include "engine/cpu/kv_arena.h"
#include "gtest/gtest.h"

namespace strata::engine::cpu {
namespace {

KvCacheSpec Spec(DType dtype, int64_t block_size, int64_t head_dim) {
  return {.num_layers = 2,
          .num_kv_heads = 2,
          .head_dim = head_dim,
          .block_size = block_size,
          .dtype = dtype};
}

TEST(KvLayoutTest, Bf16ShapesTheKernelsTakeAreChunkedOthersAreRows) {
  EXPECT_EQ(KvLayoutFor(Spec(DType::kBF16, 16, 64)), KvLayout::kChunks);
  EXPECT_EQ(KvLayoutFor(Spec(DType::kBF16, 48, 128)), KvLayout::kChunks);
  EXPECT_EQ(KvLayoutFor(Spec(DType::kF32, 16, 64)), KvLayout::kRows);
  EXPECT_EQ(KvLayoutFor(Spec(DType::kBF16, 8, 64)), KvLayout::kRows);   // block size
  EXPECT_EQ(KvLayoutFor(Spec(DType::kBF16, 16, 16)), KvLayout::kRows);  // the embedded model
  EXPECT_EQ(KvLayoutFor(Spec(DType::kBF16, 16, 1024)), KvLayout::kRows);
}

// Every element of a head's block has exactly one place, inside the head's
// block_size * head_dim elements.
TEST(KvLayoutTest, ChunkIndicesAreAPermutationOfTheHeadsElements) {
  for (bool is_value : {false, true}) {
    const int64_t block = 32, d = 96;
    std::set<int64_t> seen;
    for (int64_t t = 0; t < block; ++t) {
      for (int64_t i = 0; i < d; ++i) {
        const int64_t index = KvElementIndex(KvLayout::kChunks, is_value, t, i, d);
        ASSERT_GE(index, 0);
        ASSERT_LT(index, block * d);
        ASSERT_TRUE(seen.insert(index).second) << "t " << t << " i " << i;
      }
    }
  }
}

// The shapes the kernels multiply: one 64-byte vector is a dim pair of 16
// keys, or 16 dims of a token pair interleaved per dim.
TEST(KvLayoutTest, ChunksHoldTheKernelsVectors) {
  const int64_t d = 64;
  // Keys: dim pair p of keys 0..15 at elements [32 p, 32 p + 32).
  EXPECT_EQ(KvElementIndex(KvLayout::kChunks, false, 0, 6, d), 3 * 32);
  EXPECT_EQ(KvElementIndex(KvLayout::kChunks, false, 0, 7, d), 3 * 32 + 1);
  EXPECT_EQ(KvElementIndex(KvLayout::kChunks, false, 15, 7, d), 3 * 32 + 31);
  EXPECT_EQ(KvElementIndex(KvLayout::kChunks, false, 16, 0, d), 16 * d);  // next chunk
  // Values: dims 16 T .. 16 T + 15 of tokens 2u, 2u + 1 at [32 (8 T + u), + 32).
  EXPECT_EQ(KvElementIndex(KvLayout::kChunks, true, 4, 16, d), (8 + 2) * 32);
  EXPECT_EQ(KvElementIndex(KvLayout::kChunks, true, 5, 16, d), (8 + 2) * 32 + 1);
  EXPECT_EQ(KvElementIndex(KvLayout::kChunks, true, 5, 31, d), (8 + 2) * 32 + 31);
  EXPECT_EQ(KvElementIndex(KvLayout::kRows, true, 5, 31, d), 5 * d + 31);
}

// WriteRow puts each element where KvElementIndex says (the kernels read
// the arena by that map).
TEST(KvLayoutTest, WriteRowFollowsTheElementIndex) {
  const KvCacheSpec spec = Spec(DType::kBF16, 32, 64);
  auto arena = KvArena::Create(spec, 1);
  ASSERT_TRUE(arena.ok()) << arena.status();
  std::vector<float> row(64);
  for (bool is_value : {false, true}) {
    for (int64_t t : {0, 5, 16, 31}) {
      for (int64_t i = 0; i < 64; ++i) row[static_cast<size_t>(i)] = static_cast<float>(i + 1);
      (*arena)->WriteRow(0, 0, is_value, 0, t, row.data());
      const auto* head = reinterpret_cast<const uint16_t*>((*arena)->HeadData(0, 0, is_value, 0));
      for (int64_t i = 0; i < 64; ++i) {
        const uint16_t bits = head[KvElementIndex(KvLayout::kChunks, is_value, t, i, 64)];
        uint32_t wide = static_cast<uint32_t>(bits) << 16;
        float value;
        std::memcpy(&value, &wide, 4);
        ASSERT_EQ(value, static_cast<float>(i + 1)) << is_value << " t " << t << " i " << i;
      }
    }
  }
}

// WriteRow then ReadRow gives the row back (rounded to the dtype), in every
// layout, and writes only that row's elements.
TEST(KvLayoutTest, RowsRoundTripThroughTheArena) {
  for (const KvCacheSpec& spec :
       {Spec(DType::kBF16, 32, 64), Spec(DType::kBF16, 8, 16), Spec(DType::kF32, 16, 32)}) {
    auto arena = KvArena::Create(spec, 3);
    ASSERT_TRUE(arena.ok()) << arena.status();
    const int64_t d = spec.head_dim;
    std::vector<float> row(static_cast<size_t>(d)), back(static_cast<size_t>(d));
    for (int64_t t = 0; t < spec.block_size; ++t) {
      for (bool is_value : {false, true}) {
        for (int64_t i = 0; i < d; ++i) {
          row[static_cast<size_t>(i)] = static_cast<float>(t * 1000 + i) + (is_value ? 0.5f : 0);
        }
        (*arena)->WriteRow(2, 1, is_value, 1, t, row.data());
      }
    }
    for (int64_t t = 0; t < spec.block_size; ++t) {
      for (bool is_value : {false, true}) {
        (*arena)->ReadRow(2, 1, is_value, 1, t, back.data());
        for (int64_t i = 0; i < d; ++i) {
          const float want = static_cast<float>(t * 1000 + i) + (is_value ? 0.5f : 0);
          // bf16 keeps 8 significant bits: compare with its rounding.
          const float tolerance = spec.dtype == DType::kBF16 ? std::abs(want) / 128 : 0.0f;
          ASSERT_NEAR(back[static_cast<size_t>(i)], want, tolerance) << t << " " << i;
        }
      }
      // The other heads' and layers' elements were never written.
      std::vector<std::byte> zeros(
          static_cast<size_t>(spec.block_size * d * DTypeSize(spec.dtype)));
      EXPECT_EQ(std::memcmp((*arena)->HeadData(2, 0, false, 0), zeros.data(), zeros.size()), 0);
      EXPECT_EQ(std::memcmp((*arena)->HeadData(2, 1, true, 0), zeros.data(), zeros.size()), 0);
    }
  }
}

}  // namespace
}  // namespace strata::engine::cpu
