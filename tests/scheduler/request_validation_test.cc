#include "scheduler/request_validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

using ::testing::HasSubstr;

RequestLimits Limits() {
  return RequestLimits{.vocab_size = 32000,
                       .max_model_len = 128,
                       .max_prompt_tokens = 0,
                       .block_size = 16,
                       .num_device_blocks = 4};
}

Request MakeRequest(int prompt_len) {
  Request request;
  for (int i = 0; i < prompt_len; ++i) request.prompt_ids.push_back(100 + i);
  return request;
}

std::string Message(const absl::Status& status) { return std::string(status.message()); }

TEST(RequestValidationTest, AcceptsAnOrdinaryRequest) {
  EXPECT_TRUE(ValidateRequest(MakeRequest(20), Limits()).ok());
}

TEST(RequestValidationTest, EmptyPromptIsInvalid) {
  absl::Status status = ValidateRequest(MakeRequest(0), Limits());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Message(status), "prompt is empty");
}

TEST(RequestValidationTest, TokenOutsideTheVocabularyIsNamedWithItsPosition) {
  for (TokenId bad : {70000, 32000, -1}) {
    Request request = MakeRequest(6);
    request.prompt_ids[3] = bad;
    absl::Status status = ValidateRequest(request, Limits());
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(Message(status), "prompt token id " + std::to_string(bad) +
                                   " at position 3 is outside the vocabulary [0, 32000)");
  }
  Request edge = MakeRequest(3);
  edge.prompt_ids = {0, 31999};
  EXPECT_TRUE(ValidateRequest(edge, Limits()).ok());
}

TEST(RequestValidationTest, PromptOverMaxPromptTokensIsInvalid) {
  RequestLimits limits = Limits();
  limits.max_prompt_tokens = 30;
  EXPECT_TRUE(ValidateRequest(MakeRequest(30), limits).ok());
  absl::Status status = ValidateRequest(MakeRequest(31), limits);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("max_prompt_tokens (30)"));
  EXPECT_THAT(Message(status), HasSubstr("31"));
}

TEST(RequestValidationTest, PromptLeavingNoRoomToGenerateIsInvalid) {
  RequestLimits limits = Limits();
  limits.num_device_blocks = 100;
  // Without max_prompt_tokens the context less one is the limit.
  EXPECT_TRUE(ValidateRequest(MakeRequest(127), limits).ok());
  absl::Status status = ValidateRequest(MakeRequest(128), limits);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), HasSubstr("context of 128 tokens"));
  // A max_prompt_tokens above the context does not lift it.
  limits.max_prompt_tokens = 500;
  EXPECT_EQ(ValidateRequest(MakeRequest(200), limits).code(), absl::StatusCode::kInvalidArgument);
}

TEST(RequestValidationTest, PromptNeedingMoreBlocksThanTheDeviceHoldsIsResourceExhausted) {
  // 4 blocks of 16: the prompt and its first sampled token need 63 + 1.
  EXPECT_TRUE(ValidateRequest(MakeRequest(63), Limits()).ok());
  absl::Status status = ValidateRequest(MakeRequest(64), Limits());
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(Message(status), HasSubstr("needs 5 KV blocks; the cache holds 4"));
}

TEST(RequestValidationTest, BadSamplingValuesNameTheSamplingField) {
  Request hot = MakeRequest(4);
  hot.sampling.temperature = -0.5f;
  absl::Status status = ValidateRequest(hot, Limits());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Message(status), ::testing::StartsWith("sampling.temperature"));

  Request nucleus = MakeRequest(4);
  nucleus.sampling.top_p = 0;
  EXPECT_THAT(Message(ValidateRequest(nucleus, Limits())), ::testing::StartsWith("sampling.top_p"));

  Request stop = MakeRequest(4);
  stop.sampling.stop_token_ids = {32000};
  EXPECT_THAT(Message(ValidateRequest(stop, Limits())),
              ::testing::StartsWith("sampling.stop_token_ids"));

  Request none = MakeRequest(4);
  none.sampling.max_tokens = 0;
  EXPECT_THAT(Message(ValidateRequest(none, Limits())),
              ::testing::StartsWith("sampling.max_tokens"));
}

TEST(RequestValidationTest, ThePromptIsCheckedBeforeSampling) {
  Request both = MakeRequest(0);
  both.sampling.temperature = -1;
  EXPECT_EQ(Message(ValidateRequest(both, Limits())), "prompt is empty");
}

}  // namespace
}  // namespace strata::scheduler
