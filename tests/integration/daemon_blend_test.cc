// CacheBlend end to end on the real daemon: a request whose input is a list
// of chunks caches each chunk on its own; a later request with the same
// chunks in another order reports blend-reused tokens in its usage, /metrics
// counts them by source, and bad blend options are INVALID_ARGUMENT naming
// the field. `strata client --chunk` sends chunks from the command line.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/temp_dir.h"
#include "tests/integration/daemon_process.h"
#include "tests/integration/grpc_test_client.h"
#include "tests/server/commands/strata_runner.h"

namespace strata {
namespace {

using testing::DaemonProcess;
using testing::Generation;
using ::testing::HasSubstr;

// Short: the embedded model's context is 128 tokens.
constexpr char kFirst[] = "The keeper counted ships by their lanterns.";
constexpr char kSecond[] = "The miller argued with the river every spring.";

v1::GenerateRequest ChunksRequest(const std::vector<std::string>& chunks,
                                  const std::string& question) {
  v1::GenerateRequest request;
  for (const std::string& text : chunks) request.mutable_chunks()->add_chunks()->set_text(text);
  request.mutable_chunks()->add_chunks()->set_text(question);
  request.mutable_sampling()->set_max_tokens(6);
  request.mutable_sampling()->set_temperature(0);
  return request;
}

double SourceCount(const std::string& metrics_address, const std::string& source) {
  return testing::ScrapeMetric(
      metrics_address,
      absl::StrCat(R"(strata_prompt_tokens_by_source_total{source=")", source, R"("})"));
}

class DaemonBlendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = DaemonProcess::Serve(dir_.path(), testing::BaseConfigYaml(), {}, "blend");
    ASSERT_NE(daemon_, nullptr);
    ASSERT_TRUE(daemon_->WaitForListening()) << daemon_->Stderr();
    stub_ = testing::NewStub(daemon_->grpc_address());
  }
  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<v1::Strata::Stub> stub_;
};

TEST_F(DaemonBlendTest, ChunksInANewOrderAreReusedAndCounted) {
  const Generation first =
      testing::StreamGenerate(*stub_, ChunksRequest({kFirst, kSecond}, "Who kept the ledger?"));
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  const v1::Usage& fresh = first.final_info.usage();
  // The chunks were computed on their own, then blended.
  EXPECT_GT(fresh.blend_reused_tokens() + fresh.blend_recomputed_tokens(), 0);

  const Generation second =
      testing::StreamGenerate(*stub_, ChunksRequest({kSecond, kFirst}, "What did the miller do?"));
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  const v1::Usage& usage = second.final_info.usage();
  EXPECT_GT(usage.blend_reused_tokens(), 0);
  EXPECT_GT(usage.blend_recomputed_tokens(), 0);
  EXPECT_LT(usage.blend_recomputed_tokens(), usage.blend_reused_tokens());
  EXPECT_EQ(second.ids.size(), 6u);

  const double reused = SourceCount(daemon_->metrics_address(), "blend_reuse");
  const double recomputed = SourceCount(daemon_->metrics_address(), "blend_recompute");
  EXPECT_EQ(reused, static_cast<double>(fresh.blend_reused_tokens() + usage.blend_reused_tokens()));
  EXPECT_EQ(recomputed,
            static_cast<double>(fresh.blend_recomputed_tokens() + usage.blend_recomputed_tokens()));
}

TEST_F(DaemonBlendTest, BadBlendOptionsNameTheField) {
  v1::GenerateRequest ratio = ChunksRequest({kFirst}, "Why?");
  ratio.mutable_blend()->set_recompute_ratio(1.5f);
  Generation result = testing::StreamGenerate(*stub_, ratio);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("blend.recompute_ratio"));
  v1::GenerateRequest layer = ChunksRequest({kFirst}, "Why?");
  layer.mutable_blend()->add_check_layers(1);
  layer.mutable_blend()->add_check_layers(9);
  result = testing::StreamGenerate(*stub_, layer);
  EXPECT_EQ(result.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(result.status.error_message(), HasSubstr("blend.check_layers[1]"));
  // The daemon keeps serving.
  EXPECT_TRUE(testing::StreamGenerate(*stub_, ChunksRequest({kFirst}, "Why?")).status.ok());
}

TEST_F(DaemonBlendTest, TheClientSendsChunks) {
  const std::vector<std::string> args = {
      "client",   "--server",  daemon_->grpc_address(), "--chunk", kFirst, "--chunk", kSecond,
      "--prompt", "And then?", "--max-tokens",          "4"};
  testing::StrataResult first = testing::RunStrata(args);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const std::vector<std::string> swapped = {
      "client",   "--server",  daemon_->grpc_address(), "--chunk", kSecond, "--chunk", kFirst,
      "--prompt", "And then?", "--max-tokens",          "4"};
  testing::StrataResult second = testing::RunStrata(swapped);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  std::smatch match;
  ASSERT_TRUE(std::regex_search(second.err, match, std::regex(R"(blend_reused=(\d+))")))
      << second.err;
  EXPECT_GT(std::stoi(match[1]), 0);
}

}  // namespace
}  // namespace strata
