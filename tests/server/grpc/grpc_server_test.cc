// The gRPC service end to end, in process: a real channel and stub against
// GrpcServer over an EngineService on the embedded model (CPU backend).
#include "server/grpc/grpc_server.h"

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/grpc/grpc_test_util.h"

namespace strata::server {
namespace {

using testing::GenerateAll;
using ::testing::HasSubstr;
using testing::MakeContext;
using ::testing::StartsWith;
using testing::StreamResult;
using testing::TestServer;
using testing::TextRequest;

constexpr char kPrompt[] = "Once upon a time, there was a little girl named Lily.";

// Runs `request` on the engine directly, as the server would convert it.
std::vector<int32_t> EngineTokens(scheduler::EngineService& engine, scheduler::Request request) {
  auto tokens = std::make_shared<std::vector<int32_t>>();
  auto done = std::make_shared<std::promise<void>>();
  absl::StatusOr<scheduler::RequestId> id =
      engine.Submit(std::move(request), [tokens, done](const scheduler::TokenEvent& event) {
        if (event.token_id) tokens->push_back(*event.token_id);
        if (event.finished) done->set_value();
      });
  EXPECT_TRUE(id.ok()) << id.status();
  if (id.ok()) done->get_future().wait();
  return *tokens;
}

class GrpcServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = TestServer::Start();
    ASSERT_NE(server_, nullptr);
  }

  grpc::Status Complete(const v1::GenerateRequest& request, v1::CompleteResponse* response) {
    return server_->stub().Complete(MakeContext().get(), request, response);
  }

  std::vector<int32_t> Encode(const std::string& text) {
    return server_->tokenizer().Encode(text, true).value();
  }

  std::unique_ptr<TestServer> server_;
};

TEST_F(GrpcServerTest, StreamMatchesCompleteAndTheEngine) {
  v1::GenerateRequest request = TextRequest(kPrompt, 24);
  request.set_request_id("client-7");
  StreamResult stream = GenerateAll(server_->stub(), request);
  ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
  ASSERT_FALSE(stream.messages.empty());
  ASSERT_FALSE(stream.token_ids.empty());
  // Every message carries the server's id; only the last has `final`.
  const std::string id = stream.messages.front().request_id();
  EXPECT_FALSE(id.empty());
  for (size_t i = 0; i < stream.messages.size(); ++i) {
    EXPECT_EQ(stream.messages[i].request_id(), id);
    EXPECT_EQ(stream.messages[i].has_final(), i + 1 == stream.messages.size());
  }
  const v1::FinalInfo& final_info = stream.final_info;
  EXPECT_THAT(final_info.finish_reason(),
              ::testing::AnyOf(v1::FINISH_REASON_LENGTH, v1::FINISH_REASON_STOP));
  EXPECT_EQ(final_info.usage().prompt_tokens(), static_cast<int64_t>(Encode(kPrompt).size()));
  EXPECT_EQ(final_info.usage().generated_tokens(), static_cast<int64_t>(stream.token_ids.size()));
  EXPECT_GT(final_info.usage().time_to_first_token_s(), 0.0);
  EXPECT_GE(final_info.usage().total_time_s(), final_info.usage().time_to_first_token_s());
  // The deltas are the continuation of the prompt's text.
  std::vector<int32_t> all_ids = Encode(kPrompt);
  all_ids.insert(all_ids.end(), stream.token_ids.begin(), stream.token_ids.end());
  EXPECT_THAT(server_->tokenizer().Decode(all_ids, true).value(), ::testing::EndsWith(stream.text));
  EXPECT_FALSE(stream.text.empty());

  v1::CompleteResponse complete;
  grpc::Status status = Complete(request, &complete);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(complete.text(), stream.text);
  std::vector<int32_t> complete_ids;
  for (const v1::GeneratedToken& token : complete.tokens()) complete_ids.push_back(token.id());
  EXPECT_EQ(complete_ids, stream.token_ids);
  EXPECT_EQ(complete.final().finish_reason(), final_info.finish_reason());
  EXPECT_NE(complete.request_id(), id);

  scheduler::Request direct;
  direct.prompt_ids = Encode(kPrompt);
  direct.sampling.max_tokens = 24;
  direct.sampling.seed = 7;
  direct.sampling.temperature = 0.8f;
  EXPECT_EQ(EngineTokens(server_->engine(), direct), stream.token_ids);
}

TEST_F(GrpcServerTest, TokenIdAndChunkInputsMatchText) {
  const std::vector<int32_t> ids = Encode(kPrompt);
  StreamResult from_text = GenerateAll(server_->stub(), TextRequest(kPrompt, 12));
  ASSERT_TRUE(from_text.status.ok()) << from_text.status.error_message();

  v1::GenerateRequest by_ids = TextRequest(kPrompt, 12);
  for (int32_t id : ids) by_ids.mutable_token_ids()->add_ids(id);
  StreamResult from_ids = GenerateAll(server_->stub(), by_ids);
  ASSERT_TRUE(from_ids.status.ok()) << from_ids.status.error_message();
  EXPECT_EQ(from_ids.token_ids, from_text.token_ids);

  // The same ids split into a text chunk (which gets the BOS) and a token
  // chunk with the rest.
  const std::string head = "Once upon a time,";
  const std::vector<int32_t> head_ids = Encode(head);
  ASSERT_TRUE(std::equal(head_ids.begin(), head_ids.end(), ids.begin()));
  v1::GenerateRequest by_chunks = TextRequest(kPrompt, 12);
  by_chunks.mutable_chunks()->add_chunks()->set_text(head);
  v1::TokenIds* rest = by_chunks.mutable_chunks()->add_chunks()->mutable_token_ids();
  for (size_t i = head_ids.size(); i < ids.size(); ++i) rest->add_ids(ids[i]);
  StreamResult from_chunks = GenerateAll(server_->stub(), by_chunks);
  ASSERT_TRUE(from_chunks.status.ok()) << from_chunks.status.error_message();
  EXPECT_EQ(from_chunks.token_ids, from_text.token_ids);
  EXPECT_EQ(from_chunks.final_info.usage().prompt_tokens(), static_cast<int64_t>(ids.size()));
}

TEST_F(GrpcServerTest, BadInputIsInvalidArgumentNamingTheField) {
  struct Case {
    std::string name;
    v1::GenerateRequest request;
    std::string prefix;
  };
  std::vector<Case> cases;
  cases.push_back({"no input", v1::GenerateRequest(), "input: "});
  cases.push_back({"empty text", TextRequest("", 4), "input: "});
  v1::GenerateRequest bad_id = TextRequest("", 4);
  for (int id : {1, 5, 6, 9999}) bad_id.mutable_token_ids()->add_ids(id);
  cases.push_back({"unknown id", bad_id, "token_ids[3]: "});
  v1::GenerateRequest oversized = TextRequest("", 4);
  for (int i = 0; i < 300; ++i) oversized.mutable_token_ids()->add_ids(5);
  cases.push_back({"oversized", oversized, "input: prompt of 300 tokens exceeds"});
  v1::GenerateRequest hot = TextRequest(kPrompt, 4);
  hot.mutable_sampling()->set_temperature(-0.5f);
  cases.push_back({"temperature", hot, "sampling.temperature: "});
  v1::GenerateRequest top_p = TextRequest(kPrompt, 4);
  top_p.mutable_sampling()->set_top_p(1.5f);
  cases.push_back({"top_p", top_p, "sampling.top_p: "});
  v1::GenerateRequest bad_chunk = TextRequest("", 4);
  bad_chunk.mutable_chunks()->add_chunks();
  cases.push_back({"chunk", bad_chunk, "chunks[0]: "});

  for (const Case& c : cases) {
    StreamResult stream = GenerateAll(server_->stub(), c.request);
    EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(stream.status.error_message(), StartsWith(c.prefix)) << c.name;
    EXPECT_TRUE(stream.messages.empty()) << c.name;
    v1::CompleteResponse complete;
    grpc::Status status = Complete(c.request, &complete);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_THAT(status.error_message(), StartsWith(c.prefix)) << c.name;
  }
  EXPECT_EQ(server_->engine().num_in_flight(), 0);
}

TEST_F(GrpcServerTest, StopTokenAndLogprobs) {
  v1::GenerateRequest request = TextRequest(kPrompt, 8);
  request.mutable_sampling()->set_logprobs(true);
  request.mutable_sampling()->set_top_logprobs(3);
  request.mutable_sampling()->set_ignore_eos(true);
  v1::CompleteResponse first;
  ASSERT_TRUE(Complete(request, &first).ok());
  ASSERT_EQ(first.tokens_size(), 8);
  for (const v1::GeneratedToken& token : first.tokens()) {
    EXPECT_LE(token.logprob(), 0.0f);
    ASSERT_EQ(token.top_logprobs_size(), 3);
    EXPECT_GE(token.top_logprobs(0).logprob(), token.top_logprobs(2).logprob());
  }
  // Stopping on the third token ends the same seeded run there.
  request.mutable_sampling()->add_stop_token_ids(first.tokens(2).id());
  v1::CompleteResponse stopped;
  ASSERT_TRUE(Complete(request, &stopped).ok());
  EXPECT_EQ(stopped.final().finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_LE(stopped.tokens_size(), 3);
  EXPECT_EQ(stopped.tokens(stopped.tokens_size() - 1).id(), first.tokens(2).id());
}

TEST_F(GrpcServerTest, TokenizeDetokenizeRoundTrip) {
  v1::TokenizeRequest tokenize;
  tokenize.set_text(kPrompt);
  v1::TokenizeResponse tokens;
  ASSERT_TRUE(server_->stub().Tokenize(MakeContext().get(), tokenize, &tokens).ok());
  EXPECT_EQ(std::vector<int32_t>(tokens.ids().begin(), tokens.ids().end()), Encode(kPrompt));
  ASSERT_EQ(tokens.pieces_size(), tokens.ids_size());
  EXPECT_EQ(tokens.pieces(1), server_->tokenizer().IdToToken(tokens.ids(1)).value());

  v1::DetokenizeRequest detokenize;
  *detokenize.mutable_ids() = tokens.ids();
  detokenize.set_skip_special_tokens(true);
  v1::DetokenizeResponse text;
  ASSERT_TRUE(server_->stub().Detokenize(MakeContext().get(), detokenize, &text).ok());
  EXPECT_EQ(text.text(), kPrompt);

  detokenize.add_ids(100000);
  grpc::Status bad = server_->stub().Detokenize(MakeContext().get(), detokenize, &text);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(bad.error_message(), StartsWith(absl::StrCat("ids[", tokens.ids_size(), "]: ")));
}

// Ids that stop mid-character (byte-fallback tokens of UTF-8 lead bytes)
// decode to bytes that are not UTF-8; a proto3 string must be, or clients
// fail the call with INTERNAL. The text gets U+FFFD, the raw bytes stay.
TEST_F(GrpcServerTest, DetokenizeOfPartialCharactersIsValidUtf8WithRawBytes) {
  const engine::Tokenizer& tokenizer = server_->tokenizer();
  const int32_t lead = tokenizer.TokenToId("<0xC3>").value();  // id 198 on this model
  v1::DetokenizeRequest detokenize;
  detokenize.add_ids(lead);
  v1::DetokenizeResponse lone;
  grpc::Status status = server_->stub().Detokenize(MakeContext().get(), detokenize, &lone);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(lone.text(), "\xEF\xBF\xBD");
  EXPECT_EQ(lone.raw(), "\xC3");

  // "a" then the first two bytes of U+2603 (E2 98 83): one U+FFFD for the
  // cut-off character, as Generate's final delta has it.
  detokenize.clear_ids();
  detokenize.add_ids(tokenizer.TokenToId("a").value());
  detokenize.add_ids(tokenizer.TokenToId("<0xE2>").value());
  detokenize.add_ids(tokenizer.TokenToId("<0x98>").value());
  v1::DetokenizeResponse cut;
  status = server_->stub().Detokenize(MakeContext().get(), detokenize, &cut);
  ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  EXPECT_EQ(cut.text(), "a\xEF\xBF\xBD");
  EXPECT_EQ(cut.raw(), "a\xE2\x98");

  // Every lead byte 0xC2..0xF4 alone: all succeed.
  for (int byte = 0xC2; byte <= 0xF4; ++byte) {
    v1::DetokenizeRequest one;
    one.add_ids(tokenizer.TokenToId(absl::StrFormat("<0x%02X>", byte)).value());
    v1::DetokenizeResponse reply;
    EXPECT_TRUE(server_->stub().Detokenize(MakeContext().get(), one, &reply).ok()) << byte;
  }
}

TEST_F(GrpcServerTest, ModelInfo) {
  v1::ModelInfo info;
  ASSERT_TRUE(
      server_->stub().GetModelInfo(MakeContext().get(), v1::GetModelInfoRequest(), &info).ok());
  EXPECT_EQ(info.name(), "aidreams260K");
  EXPECT_EQ(info.architecture(), "LlamaForCausalLM");
  EXPECT_EQ(info.vocab_size(), 512);
  EXPECT_EQ(info.max_context_tokens(), 128);
  EXPECT_EQ(info.num_layers(), 4);
  EXPECT_EQ(info.hidden_size(), 64);
  EXPECT_EQ(info.num_attention_heads(), 4);
  EXPECT_EQ(info.num_kv_heads(), 4);
  EXPECT_EQ(info.head_dim(), 16);
  EXPECT_EQ(info.backend(), "cpu");
  EXPECT_EQ(info.kv_block_size(), 16);
  EXPECT_EQ(info.kv_device_blocks(), 256);
  EXPECT_THAT(info.eos_token_ids(), ::testing::ElementsAre(2));
  EXPECT_EQ(info.max_prompt_tokens(), 127);
  EXPECT_EQ(info.bos_token_id(), 1);
  EXPECT_EQ(info.model_fingerprint(), "0123abcd");
}

// GetModelInfo's max_prompt_tokens is what the service accepts and the
// engine can run: never above the context less one, nor the KV arena.
TEST(GrpcServerLimitsTest, ModelInfoReportsThePromptLimitTheEngineCanRun) {
  for (const auto& [options, expected] :
       std::vector<std::pair<testing::TestServerOptions, int64_t>>{
           {{.kv_blocks = 4}, 63},              // 4 blocks of 16, less one token
           {{.max_prompt_tokens = 1000}, 127},  // the context is 128 tokens
           {{.max_prompt_tokens = 50}, 50}}) {
    std::unique_ptr<TestServer> server = TestServer::Start(options);
    ASSERT_NE(server, nullptr);
    v1::ModelInfo info;
    ASSERT_TRUE(
        server->stub().GetModelInfo(MakeContext().get(), v1::GetModelInfoRequest(), &info).ok());
    EXPECT_EQ(info.max_prompt_tokens(), expected);
    // A prompt of the reported length runs; one token more is refused with
    // INVALID_ARGUMENT naming the limit.
    v1::GenerateRequest request = TextRequest("", 1);
    for (int64_t i = 0; i < expected; ++i) request.mutable_token_ids()->add_ids(5);
    v1::CompleteResponse response;
    grpc::Status at_limit = server->stub().Complete(MakeContext().get(), request, &response);
    EXPECT_TRUE(at_limit.ok()) << expected << ": " << at_limit.error_message();
    request.mutable_token_ids()->add_ids(5);
    grpc::Status over = server->stub().Complete(MakeContext().get(), request, &response);
    EXPECT_EQ(over.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << over.error_message();
    EXPECT_THAT(over.error_message(), HasSubstr(absl::StrCat("limit of ", expected, " tokens")));
  }
}

// A text far over what any prompt within the token limit could be is
// refused by its byte length, for Generate, Complete, prefetch and Tokenize.
TEST_F(GrpcServerTest, OversizedTextIsRefusedByItsLength) {
  const std::string huge(4 << 20, 'a');
  StreamResult stream = GenerateAll(server_->stub(), TextRequest(huge, 4));
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(stream.status.error_message(),
              StartsWith("input: text of 4194304 bytes exceeds the limit of "));
  v1::CompleteResponse complete;
  EXPECT_THAT(Complete(TextRequest(huge, 4), &complete).error_message(), HasSubstr(" bytes"));
  v1::CacheControlRequest prefetch;
  prefetch.mutable_prefetch()->set_text(huge);
  v1::CacheControlResponse prefetched;
  grpc::Status status = server_->stub().CacheControl(MakeContext().get(), prefetch, &prefetched);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr(" bytes"));
  v1::TokenizeRequest tokenize;
  tokenize.set_text(huge);
  v1::TokenizeResponse tokens;
  status = server_->stub().Tokenize(MakeContext().get(), tokenize, &tokens);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("text: 4194304 bytes exceeds the limit of "));
  // The limit is the token limit times the longest vocabulary entry: a
  // prompt of 127 of the longest tokens is within it.
  const int64_t longest = LongestTokenBytes(server_->tokenizer());
  EXPECT_GT(longest, 1);
  tokenize.set_text(std::string(static_cast<size_t>(127 * longest), 'a'));
  EXPECT_TRUE(server_->stub().Tokenize(MakeContext().get(), tokenize, &tokens).ok());
}

TEST_F(GrpcServerTest, CacheControlPrefetchReleaseAndStats) {
  const std::string context = std::string(kPrompt) + " She loved to play outside in the sun.";
  const int64_t context_tokens = static_cast<int64_t>(Encode(context).size());
  ASSERT_GE(context_tokens, 33);  // at least two full blocks

  v1::CacheControlRequest prefetch;
  prefetch.mutable_prefetch()->set_text(context);
  prefetch.mutable_prefetch()->set_session_id("s1");
  prefetch.mutable_prefetch()->set_pin(true);
  v1::CacheControlResponse response;
  grpc::Status status = server_->stub().CacheControl(MakeContext().get(), prefetch, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.context_tokens(), context_tokens);
  EXPECT_EQ(response.cached_tokens_before(), 0);
  EXPECT_EQ(response.stats().block_size(), 16);
  EXPECT_EQ(response.stats().tiers_size(), 3);

  // A request that starts with the context hits its blocks.
  v1::CompleteResponse complete;
  ASSERT_TRUE(Complete(TextRequest(context + " One day", 4), &complete).ok());
  EXPECT_GE(complete.final().usage().cached_prompt_tokens(), (context_tokens - 1) / 16 * 16);
  EXPECT_EQ(complete.final().usage().cached_device_tokens(),
            complete.final().usage().cached_prompt_tokens());

  // Prefetching again finds it cached.
  response.Clear();
  ASSERT_TRUE(server_->stub().CacheControl(MakeContext().get(), prefetch, &response).ok());
  EXPECT_GT(response.cached_tokens_before(), 0);

  v1::CacheControlRequest release;
  release.mutable_release_session()->set_session_id("s1");
  response.Clear();
  status = server_->stub().CacheControl(MakeContext().get(), release, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(response.has_stats());
  release.mutable_release_session()->set_session_id("no-such-session");
  status = server_->stub().CacheControl(MakeContext().get(), release, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message();
  release.mutable_release_session()->set_session_id("");
  status = server_->stub().CacheControl(MakeContext().get(), release, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::CacheControlRequest stats;
  stats.mutable_get_stats();
  response.Clear();
  ASSERT_TRUE(server_->stub().CacheControl(MakeContext().get(), stats, &response).ok());
  EXPECT_GT(response.stats().query_tokens(), 0);
  EXPECT_GT(response.stats().hit_tokens(), 0);
  EXPECT_EQ(response.stats().tiers(0).tier(), "device");
  EXPECT_GT(response.stats().tiers(0).hit_tokens(), 0);
  EXPECT_EQ(response.stats().tiers(0).blocks_used() + response.stats().tiers(0).blocks_cached() +
                response.stats().tiers(0).blocks_free(),
            256);

  v1::CacheControlRequest empty;
  status = server_->stub().CacheControl(MakeContext().get(), empty, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("action: "));
  empty.mutable_prefetch();
  status = server_->stub().CacheControl(MakeContext().get(), empty, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), StartsWith("input: "));
}

TEST_F(GrpcServerTest, ReaderThatFallsBehindGetsEveryToken) {
  v1::GenerateRequest request = TextRequest(kPrompt, 60);
  request.mutable_sampling()->set_ignore_eos(true);
  v1::CompleteResponse complete;
  ASSERT_TRUE(Complete(request, &complete).ok());

  // Read nothing until the engine is done: deltas queue (merged while a
  // write is in flight) and none is lost.
  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  auto reader = server_->stub().Generate(context.get(), request);
  ASSERT_TRUE(server_->engine().WaitIdle(std::chrono::seconds(30)));
  std::string text;
  std::vector<int32_t> ids;
  v1::GenerateResponse message;
  int messages = 0;
  while (reader->Read(&message)) {
    ++messages;
    text += message.text();
    for (const v1::GeneratedToken& token : message.tokens()) ids.push_back(token.id());
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(text, complete.text());
  EXPECT_EQ(static_cast<int>(ids.size()), complete.tokens_size());
  EXPECT_EQ(static_cast<int64_t>(ids.size()), message.final().usage().generated_tokens());
  EXPECT_LE(messages, static_cast<int>(ids.size()));
}

TEST_F(GrpcServerTest, ManyConcurrentStreams) {
  constexpr int kStreams = 48;
  std::vector<StreamResult> results(kStreams);
  std::vector<std::thread> clients;
  for (int i = 0; i < kStreams; ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateRequest request =
          TextRequest(absl::StrCat(kPrompt, " Story number ", i, "."), 8 + i % 16, 100 + i);
      results[i] = GenerateAll(server_->stub(), request);
    });
  }
  for (std::thread& client : clients) client.join();
  for (int i = 0; i < kStreams; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(results[i].status.ok()) << results[i].status.error_message();
    EXPECT_FALSE(results[i].token_ids.empty());
    EXPECT_LE(static_cast<int>(results[i].token_ids.size()), 8 + i % 16);
    EXPECT_EQ(results[i].final_info.usage().generated_tokens(),
              static_cast<int64_t>(results[i].token_ids.size()));
  }
  EXPECT_TRUE(server_->engine().WaitIdle(std::chrono::seconds(30)));
  // All ran under one engine: their shared prompt prefix was reused.
  v1::CacheControlRequest stats;
  stats.mutable_get_stats();
  v1::CacheControlResponse response;
  ASSERT_TRUE(server_->stub().CacheControl(MakeContext().get(), stats, &response).ok());
  EXPECT_GT(response.stats().hit_tokens(), 0);
}

}  // namespace
}  // namespace strata::server
