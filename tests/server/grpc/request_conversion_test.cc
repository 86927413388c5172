#include "server/grpc/request_conversion.h"

#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/mocks/counting_tokenizer.h"

namespace strata::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class RequestConversionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<engine::Tokenizer>> tokenizer =
        engine::Tokenizer::Load(STRATA_SOURCE_DIR "/models/aidreams260K");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    context_.tokenizer = tokenizer_.get();
    context_.vocab_size = tokenizer_->vocab_size();
    context_.max_prompt_tokens = 100;
    context_.default_max_tokens = 12;
  }

  std::vector<engine::TokenId> Encode(const std::string& text, bool special) {
    absl::StatusOr<std::vector<engine::TokenId>> ids = tokenizer_->Encode(text, special);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.value_or(std::vector<engine::TokenId>{});
  }

  // The message of a conversion that must fail with INVALID_ARGUMENT.
  std::string PromptError(const v1::GenerateRequest& request) {
    absl::StatusOr<std::vector<engine::TokenId>> prompt = PromptFromRequest(request, context_);
    EXPECT_EQ(prompt.status().code(), absl::StatusCode::kInvalidArgument) << prompt.status();
    return std::string(prompt.status().message());
  }

  std::string SamplingError(const v1::SamplingParams& sampling) {
    absl::StatusOr<engine::SamplingParams> params = SamplingFromProto(sampling, context_);
    EXPECT_EQ(params.status().code(), absl::StatusCode::kInvalidArgument) << params.status();
    return std::string(params.status().message());
  }

  std::unique_ptr<engine::Tokenizer> tokenizer_;
  ConversionContext context_;
};

TEST_F(RequestConversionTest, TextIsTokenizedWithSpecialTokensByDefault) {
  v1::GenerateRequest request;
  request.set_text("Once upon a time");
  absl::StatusOr<std::vector<engine::TokenId>> prompt = PromptFromRequest(request, context_);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  EXPECT_EQ(*prompt, Encode("Once upon a time", true));
  ASSERT_TRUE(tokenizer_->bos_id().has_value());
  EXPECT_EQ(prompt->front(), *tokenizer_->bos_id());

  request.set_add_special_tokens(false);
  prompt = PromptFromRequest(request, context_);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  EXPECT_EQ(*prompt, Encode("Once upon a time", false));
}

TEST_F(RequestConversionTest, TokenIdsPassThroughAndAreChecked) {
  v1::GenerateRequest request;
  for (int id : {1, 5, 6, 7}) request.mutable_token_ids()->add_ids(id);
  absl::StatusOr<std::vector<engine::TokenId>> prompt = PromptFromRequest(request, context_);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  EXPECT_THAT(*prompt, ElementsAre(1, 5, 6, 7));

  request.mutable_token_ids()->add_ids(static_cast<int>(context_.vocab_size));
  EXPECT_THAT(PromptError(request), StartsWith("token_ids[4]: "));
  request.mutable_token_ids()->set_ids(0, -1);
  EXPECT_THAT(PromptError(request), StartsWith("token_ids[0]: -1 is outside the vocabulary"));
}

TEST_F(RequestConversionTest, ChunksConcatenateWithSpecialTokensOnlyAtTheStart) {
  v1::GenerateRequest request;
  request.mutable_chunks()->add_chunks()->set_text("Once upon");
  v1::TokenIds* ids = request.mutable_chunks()->add_chunks()->mutable_token_ids();
  ids->add_ids(10);
  ids->add_ids(11);
  request.mutable_chunks()->add_chunks()->set_text(" a time");
  absl::StatusOr<std::vector<engine::TokenId>> prompt = PromptFromRequest(request, context_);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  std::vector<engine::TokenId> expected = Encode("Once upon", true);
  expected.push_back(10);
  expected.push_back(11);
  for (engine::TokenId id : Encode(" a time", false)) expected.push_back(id);
  EXPECT_EQ(*prompt, expected);
}

TEST_F(RequestConversionTest, BadChunksNameTheChunk) {
  v1::GenerateRequest request;
  request.mutable_chunks();
  EXPECT_THAT(PromptError(request), StartsWith("input: chunks is empty"));

  request.mutable_chunks()->add_chunks()->set_text("hello");
  request.mutable_chunks()->add_chunks();
  EXPECT_THAT(PromptError(request), StartsWith("chunks[1]: is empty"));

  request.mutable_chunks()->mutable_chunks(1)->mutable_token_ids()->add_ids(3);
  request.mutable_chunks()->mutable_chunks(1)->mutable_token_ids()->add_ids(100000);
  EXPECT_THAT(PromptError(request), StartsWith("chunks[1].token_ids[1]: 100000 is outside"));

  request.mutable_chunks()->mutable_chunks(0)->set_text("");
  EXPECT_THAT(PromptError(request), StartsWith("chunks[0].text: is empty"));
}

TEST_F(RequestConversionTest, EmptyInputIsRejected) {
  v1::GenerateRequest request;
  EXPECT_THAT(PromptError(request), StartsWith("input: is required"));
  request.set_text("");
  EXPECT_THAT(PromptError(request), StartsWith("input: text is empty"));
  request.mutable_token_ids();
  EXPECT_THAT(PromptError(request), StartsWith("input: token_ids is empty"));
}

TEST_F(RequestConversionTest, OversizedPromptIsRejected) {
  v1::GenerateRequest request;
  for (int i = 0; i < 101; ++i) request.mutable_token_ids()->add_ids(5);
  EXPECT_THAT(PromptError(request),
              StartsWith("input: prompt of 101 tokens exceeds the limit of 100"));
  request.mutable_token_ids()->mutable_ids()->RemoveLast();
  EXPECT_TRUE(PromptFromRequest(request, context_).ok());
}

// A text over the byte limit is refused before the tokenizer sees it, in a
// text input or spread over chunks.
TEST_F(RequestConversionTest, OversizedTextIsRejectedBeforeTokenizing) {
  strata::testing::CountingTokenizer counting(*tokenizer_);
  context_.tokenizer = &counting;
  context_.max_prompt_bytes = 64;
  v1::GenerateRequest request;
  request.set_text(std::string(65, 'a'));
  EXPECT_EQ(PromptError(request), "input: text of 65 bytes exceeds the limit of 64 bytes");
  request.mutable_chunks()->add_chunks()->set_text(std::string(40, 'a'));
  request.mutable_chunks()->add_chunks()->mutable_token_ids()->add_ids(5);
  request.mutable_chunks()->add_chunks()->set_text(std::string(40, 'b'));
  EXPECT_EQ(PromptError(request), "input: text of 80 bytes exceeds the limit of 64 bytes");
  v1::Prefetch prefetch;
  prefetch.set_text(std::string(1 << 20, 'c'));
  EXPECT_EQ(PromptFromPrefetch(prefetch, context_).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(counting.encodes(), 0);
  // At the limit it is tokenized as usual.
  request.set_text(std::string(64, 'a'));
  EXPECT_TRUE(PromptFromRequest(request, context_).ok());
  EXPECT_EQ(counting.encodes(), 1);
}

// Chunks past the token limit are not tokenized: the work a request can
// cause is bounded by the limit, not by the message size.
TEST_F(RequestConversionTest, TokenizingStopsAtTheFirstChunkOverTheTokenLimit) {
  strata::testing::CountingTokenizer counting(*tokenizer_);
  context_.tokenizer = &counting;
  v1::GenerateRequest request;
  std::string long_text;
  for (int i = 0; i < 60; ++i) long_text += "Once upon a time ";
  ASSERT_GT(Encode(long_text, false).size(), 100u);
  for (int i = 0; i < 5; ++i) request.mutable_chunks()->add_chunks()->set_text(long_text);
  EXPECT_THAT(PromptError(request), StartsWith("input: prompt of "));
  EXPECT_EQ(counting.encodes(), 1);
}

TEST_F(RequestConversionTest, SamplingDefaultsAndValues) {
  v1::SamplingParams sampling;
  absl::StatusOr<engine::SamplingParams> params = SamplingFromProto(sampling, context_);
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->max_tokens, 12);
  EXPECT_EQ(params->temperature, 1.0f);
  EXPECT_FALSE(params->seed.has_value());

  sampling.set_temperature(0.0f);
  sampling.set_top_k(5);
  sampling.set_top_p(0.5f);
  sampling.set_seed(99);
  sampling.set_max_tokens(3);
  sampling.add_stop("\n\n");
  sampling.add_stop_token_ids(2);
  sampling.set_ignore_eos(true);
  sampling.set_logprobs(true);
  sampling.set_top_logprobs(2);
  params = SamplingFromProto(sampling, context_);
  ASSERT_TRUE(params.ok()) << params.status();
  EXPECT_EQ(params->temperature, 0.0f);
  EXPECT_EQ(params->top_k, 5);
  EXPECT_EQ(params->top_p, 0.5f);
  EXPECT_EQ(params->seed, 99u);
  EXPECT_EQ(params->max_tokens, 3);
  EXPECT_THAT(params->stop_strings, ElementsAre("\n\n"));
  EXPECT_THAT(params->stop_token_ids, ElementsAre(2));
  EXPECT_TRUE(params->ignore_eos);
  EXPECT_TRUE(params->return_logprob);
  EXPECT_EQ(params->top_logprobs, 2);
}

TEST_F(RequestConversionTest, BadSamplingNamesTheProtoField) {
  v1::SamplingParams sampling;
  sampling.set_temperature(-1.0f);
  EXPECT_THAT(SamplingError(sampling), StartsWith("sampling.temperature: must be"));
  sampling.set_temperature(std::numeric_limits<float>::quiet_NaN());
  EXPECT_THAT(SamplingError(sampling), StartsWith("sampling.temperature: "));
  sampling.clear_temperature();
  sampling.set_top_p(0.0f);
  EXPECT_THAT(SamplingError(sampling), StartsWith("sampling.top_p: "));
  sampling.clear_top_p();
  sampling.set_max_tokens(0);
  EXPECT_THAT(SamplingError(sampling), StartsWith("sampling.max_tokens: "));
  sampling.clear_max_tokens();
  sampling.add_stop("");
  EXPECT_THAT(SamplingError(sampling), StartsWith("sampling.stop: "));
  sampling.clear_stop();
  sampling.add_stop_token_ids(-3);
  EXPECT_THAT(SamplingError(sampling), StartsWith("sampling.stop_token_ids: "));
  sampling.clear_stop_token_ids();
  sampling.set_top_logprobs(21);
  EXPECT_THAT(SamplingError(sampling), StartsWith("sampling.top_logprobs: "));
}

TEST_F(RequestConversionTest, RequestTakesTheSaltFromTheTenantOnly) {
  v1::GenerateRequest request;
  request.set_text("Hello");
  request.set_session_id("s1");
  request.set_workflow_id("w1");
  request.set_agent_id("a1");
  request.add_next_agent_ids("a2");
  request.set_priority(3);
  absl::StatusOr<scheduler::Request> converted =
      RequestFromProto(request, context_, Tenant{"alice", "tenant:alice"});
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->kind, scheduler::RequestKind::kGenerate);
  EXPECT_EQ(converted->cache_salt, "tenant:alice");
  EXPECT_EQ(converted->session_id, "s1");
  EXPECT_EQ(converted->workflow_id, "w1");
  EXPECT_EQ(converted->agent_id, "a1");
  EXPECT_THAT(converted->next_agent_ids, ElementsAre("a2"));
  EXPECT_EQ(converted->priority, 3);
  EXPECT_EQ(converted->prompt_ids, Encode("Hello", true));
  EXPECT_FALSE(converted->deadline.has_value());

  EXPECT_EQ(converted->public_prefix_tokens, 0);

  // A prompt that starts with the configured shared prefix marks it public.
  context_.shared_prefix_ids = Encode("Hello", true);
  request.set_text("Hello world");
  converted = RequestFromProto(request, context_, Tenant{"alice", "tenant:alice"});
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->public_prefix_tokens,
            static_cast<int64_t>(context_.shared_prefix_ids.size()));
  request.set_text("Goodbye");
  converted = RequestFromProto(request, context_, Tenant{"alice", "tenant:alice"});
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->public_prefix_tokens, 0);

  request.mutable_sampling()->set_top_k(-1);
  EXPECT_EQ(RequestFromProto(request, context_, Tenant{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RequestConversionTest, SharedPrefixLength) {
  std::vector<engine::TokenId> prefix = {1, 2, 3};
  EXPECT_EQ(SharedPrefixLength(std::vector<engine::TokenId>{1, 2, 3, 4}, prefix), 3);
  EXPECT_EQ(SharedPrefixLength(std::vector<engine::TokenId>{1, 2, 3}, prefix), 3);
  EXPECT_EQ(SharedPrefixLength(std::vector<engine::TokenId>{1, 2}, prefix), 0);
  EXPECT_EQ(SharedPrefixLength(std::vector<engine::TokenId>{1, 9, 3, 4}, prefix), 0);
  EXPECT_EQ(SharedPrefixLength(std::vector<engine::TokenId>{1, 2}, {}), 0);
}

TEST_F(RequestConversionTest, FinishedEventsMapToReasonsAndStatuses) {
  using scheduler::FinishReason;
  EXPECT_EQ(FinishReasonToProto(FinishReason::kStop), v1::FINISH_REASON_STOP);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kLength), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kAbort), v1::FINISH_REASON_ABORT);
  EXPECT_EQ(FinishReasonToProto(FinishReason::kPrefilled), v1::FINISH_REASON_UNSPECIFIED);

  scheduler::TokenEvent event{.finished = true, .finish_reason = FinishReason::kStop};
  EXPECT_TRUE(StatusOfFinishedEvent(event).ok());
  event.finish_reason = FinishReason::kDeadline;
  EXPECT_EQ(StatusOfFinishedEvent(event).code(), absl::StatusCode::kDeadlineExceeded);
  event.finish_reason = FinishReason::kError;
  event.error = absl::ResourceExhaustedError("out of blocks");
  EXPECT_EQ(StatusOfFinishedEvent(event), absl::ResourceExhaustedError("out of blocks"));
  event.error = absl::OkStatus();
  EXPECT_EQ(StatusOfFinishedEvent(event).code(), absl::StatusCode::kInternal);
}

TEST_F(RequestConversionTest, UsageAndTokens) {
  scheduler::PromptUsage prompt{.prompt_tokens = 40, .cached_tokens_by_tier = {16, 8, 4}};
  v1::Usage usage;
  FillUsage(prompt, 5, -1, 0.25, &usage);
  EXPECT_EQ(usage.prompt_tokens(), 40);
  EXPECT_EQ(usage.cached_prompt_tokens(), 28);
  EXPECT_EQ(usage.cached_device_tokens(), 16);
  EXPECT_EQ(usage.cached_host_tokens(), 8);
  EXPECT_EQ(usage.cached_disk_tokens(), 4);
  EXPECT_EQ(usage.generated_tokens(), 5);
  EXPECT_EQ(usage.time_to_first_token_s(), 0.0);
  EXPECT_EQ(usage.total_time_s(), 0.25);

  engine::SamplingParams sampling;
  sampling.return_logprob = true;
  scheduler::TokenEvent event{
      .token_id = 7,
      .sampled = engine::SampledToken{
          .id = 7, .logprob = -0.5f, .top_logprobs = {{7, -0.5f}, {9, -1.5f}}}};
  google::protobuf::RepeatedPtrField<v1::GeneratedToken> tokens;
  AppendToken(event, sampling, *tokenizer_, &tokens);
  ASSERT_EQ(tokens.size(), 1);
  EXPECT_EQ(tokens[0].id(), 7);
  EXPECT_EQ(tokens[0].logprob(), -0.5f);
  ASSERT_EQ(tokens[0].top_logprobs_size(), 2);
  EXPECT_EQ(tokens[0].top_logprobs(1).token_id(), 9);
  EXPECT_EQ(tokens[0].top_logprobs(1).text(), *tokenizer_->Decode(std::vector<int>{9}, false));

  AppendToken(scheduler::TokenEvent{.finished = true}, sampling, *tokenizer_, &tokens);
  EXPECT_EQ(tokens.size(), 1);  // no token, nothing appended
}

}  // namespace
}  // namespace strata::server
