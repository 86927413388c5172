// A paged KV arena filled with random bf16 keys and values, held twice: as
// the CPU backend's KvArena (the reference, through cpu::AttendTile) and
// as the same bytes in device memory (what the CUDA kernels read).
#ifndef STRATA_TESTS_KERNELS_ATTENTION_TEST_UTIL_H_
#define STRATA_TESTS_KERNELS_ATTENTION_TEST_UTIL_H_

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "engine/cpu/attention.h"
#include "engine/cpu/kv_arena.h"
#include "kernels/paged_kv.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels::testing {

class TwinArena {
 public:
  static constexpr int kLayers = 2;
  static constexpr int kLayer = 1;

  TwinArena(int kv_heads, int head_dim, int block_size, int blocks, uint32_t seed)
      : spec_{kLayers, kv_heads, head_dim, block_size, engine::DType::kBF16} {
    auto arena = engine::cpu::KvArena::Create(spec_, blocks);
    CHECK(arena.ok());
    cpu_ = *std::move(arena);
    const size_t bytes = static_cast<size_t>(spec_.BytesPerBlock()) * blocks;
    const std::vector<uint16_t> bits = ToBf16(RandomNormal(bytes / 2, seed));
    // The device holds token rows; the CPU arena its own layout of them.
    for (int b = 0; b < blocks; ++b) {
      cpu_->ImportRows(b, reinterpret_cast<const std::byte*>(bits.data()) +
                              static_cast<size_t>(b) * spec_.BytesPerBlock());
    }
    device_ = std::make_unique<DeviceArray<uint16_t>>(bits);
    // Tables hand out blocks in a scrambled order.
    order_.resize(static_cast<size_t>(blocks));
    std::iota(order_.begin(), order_.end(), 0);
    std::shuffle(order_.begin(), order_.end(), std::mt19937(seed + 1));
  }

  // A table of `blocks` distinct blocks not used by earlier tables.
  std::vector<int32_t> NextTable(int blocks) {
    CHECK(next_ + blocks <= static_cast<int>(order_.size()));
    std::vector<int32_t> table(order_.begin() + next_, order_.begin() + next_ + blocks);
    next_ += blocks;
    return table;
  }

  PagedKv view() const {
    PagedKv kv;
    kv.data = reinterpret_cast<__nv_bfloat16*>(device_->get());
    kv.block_elements = spec_.BytesPerBlock() / 2;
    kv.num_layers = kLayers;
    kv.num_kv_heads = static_cast<int>(spec_.num_kv_heads);
    kv.block_size = static_cast<int>(spec_.block_size);
    kv.head_dim = static_cast<int>(spec_.head_dim);
    return kv;
  }

  // The CPU backend's attention of one query vector (head_dim floats) over
  // keys 0 .. count - 1 of `kv_head`.
  std::vector<float> Reference(const float* q, int count, int kv_head,
                               const std::vector<int32_t>& table, float scale) const {
    std::vector<float> out(static_cast<size_t>(spec_.head_dim));
    const engine::cpu::AttentionQuery query{q, count, out.data()};
    engine::cpu::AttentionTile tile;
    tile.arena = cpu_.get();
    tile.layer = kLayer;
    tile.kv_head = kv_head;
    tile.block_table = table;
    tile.queries = absl::MakeConstSpan(&query, 1);
    tile.scale = scale;
    engine::cpu::AttendTile(tile);
    return out;
  }

 private:
  engine::KvCacheSpec spec_;
  std::unique_ptr<engine::cpu::KvArena> cpu_;
  std::unique_ptr<DeviceArray<uint16_t>> device_;
  std::vector<int32_t> order_;
  int next_ = 0;
};

}  // namespace strata::kernels::testing

#endif  // STRATA_TESTS_KERNELS_ATTENTION_TEST_UTIL_H_
