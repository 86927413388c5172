#include "scheduler/key_holds.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

using cache::Priority;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

const cache::BlockKey kA{1, 1};
const cache::BlockKey kB{1, 2};

TEST(KeyHoldsTest, EffectivePriorityIsTheHighestHeldAndDropsBackToNormal) {
  KeyHolds holds;
  EXPECT_EQ(holds.Effective(kA), Priority::kNormal);
  holds.Hold({kA, kB}, Priority::kWorkflowSoon);
  EXPECT_EQ(holds.Effective(kA), Priority::kWorkflowSoon);
  EXPECT_THAT(holds.TakeChanged(), UnorderedElementsAre(kA, kB));
  EXPECT_THAT(holds.TakeChanged(), IsEmpty());
  holds.Hold({kA}, Priority::kSessionPinned);
  EXPECT_EQ(holds.Effective(kA), Priority::kSessionPinned);
  EXPECT_THAT(holds.TakeChanged(), ElementsAre(kA));
  holds.Drop({kA}, Priority::kWorkflowSoon);  // still pinned: no change
  EXPECT_EQ(holds.Effective(kA), Priority::kSessionPinned);
  EXPECT_THAT(holds.TakeChanged(), IsEmpty());
  holds.Drop({kA}, Priority::kSessionPinned);
  EXPECT_EQ(holds.Effective(kA), Priority::kNormal);
  EXPECT_THAT(holds.TakeChanged(), ElementsAre(kA));
  EXPECT_EQ(holds.num_keys(), 1);  // kB only: a key with no holds is forgotten
}

TEST(KeyHoldsTest, HoldsAreCountedSoOneHolderLettingGoKeepsTheOthers) {
  KeyHolds holds;
  holds.Hold({kA}, Priority::kSessionPinned);
  holds.Hold({kA}, Priority::kSessionPinned);
  holds.TakeChanged();
  holds.Drop({kA}, Priority::kSessionPinned);
  EXPECT_EQ(holds.Effective(kA), Priority::kSessionPinned);
  EXPECT_THAT(holds.TakeChanged(), IsEmpty());
  holds.Drop({kA}, Priority::kSessionPinned);
  EXPECT_EQ(holds.Effective(kA), Priority::kNormal);
  EXPECT_EQ(holds.num_keys(), 0);
}

TEST(KeyHoldsTest, TouchedKeysAreReappliedInTheOrderTouched) {
  KeyHolds holds;
  const cache::BlockKey a{1, 1}, b{1, 2};
  holds.Hold(std::vector<cache::BlockKey>{a, b}, cache::Priority::kWorkflowSoon);
  holds.Touch(std::vector<cache::BlockKey>{b, a});
  // The holds changed a and b; the touch asks for b, then a, again: a is
  // applied last, so it ends up the most recent of its class.
  EXPECT_EQ(holds.TakeChanged(), (std::vector<cache::BlockKey>{a, b, b, a}));
  EXPECT_TRUE(holds.TakeChanged().empty());
  EXPECT_EQ(holds.Effective(a), cache::Priority::kWorkflowSoon);  // a touch holds nothing
  holds.Touch(std::vector<cache::BlockKey>{cache::BlockKey{7, 7}});
  EXPECT_EQ(holds.Effective(cache::BlockKey{7, 7}), cache::Priority::kNormal);
  EXPECT_EQ(holds.num_keys(), 2);
}

}  // namespace
}  // namespace strata::scheduler
