// AttendTile against a double-precision reference, and the property the
// decoder's batch invariance rests on: a query's output is bitwise the same
// whatever other queries share its tile. Both arithmetics: fp32 products and
// the bf16 mode's bf16 products (AMX where the CPU has it, else AVX512-BF16,
// else fp32). The AVX512-BF16 kernel is also run directly, so that a CPU
// with AMX tests it too.
#include "engine/cpu/attention.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "engine/cpu/attention_amx.h"
#include "engine/cpu/attention_dpbf16.h"
#include "engine/cpu/simd.h"
#include "gtest/gtest.h"

namespace strata::engine::cpu {
namespace {

struct Shape {
  int64_t head_dim;
  int64_t block_size;
  DType dtype;
  bool bf16_products = false;
  bool dpbf16 = false;  // call AttendTileDpbf16 itself, not AttendTile
};

class AttentionTest : public ::testing::TestWithParam<Shape> {
 protected:
  static constexpr int64_t kBlocks = 12;
  static constexpr int64_t kLayer = 1;
  static constexpr int64_t kHead = 1;

  void SetUp() override {
    const Shape& shape = GetParam();
    if (shape.dpbf16 && !HasAvx512Bf16()) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
    spec_ = {.num_layers = 2,
             .num_kv_heads = 2,
             .head_dim = shape.head_dim,
             .block_size = shape.block_size,
             .dtype = shape.dtype};
    auto arena = KvArena::Create(spec_, kBlocks);
    ASSERT_TRUE(arena.ok()) << arena.status();
    arena_ = *std::move(arena);
    // Blocks in a scrambled order, as a block table may give them.
    for (int64_t b = 0; b < kBlocks; ++b) table_.push_back(static_cast<BlockId>((b * 5) % kBlocks));
    std::mt19937 rng(11);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    const int64_t d = spec_.head_dim;
    keys_.resize(static_cast<size_t>(Capacity() * d));
    values_.resize(keys_.size());
    for (float& v : keys_) v = dist(rng);
    for (float& v : values_) v = dist(rng);
    if (spec_.dtype == DType::kBF16) {  // the reference sees the stored values
      std::vector<uint16_t> bits(keys_.size());
      for (std::vector<float>* src : {&keys_, &values_}) {
        ConvertF32ToBf16(src->data(), bits.data(), static_cast<int64_t>(bits.size()));
        ConvertBf16ToF32(bits.data(), src->data(), static_cast<int64_t>(bits.size()));
      }
    }
    Store();
    queries_.resize(static_cast<size_t>(Capacity() * d));
    for (float& v : queries_) v = dist(rng) * 0.5f;
  }

  int64_t Capacity() const { return kBlocks * spec_.block_size; }

  // Writes every token's K and V where table_ puts it.
  void Store() {
    const int64_t d = spec_.head_dim;
    for (int64_t t = 0; t < Capacity(); ++t) {
      for (int is_value = 0; is_value < 2; ++is_value) {
        arena_->WriteRow(table_[static_cast<size_t>(t / spec_.block_size)], kLayer, is_value == 1,
                         kHead, t % spec_.block_size, (is_value ? values_ : keys_).data() + t * d);
      }
    }
  }

  // Runs the queries (index into queries_, key count) as one tile, through
  // `attend` if given, else the shape's entry point.
  std::vector<std::vector<float>> Run(const std::vector<std::pair<int64_t, int64_t>>& items,
                                      void (*attend)(const AttentionTile&) = nullptr) {
    const int64_t d = spec_.head_dim;
    std::vector<std::vector<float>> outs(items.size(), std::vector<float>(static_cast<size_t>(d)));
    std::vector<AttentionQuery> queries;
    for (size_t i = 0; i < items.size(); ++i) {
      queries.push_back({queries_.data() + items[i].first * d, items[i].second, outs[i].data()});
    }
    AttentionTile tile;
    tile.arena = arena_.get();
    tile.layer = kLayer;
    tile.kv_head = kHead;
    tile.block_table = table_;
    tile.queries = queries;
    tile.scale = 1.0f / std::sqrt(static_cast<float>(d));
    tile.bf16_products = GetParam().bf16_products;
    if (attend == nullptr) attend = GetParam().dpbf16 ? &AttendTileDpbf16 : &AttendTile;
    attend(tile);
    return outs;
  }

  std::vector<double> Reference(int64_t query, int64_t count) const {
    const int64_t d = spec_.head_dim;
    const float* q = queries_.data() + query * d;
    std::vector<double> scores(static_cast<size_t>(count));
    double max = -INFINITY;
    for (int64_t t = 0; t < count; ++t) {
      double dot = 0;
      for (int64_t i = 0; i < d; ++i) dot += double{q[i]} * keys_[static_cast<size_t>(t * d + i)];
      scores[static_cast<size_t>(t)] = dot / std::sqrt(static_cast<double>(d));
      max = std::max(max, scores[static_cast<size_t>(t)]);
    }
    double sum = 0;
    for (double& s : scores) sum += (s = std::exp(s - max));
    std::vector<double> out(static_cast<size_t>(d));
    for (int64_t t = 0; t < count; ++t) {
      for (int64_t i = 0; i < d; ++i) {
        out[static_cast<size_t>(i)] +=
            scores[static_cast<size_t>(t)] / sum * values_[static_cast<size_t>(t * d + i)];
      }
    }
    return out;
  }

  KvCacheSpec spec_;
  std::unique_ptr<KvArena> arena_;
  std::vector<BlockId> table_;
  std::vector<float> keys_, values_, queries_;
};

TEST_P(AttentionTest, MatchesDoublePrecision) {
  // bf16 q and softmax weights: about 2^-9 relative on each, so a few 1e-3
  // on outputs of order 1.
  const double tolerance = GetParam().bf16_products ? 2e-2 : 2e-5;
  for (int64_t count : {int64_t{1}, int64_t{2}, int64_t{15}, int64_t{17}, Capacity()}) {
    const std::vector<float> got = Run({{3, count}})[0];
    const std::vector<double> want = Reference(3, count);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], tolerance) << "count " << count << " element " << i;
    }
  }
}

TEST_P(AttentionTest, OutputDoesNotDependOnTheTile) {
  // A causal chunk: consecutive queries with counts 20..37, as in prefill
  // (more than the 16 queries of one AMX tile), plus repeats so that some
  // queries pair up and others do not.
  std::vector<std::pair<int64_t, int64_t>> items;
  for (int64_t i = 0; i < 18; ++i) items.push_back({i, 20 + i});
  items.push_back({19, 27});
  items.push_back({20, Capacity()});
  items.push_back({21, Capacity()});
  const std::vector<std::vector<float>> together = Run(items);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<float> alone = Run({items[i]})[0];
    ASSERT_EQ(std::memcmp(alone.data(), together[i].data(), alone.size() * 4), 0) << "query " << i;
  }
}

TEST_P(AttentionTest, PrefillTileMatchesDecode) {
  // A whole prefill chunk in one tile: enough queries that the AMX kernel
  // packs the tile's keys and values once and takes q as rows, where a lone
  // (decode) query takes q as a column. The outputs must still be bitwise
  // the same, and near the reference.
  std::vector<std::pair<int64_t, int64_t>> items;
  const int64_t n = std::min<int64_t>(45, Capacity());
  for (int64_t i = 0; i < n; ++i) items.push_back({i, Capacity() - n + 1 + i});
  items.push_back({n, 7});
  const std::vector<std::vector<float>> together = Run(items);
  const double tolerance = GetParam().bf16_products ? 2e-2 : 2e-5;
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<float> alone = Run({items[i]})[0];
    ASSERT_EQ(std::memcmp(alone.data(), together[i].data(), alone.size() * 4), 0) << "query " << i;
    const std::vector<double> want = Reference(items[i].first, items[i].second);
    for (size_t e = 0; e < want.size(); ++e) {
      ASSERT_NEAR(together[i][e], want[e], tolerance) << "query " << i << " element " << e;
    }
  }
}

TEST_P(AttentionTest, BlocksInArenaOrderGiveTheSameBits) {
  // Over blocks in arena order a decode query's chunks follow each other,
  // and the AVX512-BF16 kernel streams them (each chunk whole, in memory
  // order); over the scrambled table it does not. Same keys and
  // values, same bits; and a prefill tile over the ordered blocks, which
  // does not stream, agrees too.
  const std::vector<std::pair<int64_t, int64_t>> items = {
      {0, Capacity()}, {1, 17}, {2, Capacity() - 5}, {3, 1}, {4, 2 * spec_.block_size + 1}};
  // A GQA group's decode: three queries over the same keys stream too.
  const int64_t count = Capacity() - 3;
  const std::vector<std::pair<int64_t, int64_t>> group = {{5, count}, {6, count}, {7, count}};
  std::vector<std::vector<float>> scrambled;
  for (const auto& item : items) scrambled.push_back(Run({item})[0]);
  const std::vector<std::vector<float>> group_scrambled = Run(group);
  for (int64_t b = 0; b < kBlocks; ++b) table_[static_cast<size_t>(b)] = static_cast<BlockId>(b);
  Store();
  const std::vector<std::vector<float>> together = Run(items);
  for (size_t i = 0; i < items.size(); ++i) {
    const std::vector<float> alone = Run({items[i]})[0];
    ASSERT_EQ(std::memcmp(alone.data(), scrambled[i].data(), alone.size() * 4), 0) << "query " << i;
    ASSERT_EQ(std::memcmp(alone.data(), together[i].data(), alone.size() * 4), 0) << "query " << i;
  }
  const std::vector<std::vector<float>> group_in_order = Run(group);
  for (size_t i = 0; i < group.size(); ++i) {
    ASSERT_EQ(std::memcmp(group_in_order[i].data(), group_scrambled[i].data(),
                          group_in_order[i].size() * 4),
              0)
        << "group query " << i;
    const std::vector<float> alone = Run({group[i]})[0];
    ASSERT_EQ(std::memcmp(alone.data(), group_in_order[i].data(), alone.size() * 4), 0)
        << "group query " << i;
  }
}

TEST_P(AttentionTest, AttendTileRunsTheKernelItNames) {
  // What `strata bench engine` reports as the attention kernel is what
  // AttendTile runs: the named bf16 kernel gives AttendTile's bits.
  if (GetParam().dpbf16) GTEST_SKIP() << "calls the kernel itself";
  const AttentionKernel kernel = PickAttentionKernel(spec_, GetParam().bf16_products);
  const std::string name = AttentionKernelName(kernel);
  if (!GetParam().bf16_products || spec_.dtype != DType::kBF16) {
    EXPECT_EQ(name.substr(0, 4), "f32-") << name;
    return;
  }
  if (kernel != AttentionKernel::kAmx && kernel != AttentionKernel::kAvx512Bf16) {
    EXPECT_FALSE(Dpbf16AttentionSupported(spec_) || AmxAttentionSupported(spec_)) << name;
    return;
  }
  const std::vector<std::pair<int64_t, int64_t>> items = {{2, 5}, {3, Capacity()}};
  const std::vector<std::vector<float>> by_attend_tile = Run(items);
  EXPECT_EQ(name, kernel == AttentionKernel::kAmx ? "amx" : "avx512bf16");
  const std::vector<std::vector<float>> by_kernel =
      Run(items, kernel == AttentionKernel::kAmx ? &AttendTileAmx : &AttendTileDpbf16);
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(std::memcmp(by_kernel[i].data(), by_attend_tile[i].data(), by_kernel[i].size() * 4),
              0)
        << "query " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionTest,
    ::testing::Values(
        Shape{64, 16, DType::kBF16}, Shape{64, 16, DType::kF32}, Shape{24, 5, DType::kBF16},
        Shape{128, 7, DType::kF32}, Shape{8, 4, DType::kF32}, Shape{64, 16, DType::kBF16, true},
        Shape{128, 32, DType::kBF16, true}, Shape{32, 16, DType::kBF16, true},
        // Three 16-key chunks per block: the AMX chunk map divides.
        Shape{64, 48, DType::kBF16, true},
        // The AVX512-BF16 kernel, whatever this CPU has.
        Shape{64, 16, DType::kBF16, true, true}, Shape{128, 32, DType::kBF16, true, true},
        Shape{32, 16, DType::kBF16, true, true}, Shape{64, 48, DType::kBF16, true, true},
        // Three 32-dim blocks: the weighted sum takes a pair of them, then one.
        Shape{96, 16, DType::kBF16, true, true},
        // Shapes the AMX and AVX512-BF16 kernels leave to fp32 products.
        Shape{24, 5, DType::kBF16, true}, Shape{64, 16, DType::kF32, true}));

}  // namespace
}  // namespace strata::engine::cpu
