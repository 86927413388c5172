#include "engine/sampling/sampling_params.h"

#include <cmath>
#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace strata::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int64_t kVocab = 1000;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// Expects INVALID_ARGUMENT whose message starts with the offending field.
void ExpectInvalid(const SamplingParams& params, const std::string& field) {
  const absl::Status status = ValidateSamplingParams(params, kVocab);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_THAT(std::string(status.message()), StartsWith(field + " ")) << status;
}

TEST(ValidateSamplingParamsTest, DefaultsAreValid) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{}, kVocab).ok());
}

TEST(ValidateSamplingParamsTest, BoundaryValuesAreValid) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.top_k = static_cast<int32_t>(kVocab);
  params.top_p = 1.0f;
  params.min_p = 1.0f;
  params.repetition_penalty = 0.01f;
  params.presence_penalty = -2.0f;
  params.frequency_penalty = 2.0f;
  params.max_tokens = 1;
  params.top_logprobs = kMaxTopLogprobs;
  params.stop_token_ids = {0, static_cast<TokenId>(kVocab - 1)};
  params.stop_strings = {"x"};
  EXPECT_TRUE(ValidateSamplingParams(params, kVocab).ok());
  params.top_p = 1e-6f;
  params.min_p = 0.0f;
  params.presence_penalty = 2.0f;
  params.frequency_penalty = -2.0f;
  params.top_logprobs = 0;
  EXPECT_TRUE(ValidateSamplingParams(params, kVocab).ok());
}

TEST(ValidateSamplingParamsTest, Temperature) {
  for (float bad : {-0.1f, kNaN, kInf}) {
    SamplingParams params;
    params.temperature = bad;
    ExpectInvalid(params, "temperature");
  }
}

TEST(ValidateSamplingParamsTest, TopP) {
  for (float bad : {0.0f, -0.5f, 1.01f, kNaN}) {
    SamplingParams params;
    params.top_p = bad;
    ExpectInvalid(params, "top_p");
  }
}

TEST(ValidateSamplingParamsTest, TopK) {
  for (int32_t bad : {-1, static_cast<int32_t>(kVocab + 1)}) {
    SamplingParams params;
    params.top_k = bad;
    ExpectInvalid(params, "top_k");
  }
}

TEST(ValidateSamplingParamsTest, MinP) {
  for (float bad : {-0.01f, 1.5f, kNaN}) {
    SamplingParams params;
    params.min_p = bad;
    ExpectInvalid(params, "min_p");
  }
}

TEST(ValidateSamplingParamsTest, RepetitionPenalty) {
  for (float bad : {0.0f, -1.0f, kNaN, kInf}) {
    SamplingParams params;
    params.repetition_penalty = bad;
    ExpectInvalid(params, "repetition_penalty");
  }
}

TEST(ValidateSamplingParamsTest, PresenceAndFrequencyPenalties) {
  for (float bad : {-2.01f, 2.01f, kNaN}) {
    SamplingParams presence;
    presence.presence_penalty = bad;
    ExpectInvalid(presence, "presence_penalty");
    SamplingParams frequency;
    frequency.frequency_penalty = bad;
    ExpectInvalid(frequency, "frequency_penalty");
  }
}

TEST(ValidateSamplingParamsTest, MaxTokens) {
  for (int32_t bad : {0, -5}) {
    SamplingParams params;
    params.max_tokens = bad;
    ExpectInvalid(params, "max_tokens");
  }
}

TEST(ValidateSamplingParamsTest, TopLogprobs) {
  for (int32_t bad : {-1, kMaxTopLogprobs + 1}) {
    SamplingParams params;
    params.top_logprobs = bad;
    ExpectInvalid(params, "top_logprobs");
  }
}

TEST(ValidateSamplingParamsTest, StopTokenIds) {
  for (TokenId bad : {-1, static_cast<TokenId>(kVocab)}) {
    SamplingParams params;
    params.stop_token_ids = {3, bad};
    ExpectInvalid(params, "stop_token_ids");
  }
}

TEST(ValidateSamplingParamsTest, EmptyStopString) {
  SamplingParams params;
  params.stop_strings = {"ok", ""};
  ExpectInvalid(params, "stop_strings");
  EXPECT_THAT(std::string(ValidateSamplingParams(params, kVocab).message()), HasSubstr("[1]"));
}

TEST(ValidateSamplingParamsTest, MessageShowsTheValue) {
  SamplingParams params;
  params.top_k = 5000;
  const absl::Status status = ValidateSamplingParams(params, kVocab);
  EXPECT_THAT(std::string(status.message()), HasSubstr("5000"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("1000"));
}

TEST(ValidateSamplingParamsTest, NonPositiveVocabIsRejected) {
  EXPECT_EQ(ValidateSamplingParams(SamplingParams{}, 0).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::engine
