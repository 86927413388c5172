// scheduler.blend.*: a nested mapping in the YAML, --set with dotted names,
// lists of check layers, and errors that name file, line and key.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/daemon_config.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;

TEST(BlendConfigTest, NestedKeysLoad) {
  absl::StatusOr<DaemonConfig> config = ParseConfig(
      "scheduler:\n"
      "  max_running: 8\n"
      "  blend:\n"
      "    enable: false\n"
      "    recompute_ratio: 0.3\n"
      "    check_layers: [0, 2]\n",
      "blend.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->scheduler.blend_enable);
  EXPECT_DOUBLE_EQ(config->scheduler.blend_recompute_ratio, 0.3);
  EXPECT_EQ(config->scheduler.blend_check_layers, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(config->scheduler.max_running, 8);
}

TEST(BlendConfigTest, DefaultsAndTheDumpRoundTrip) {
  DaemonConfig defaults;
  EXPECT_TRUE(defaults.scheduler.blend_enable);
  EXPECT_DOUBLE_EQ(defaults.scheduler.blend_recompute_ratio, 0.15);
  EXPECT_EQ(defaults.scheduler.blend_check_layers, (std::vector<int64_t>{1, 2, 3}));
  const std::string dump = DumpConfig(defaults);
  EXPECT_THAT(dump, HasSubstr("  blend:\n"));
  EXPECT_THAT(dump, HasSubstr("    check_layers: [1, 2, 3]\n"));
  defaults.scheduler.blend_check_layers = {0, 3};
  absl::StatusOr<DaemonConfig> again = ParseConfig(DumpConfig(defaults), "dump");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->scheduler.blend_check_layers, (std::vector<int64_t>{0, 3}));
}

TEST(BlendConfigTest, SetOverridesNestedKeys) {
  DaemonConfig config;
  ASSERT_TRUE(ApplyOverride(config, "scheduler.blend.recompute_ratio=0.05").ok());
  ASSERT_TRUE(ApplyOverride(config, "scheduler.blend.check_layers=[0, 1, 2]").ok());
  ASSERT_TRUE(ApplyOverride(config, "scheduler.blend.check_layers=2").ok());
  EXPECT_DOUBLE_EQ(config.scheduler.blend_recompute_ratio, 0.05);
  EXPECT_EQ(config.scheduler.blend_check_layers, std::vector<int64_t>{2});
}

TEST(BlendConfigTest, BadValuesNameLineAndKey) {
  absl::StatusOr<DaemonConfig> ratio =
      ParseConfig("scheduler:\n  blend:\n    recompute_ratio: 1.5\n", "bad.yaml");
  EXPECT_EQ(ratio.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ratio.status().message()),
              HasSubstr("bad.yaml:3: scheduler.blend.recompute_ratio"));
  absl::StatusOr<DaemonConfig> layers =
      ParseConfig("scheduler:\n  blend:\n    check_layers: [1, x]\n", "bad.yaml");
  EXPECT_THAT(std::string(layers.status().message()),
              HasSubstr("bad.yaml:3: scheduler.blend.check_layers: item 1"));
  absl::StatusOr<DaemonConfig> unknown =
      ParseConfig("scheduler:\n  blend:\n    ratio: 0.2\n", "bad.yaml");
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("bad.yaml:3"));
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("scheduler.blend.ratio"));
}

}  // namespace
}  // namespace strata::server
