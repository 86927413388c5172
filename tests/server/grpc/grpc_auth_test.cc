// Bearer-token authentication and per-tenant cache isolation over a real
// channel, plus the shared public prefix that every tenant may reuse.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/server/grpc/grpc_test_util.h"

namespace strata::server {
namespace {

using testing::GenerateAll;
using testing::MakeContext;
using testing::TestServer;
using testing::TestServerOptions;
using testing::TextRequest;

constexpr char kAliceToken[] = "alice-secret-token";
constexpr char kBobToken[] = "bob-secret-token";
constexpr char kPrompt[] =
    "Once upon a time, there was a little girl named Lily. She loved to play outside.";
constexpr char kSystem[] =
    "You are a kind storyteller. You tell short happy stories about animals and children.";

std::unique_ptr<TestServer> StartWithAuth(const std::string& shared_prefix = "") {
  TestServerOptions options;
  options.grpc.auth_tokens = {{kAliceToken, "alice"}, {kBobToken, "bob"}};
  options.grpc.shared_prefix = shared_prefix;
  return TestServer::Start(options);
}

// The cached prompt tokens a Complete call reports, or -1 on failure.
int64_t CachedTokens(TestServer& server, const std::string& text, const std::string& token) {
  v1::CompleteResponse response;
  grpc::Status status =
      server.stub().Complete(MakeContext(token).get(), TextRequest(text, 2), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  if (!status.ok()) return -1;
  return response.final().usage().cached_prompt_tokens();
}

TEST(GrpcAuthTest, EveryStrataCallNeedsAValidToken) {
  std::unique_ptr<TestServer> server = StartWithAuth();
  ASSERT_NE(server, nullptr);
  v1::Strata::Stub& stub = server->stub();
  for (const std::string& token : {std::string(), std::string("wrong-token")}) {
    SCOPED_TRACE(token.empty() ? "no token" : "wrong token");
    testing::StreamResult stream = GenerateAll(stub, TextRequest(kPrompt, 2), token);
    EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    v1::CompleteResponse complete;
    EXPECT_EQ(
        stub.Complete(MakeContext(token).get(), TextRequest(kPrompt, 2), &complete).error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
    v1::TokenizeRequest tokenize;
    tokenize.set_text("hello");
    v1::TokenizeResponse tokens;
    EXPECT_EQ(stub.Tokenize(MakeContext(token).get(), tokenize, &tokens).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    v1::DetokenizeRequest detokenize;
    v1::DetokenizeResponse text;
    EXPECT_EQ(stub.Detokenize(MakeContext(token).get(), detokenize, &text).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    v1::ModelInfo info;
    EXPECT_EQ(
        stub.GetModelInfo(MakeContext(token).get(), v1::GetModelInfoRequest(), &info).error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
    v1::CacheControlRequest stats;
    stats.mutable_get_stats();
    v1::CacheControlResponse response;
    EXPECT_EQ(stub.CacheControl(MakeContext(token).get(), stats, &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(server->engine().num_in_flight(), 0);

  // The right token passes.
  testing::StreamResult stream = GenerateAll(stub, TextRequest(kPrompt, 2), kAliceToken);
  EXPECT_TRUE(stream.status.ok()) << stream.status.error_message();
  v1::ModelInfo info;
  EXPECT_TRUE(
      stub.GetModelInfo(MakeContext(kBobToken).get(), v1::GetModelInfoRequest(), &info).ok());

  // Health stays open without a token.
  auto health = grpc::health::v1::Health::NewStub(server->channel());
  grpc::health::v1::HealthCheckResponse serving;
  ASSERT_TRUE(
      health->Check(MakeContext().get(), grpc::health::v1::HealthCheckRequest(), &serving).ok());
  EXPECT_EQ(serving.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// The cache statistics cover every tenant: with authentication on, only the
// admin token reads them; a tenant's prefetch reply carries the block size
// and its own context's counts, not the global figures.
TEST(GrpcAuthTest, GlobalCacheStatsNeedTheAdminToken) {
  constexpr char kAdminToken[] = "admin-secret-token";
  TestServerOptions options;
  options.grpc.auth_tokens = {{kAliceToken, "alice"}, {kBobToken, "bob"}};
  options.grpc.admin_token = kAdminToken;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);
  v1::Strata::Stub& stub = server->stub();
  ASSERT_EQ(CachedTokens(*server, kPrompt, kAliceToken), 0);  // some traffic to count

  v1::CacheControlRequest stats;
  stats.mutable_get_stats();
  v1::CacheControlResponse response;
  grpc::Status denied = stub.CacheControl(MakeContext(kBobToken).get(), stats, &response);
  EXPECT_EQ(denied.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(denied.error_message(), ::testing::HasSubstr("admin token"));
  grpc::Status allowed = stub.CacheControl(MakeContext(kAdminToken).get(), stats, &response);
  ASSERT_TRUE(allowed.ok()) << allowed.error_message();
  EXPECT_GT(response.stats().query_tokens(), 0);
  EXPECT_EQ(response.stats().tiers_size(), 3);

  v1::CacheControlRequest prefetch;
  prefetch.mutable_prefetch()->set_text("Bob's own context about a red ball.");
  v1::CacheControlResponse bob;
  grpc::Status prefetched = stub.CacheControl(MakeContext(kBobToken).get(), prefetch, &bob);
  ASSERT_TRUE(prefetched.ok()) << prefetched.error_message();
  EXPECT_GT(bob.context_tokens(), 0);
  EXPECT_EQ(bob.stats().block_size(), 16);
  EXPECT_EQ(bob.stats().query_tokens(), 0);  // Alice's queries are not Bob's business
  EXPECT_EQ(bob.stats().tiers_size(), 0);
  v1::CacheControlResponse admin;
  ASSERT_TRUE(stub.CacheControl(MakeContext(kAdminToken).get(), prefetch, &admin).ok());
  EXPECT_GT(admin.stats().query_tokens(), 0);
}

TEST(GrpcAuthTest, TenantsDoNotShareCachedPrefixes) {
  std::unique_ptr<TestServer> server = StartWithAuth();
  ASSERT_NE(server, nullptr);
  ASSERT_GE(server->tokenizer().Encode(kPrompt, true)->size(), 33u);
  EXPECT_EQ(CachedTokens(*server, kPrompt, kAliceToken), 0);
  EXPECT_GT(CachedTokens(*server, kPrompt, kAliceToken), 0);
  // Bob's identical prompt is keyed under his own salt: nothing to reuse.
  EXPECT_EQ(CachedTokens(*server, kPrompt, kBobToken), 0);
  EXPECT_GT(CachedTokens(*server, kPrompt, kBobToken), 0);
}

TEST(GrpcAuthTest, SharedPrefixIsCachedAcrossTenants) {
  std::unique_ptr<TestServer> server = StartWithAuth(kSystem);
  ASSERT_NE(server, nullptr);
  const std::vector<int32_t> system = server->tokenizer().Encode(kSystem, true).value();
  const int64_t public_blocks = static_cast<int64_t>(system.size()) / 16;
  ASSERT_GE(public_blocks, 1);
  const std::string alice_prompt = std::string(kSystem) + " Tell me about a cat.";
  const std::string bob_prompt = std::string(kSystem) + " Tell me about a dog.";
  // The prompts' tokens start with the prefix's, as the server checks.
  std::vector<int32_t> bob_ids = server->tokenizer().Encode(bob_prompt, true).value();
  ASSERT_TRUE(std::equal(system.begin(), system.end(), bob_ids.begin()));

  EXPECT_EQ(CachedTokens(*server, alice_prompt, kAliceToken), 0);
  // Bob reuses the public prefix's full blocks, and only those.
  EXPECT_EQ(CachedTokens(*server, bob_prompt, kBobToken), public_blocks * 16);
  // A prompt without the prefix stays private.
  EXPECT_EQ(CachedTokens(*server, kPrompt, kAliceToken), 0);
  EXPECT_EQ(CachedTokens(*server, kPrompt, kBobToken), 0);
}

}  // namespace
}  // namespace strata::server
