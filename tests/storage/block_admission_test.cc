#include "storage/block_admission.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace strata::storage {
namespace {

BlockKey Key(uint64_t i) {
  // Keys are hashes in practice: spread both words.
  return BlockKey{.high = i * 0x9e3779b97f4a7c15ull, .low = (i + 1) * 0xbf58476d1ce4e5b9ull};
}

TEST(BlockAdmissionTest, AdmitsAfterTheNthSighting) {
  BlockAdmission admission(2, 1000);
  EXPECT_FALSE(admission.Admit(Key(1)));  // never sighted
  admission.RecordSightings({Key(1), Key(2)});
  EXPECT_FALSE(admission.Admit(Key(1)));  // one request wanted it
  admission.RecordSightings({Key(1)});
  EXPECT_TRUE(admission.Admit(Key(1)));  // a second one did
  EXPECT_FALSE(admission.Admit(Key(2)));
  EXPECT_EQ(admission.Estimate(Key(1)), 2);
}

TEST(BlockAdmissionTest, AKeyRepeatedWithinOneRequestCountsOnce) {
  BlockAdmission admission(2, 1000);
  admission.RecordSightings({Key(5), Key(5), Key(5)});
  EXPECT_EQ(admission.Estimate(Key(5)), 1);
  EXPECT_FALSE(admission.Admit(Key(5)));
}

TEST(BlockAdmissionTest, OneAdmitsEverythingWithoutCounting) {
  BlockAdmission admission(1, 1000);
  EXPECT_TRUE(admission.Admit(Key(9)));
  EXPECT_EQ(admission.width(), 0u);  // no sketch at all
}

TEST(BlockAdmissionTest, MemoryIsBoundedAndFewOneOffsAreAdmitted) {
  // Far more distinct blocks than the sketch was sized for, each sighted
  // once: collisions may overcount a few, never many.
  BlockAdmission admission(2, 1000);
  EXPECT_LE(admission.width(), uint64_t{1} << 14);
  int admitted = 0;
  constexpr int kBlocks = 3000;
  for (uint64_t i = 0; i < kBlocks; ++i) admission.RecordSightings({Key(i)});
  for (uint64_t i = 0; i < kBlocks; ++i) admitted += admission.Admit(Key(i)) ? 1 : 0;
  EXPECT_LT(admitted, kBlocks / 100);
}

TEST(BlockAdmissionTest, OldSightingsFade) {
  BlockAdmission admission(2, 0);  // the smallest sketch: halves every 2048 sightings
  admission.RecordSightings({Key(1)});
  admission.RecordSightings({Key(1)});
  EXPECT_TRUE(admission.Admit(Key(1)));
  for (uint64_t i = 100; i < 100 + admission.width() / 2; ++i) admission.RecordSightings({Key(i)});
  EXPECT_FALSE(admission.Admit(Key(1)));  // halved to one sighting
  EXPECT_EQ(admission.Estimate(Key(1)), 1);
}

}  // namespace
}  // namespace strata::storage
