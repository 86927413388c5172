#include "server/grpc/blend_conversion.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/grpc/request_conversion.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;

class BlendConversionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<engine::Tokenizer>> tokenizer =
        engine::Tokenizer::Load(STRATA_SOURCE_DIR "/models/aidreams260K");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    context_.tokenizer = tokenizer_.get();
    context_.vocab_size = tokenizer_->vocab_size();
    context_.max_prompt_tokens = 100;
    context_.blend = BlendDefaults{.enable = true, .num_layers = 4};
  }
  std::vector<engine::TokenId> Encode(const std::string& text, bool special) {
    return tokenizer_->Encode(text, special).value_or(std::vector<engine::TokenId>{});
  }
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  ConversionContext context_;
};

TEST_F(BlendConversionTest, ChunksKeepTheirSpansAndBosStandsOutsideThem) {
  v1::GenerateRequest request;
  request.mutable_chunks()->add_chunks()->set_text("The river was wide.");
  request.mutable_chunks()->add_chunks()->mutable_token_ids()->add_ids(42);
  request.mutable_chunks()->add_chunks()->set_text("Why?");
  absl::StatusOr<scheduler::Request> out = RequestFromProto(request, context_, Tenant{});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_TRUE(out->blend.has_value());
  const std::vector<engine::TokenId> first = Encode("The river was wide.", false);
  const std::vector<engine::TokenId> with = Encode("The river was wide.", true);
  ASSERT_EQ(with.size(), first.size() + 1);  // BOS
  ASSERT_EQ(out->chunks.size(), 3u);
  EXPECT_EQ(out->chunks[0].begin, 1);
  EXPECT_EQ(out->chunks[0].length, static_cast<int64_t>(first.size()));
  EXPECT_EQ(out->chunks[1].length, 1);
  EXPECT_EQ(out->prompt_ids[0], with[0]);
  EXPECT_EQ(out->blend->recompute_ratio, 0.15f);
  EXPECT_EQ(out->blend->check_layers, (std::vector<int32_t>{1, 2, 3}));
}

TEST_F(BlendConversionTest, RequestOptionsOverrideTheDefaults) {
  v1::GenerateRequest request;
  request.mutable_chunks()->add_chunks()->set_text("A chunk.");
  request.mutable_blend()->set_recompute_ratio(0.3f);
  request.mutable_blend()->add_check_layers(0);
  request.mutable_blend()->add_check_layers(2);
  absl::StatusOr<scheduler::Request> out = RequestFromProto(request, context_, Tenant{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->blend->recompute_ratio, 0.3f);
  EXPECT_EQ(out->blend->check_layers, (std::vector<int32_t>{0, 2}));
  request.mutable_blend()->set_enable(false);
  out = RequestFromProto(request, context_, Tenant{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_FALSE(out->blend.has_value());
  EXPECT_TRUE(out->chunks.empty());
  EXPECT_EQ(out->prompt_ids, Encode("A chunk.", true));
}

TEST_F(BlendConversionTest, BadOptionsNameTheField) {
  v1::GenerateRequest request;
  request.mutable_chunks()->add_chunks()->set_text("A chunk.");
  request.mutable_blend()->set_recompute_ratio(-0.1f);
  absl::StatusOr<scheduler::Request> out = RequestFromProto(request, context_, Tenant{});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("blend.recompute_ratio"));
  request.mutable_blend()->set_recompute_ratio(0.2f);
  request.mutable_blend()->add_check_layers(4);
  out = RequestFromProto(request, context_, Tenant{});
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("blend.check_layers[0]: layer 4"));
  request.mutable_blend()->clear_check_layers();
  request.mutable_blend()->add_check_layers(2);
  request.mutable_blend()->add_check_layers(1);
  out = RequestFromProto(request, context_, Tenant{});
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("blend.check_layers[1]"));
  v1::GenerateRequest empty;
  empty.mutable_chunks()->add_chunks()->set_text("");
  out = RequestFromProto(empty, context_, Tenant{});
  EXPECT_THAT(std::string(out.status().message()), HasSubstr("chunks[0].text"));
}

TEST_F(BlendConversionTest, APrefetchOfChunksCachesThemOnTheirOwn) {
  v1::Prefetch prefetch;
  prefetch.mutable_chunks()->add_chunks()->set_text("One.");
  prefetch.mutable_chunks()->add_chunks()->set_text("Two.");
  absl::StatusOr<scheduler::Request> out = PrefetchRequestFromProto(prefetch, context_, Tenant{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->kind, scheduler::RequestKind::kPrefill);
  EXPECT_EQ(out->chunks.size(), 2u);
  prefetch.set_blend(false);
  out = PrefetchRequestFromProto(prefetch, context_, Tenant{});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_TRUE(out->chunks.empty());
}

}  // namespace
}  // namespace strata::server
