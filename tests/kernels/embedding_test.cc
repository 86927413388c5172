// Embedding gather against the table's own rows widened to fp32.
#include "kernels/embedding.h"

#include "tests/kernels/kernel_test_util.h"

namespace strata::kernels {
namespace {

using testing::DeviceArray;
using testing::ExpectRan;

TEST(EmbeddingKernelTest, GathersRowsExactly) {
  constexpr int kVocab = 300, kHidden = 200;
  const std::vector<uint16_t> table = testing::ToBf16(testing::RandomNormal(kVocab * kHidden, 1));
  const std::vector<int32_t> ids = {0, 299, 17, 17, 150, 3};
  DeviceArray<uint16_t> d_table(table);
  DeviceArray<int32_t> d_ids(ids);
  DeviceArray<float> d_out(ids.size() * kHidden);
  EmbeddingParams p;
  p.table = reinterpret_cast<const __nv_bfloat16*>(d_table.get());
  p.token_ids = d_ids.get();
  p.out = d_out.get();
  p.rows = static_cast<int>(ids.size());
  p.hidden = kHidden;
  ExpectRan(LaunchEmbedding(p, nullptr));
  const std::vector<float> out = d_out.Download();
  const std::vector<float> rows = testing::FromBf16(table);
  for (size_t r = 0; r < ids.size(); ++r) {
    for (int i = 0; i < kHidden; ++i) {
      ASSERT_EQ(out[r * kHidden + i], rows[static_cast<size_t>(ids[r]) * kHidden + i])
          << "row " << r << " element " << i;
    }
  }
}

}  // namespace
}  // namespace strata::kernels
