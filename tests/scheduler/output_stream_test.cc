#include "scheduler/output_stream.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace strata::scheduler {
namespace {

constexpr TokenId kEos = 2;

class OutputStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokenizer = engine::Tokenizer::Load(STRATA_SOURCE_DIR "/models/aidreams260K");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = std::move(*tokenizer);
  }

  std::vector<TokenId> Encode(const std::string& text) const {
    return tokenizer_->Encode(text, /*add_special_tokens=*/false).value();
  }

  // Feeds `output` as the scheduler would, the last event finished with
  // `last_reason` when set; returns the text the client saw and the events.
  std::string Feed(OutputStream& stream, const std::vector<TokenId>& output,
                   std::optional<FinishReason> last_reason, std::vector<TokenEvent>* events) {
    std::string text;
    for (size_t i = 0; i < output.size() && !stream.finished(); ++i) {
      TokenEvent event{.request_id = 1, .token_id = output[i]};
      if (last_reason && i + 1 == output.size()) {
        event.finished = true;
        event.finish_reason = *last_reason;
      }
      stream.Apply(event);
      text += event.text;
      events->push_back(event);
    }
    return text;
  }

  std::unique_ptr<engine::Tokenizer> tokenizer_;
};

TEST_F(OutputStreamTest, StopStringEndsTheStreamBeforeTheSchedulerKnows) {
  Request request{.id = 1, .prompt_ids = Encode("Once upon a time")};
  request.sampling.stop_strings = {"sat on"};
  OutputStream stream(*tokenizer_, request, {kEos});
  const std::vector<TokenId> output = Encode("the cat sat on the mat and slept");
  std::vector<TokenEvent> events;
  const std::string text = Feed(stream, output, std::nullopt, &events);
  EXPECT_EQ(text, " the cat ");
  ASSERT_TRUE(stream.finished());
  EXPECT_TRUE(stream.stopped_early());
  EXPECT_TRUE(events.back().finished);
  EXPECT_EQ(events.back().finish_reason, FinishReason::kStop);
  EXPECT_LT(events.size(), output.size());  // what followed was never applied
}

TEST_F(OutputStreamTest, SchedulerFinishFlushesTheTextHeldBack) {
  Request request{.id = 1, .prompt_ids = Encode("Once upon a time")};
  // " mat" could still become " matter": held back until the end.
  request.sampling.stop_strings = {" matter"};
  OutputStream stream(*tokenizer_, request, {kEos});
  const std::vector<TokenId> output = Encode("the cat sat on the mat");
  std::vector<TokenEvent> events;
  const std::string text = Feed(stream, output, FinishReason::kLength, &events);
  EXPECT_EQ(text, " the cat sat on the mat");
  EXPECT_TRUE(stream.finished());
  EXPECT_FALSE(stream.stopped_early());
  EXPECT_EQ(events.back().finish_reason, FinishReason::kLength);
}

TEST_F(OutputStreamTest, TokenLevelStopsAgreeWithTheScheduler) {
  Request request{.id = 1, .prompt_ids = Encode("Once upon a time")};
  request.sampling.max_tokens = 3;
  OutputStream stream(*tokenizer_, request, {kEos});
  std::vector<TokenId> output = Encode("the cat sat on the mat");
  ASSERT_GE(output.size(), 3u);
  output.resize(3);
  std::vector<TokenEvent> events;
  Feed(stream, output, FinishReason::kLength, &events);
  EXPECT_TRUE(stream.finished());
  EXPECT_FALSE(stream.stopped_early());
  EXPECT_EQ(events.back().finish_reason, FinishReason::kLength);
  // The scheduler's own checker drops the stop strings only.
  engine::SamplingParams params;
  params.stop_strings = {"x"};
  params.max_tokens = 9;
  const engine::SamplingParams token_level = TokenLevelStops(params);
  EXPECT_TRUE(token_level.stop_strings.empty());
  EXPECT_EQ(token_level.max_tokens, 9);
}

TEST_F(OutputStreamTest, AFinishWithoutATokenAddsNoText) {
  Request request{.id = 1, .prompt_ids = Encode("Once upon a time")};
  request.sampling.stop_strings = {" matter"};
  OutputStream stream(*tokenizer_, request, {kEos});
  std::vector<TokenEvent> events;
  const std::string text = Feed(stream, Encode("the mat"), std::nullopt, &events);
  EXPECT_EQ(text, " the");  // " mat" is held back
  TokenEvent abort{.request_id = 1, .finished = true, .finish_reason = FinishReason::kAbort};
  stream.Apply(abort);
  EXPECT_TRUE(abort.text.empty());
  EXPECT_TRUE(stream.finished());
  EXPECT_FALSE(stream.stopped_early());
}

}  // namespace
}  // namespace strata::scheduler
