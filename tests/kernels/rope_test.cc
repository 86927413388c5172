// The RoPE table and the fused bias / q-k norm / rotation against the CPU
// decoder's formulas (engine/cpu/decoder.cc), for every rope scaling type
// and every supported head_dim.
#include "kernels/rope.h"

#include <cmath>

#include "engine/cpu/decoder.h"
#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;

struct RopeCase {
  int head_dim;
  engine::RopeType type;
  bool bias;
  bool qk_norm;
};

engine::ModelConfig ConfigFor(const RopeCase& c) {
  engine::ModelConfig config;
  config.head_dim = c.head_dim;
  config.rope_theta = 500000.0;
  config.rope_scaling.type = c.type;
  config.rope_scaling.factor = 8.0;
  config.rope_scaling.low_freq_factor = 1.0;
  config.rope_scaling.high_freq_factor = 4.0;
  config.rope_scaling.original_max_position_embeddings = 8192;
  return config;
}

class RopeKernelTest : public ::testing::TestWithParam<RopeCase> {};

TEST_P(RopeKernelTest, MatchesCpuDecoder) {
  const RopeCase& c = GetParam();
  const int d = c.head_dim, half = d / 2;
  constexpr int kHeads = 4, kKvHeads = 2;
  const int width = (kHeads + 2 * kKvHeads) * d;
  const std::vector<int32_t> positions = {0, 1, 7, 4095, 100000, 131071};
  const int rows = static_cast<int>(positions.size());
  const std::vector<float> inv = engine::cpu::RopeInverseFrequencies(ConfigFor(c));
  const std::vector<float> qkv = testing::RandomNormal(rows * width, 9);
  const std::vector<float> bias = testing::RandomNormal(width, 10);
  const std::vector<float> q_norm = testing::RandomNormal(d, 11);
  const std::vector<float> k_norm = testing::RandomNormal(d, 12);
  DeviceArray<int32_t> d_pos(positions);
  DeviceArray<float> d_inv(inv), d_cos(rows * half), d_sin(rows * half), d_qkv(qkv);
  DeviceArray<float> d_bias(bias), d_qn(q_norm), d_kn(k_norm);
  RopeTableParams table{d_pos.get(), d_inv.get(), d_cos.get(), d_sin.get(), rows, half};
  ExpectRan(LaunchRopeTable(table, nullptr));
  QkvRopeParams p;
  p.qkv = d_qkv.get();
  p.bias = c.bias ? d_bias.get() : nullptr;
  p.q_norm = c.qk_norm ? d_qn.get() : nullptr;
  p.k_norm = c.qk_norm ? d_kn.get() : nullptr;
  p.cos = d_cos.get();
  p.sin = d_sin.get();
  p.rows = rows;
  p.num_heads = kHeads;
  p.num_kv_heads = kKvHeads;
  p.head_dim = d;
  p.eps = 1e-6f;
  ExpectRan(LaunchQkvRope(p, nullptr));
  const std::vector<float> cos_gpu = d_cos.Download(), sin_gpu = d_sin.Download();
  const std::vector<float> out = d_qkv.Download();
  for (int r = 0; r < rows; ++r) {
    std::vector<float> cs(half), sn(half);
    for (int i = 0; i < half; ++i) {  // decoder.cc RopeTables
      const float angle = static_cast<float>(positions[r]) * inv[i];
      cs[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sn[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      ASSERT_NEAR(cos_gpu[r * half + i], cs[i], 1e-6f) << "row " << r << " i " << i;
      ASSERT_NEAR(sin_gpu[r * half + i], sn[i], 1e-6f) << "row " << r << " i " << i;
    }
    std::vector<float> row(qkv.begin() + r * width, qkv.begin() + (r + 1) * width);
    for (int i = 0; c.bias && i < width; ++i) row[i] += bias[i];
    for (int h = 0; h < kHeads + 2 * kKvHeads; ++h) {  // decoder.cc QkvPostprocess
      float* v = row.data() + h * d;
      if (h >= kHeads + kKvHeads) continue;
      if (c.qk_norm) {
        const std::vector<float>& w = h < kHeads ? q_norm : k_norm;
        float sum = 0;
        for (int i = 0; i < d; ++i) sum += v[i] * v[i];
        const float scale = 1.0f / std::sqrt(sum / static_cast<float>(d) + 1e-6f);
        for (int i = 0; i < d; ++i) v[i] = w[i] * (v[i] * scale);
      }
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * sn[i];
        v[i + half] = b * cs[i] + a * sn[i];
      }
    }
    for (int i = 0; i < width; ++i) {
      ASSERT_NEAR(out[r * width + i], row[i], 1e-4f * (1.0f + std::fabs(row[i])))
          << "row " << r << " column " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, RopeKernelTest,
                         ::testing::Values(RopeCase{16, engine::RopeType::kDefault, false, false},
                                           RopeCase{32, engine::RopeType::kDefault, true, false},
                                           RopeCase{64, engine::RopeType::kLinear, false, true},
                                           RopeCase{128, engine::RopeType::kLlama3, false, false},
                                           RopeCase{128, engine::RopeType::kLlama3, true, true}));

TEST(RopeKernelTest, RejectsAHeadDimOutsideTheTable) {
  DeviceArray<float> dummy(64);
  QkvRopeParams p;
  p.qkv = dummy.get();
  p.cos = dummy.get();
  p.sin = dummy.get();
  p.rows = 1;
  p.num_heads = 1;
  p.num_kv_heads = 1;
  p.head_dim = 8;
  EXPECT_EQ(LaunchQkvRope(p, nullptr), cudaErrorInvalidValue);
}

}  // namespace
}  // namespace strata::kernels
