// GenerateRequest.messages: rendered by the model's chat template and
// tokenized without added special tokens, with precise errors.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/grpc/request_conversion.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;

constexpr const char* kTemplate =
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}"
    "{{ raise_exception('system messages are not supported') }}{% endif %}"
    "[{{ m.role }}] {{ m.content }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant]{% endif %}";

class ChatMessagesConversionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tokenizer = engine::Tokenizer::Load(STRATA_SOURCE_DIR "/models/aidreams260K");
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
    tokenizer_ = *std::move(tokenizer);
    auto chat = engine::ChatTemplate::Create(kTemplate, {{"bos_token", "<s>"}});
    ASSERT_TRUE(chat.ok()) << chat.status();
    chat_ = *std::move(chat);
    context_.tokenizer = tokenizer_.get();
    context_.vocab_size = tokenizer_->vocab_size();
    context_.max_prompt_tokens = 200;
    context_.chat_template = chat_.get();
  }

  static v1::GenerateRequest Chat(std::vector<std::pair<std::string, std::string>> messages) {
    v1::GenerateRequest request;
    request.mutable_messages();  // the oneof case, even with no message
    for (const auto& [role, content] : messages) {
      v1::ChatMessage* m = request.mutable_messages()->add_messages();
      m->set_role(role);
      m->set_content(content);
    }
    return request;
  }

  std::unique_ptr<engine::Tokenizer> tokenizer_;
  std::unique_ptr<engine::ChatTemplate> chat_;
  ConversionContext context_;
};

TEST_F(ChatMessagesConversionTest, RendersThenTokenizesWithoutAddedSpecialTokens) {
  v1::GenerateRequest request = Chat({{"user", "Hi"}, {"assistant", "Hello"}, {"user", "Go"}});
  auto prompt = PromptFromRequest(request, context_);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  auto expected = tokenizer_->Encode("<s>[user] Hi\n[assistant] Hello\n[user] Go\n[assistant]",
                                     /*add_special_tokens=*/false);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(*prompt, *expected);
  // The template's "<s>" is the BOS token itself, once.
  ASSERT_FALSE(prompt->empty());
  EXPECT_EQ(prompt->front(), *tokenizer_->bos_id());
  EXPECT_NE((*prompt)[1], *tokenizer_->bos_id());

  request.mutable_messages()->set_add_generation_prompt(false);
  auto without = PromptFromRequest(request, context_);
  ASSERT_TRUE(without.ok());
  EXPECT_LT(without->size(), prompt->size());
}

TEST_F(ChatMessagesConversionTest, BadConversationsNameTheField) {
  auto error = [&](const v1::GenerateRequest& request) {
    auto prompt = PromptFromRequest(request, context_);
    EXPECT_EQ(prompt.status().code(), absl::StatusCode::kInvalidArgument) << prompt.status();
    return std::string(prompt.status().message());
  };
  EXPECT_EQ(error(Chat({})), "messages: is empty");
  EXPECT_EQ(error(Chat({{"user", "a"}, {"", "b"}})), "messages[1].role: is empty");
  EXPECT_EQ(error(Chat({{"system", "x"}, {"user", "a"}})),
            "messages: system messages are not supported");
  context_.max_prompt_tokens = 5;
  EXPECT_THAT(error(Chat({{"user", "a long enough question to pass five tokens"}})),
              HasSubstr("exceeds the limit of 5 tokens"));
}

TEST_F(ChatMessagesConversionTest, ModelWithoutTemplateIsAFailedPrecondition) {
  context_.chat_template = nullptr;
  auto prompt = PromptFromRequest(Chat({{"user", "Hi"}}), context_);
  EXPECT_EQ(prompt.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(prompt.status().message(), HasSubstr("messages: the model has no chat template"));
}

}  // namespace
}  // namespace strata::server
