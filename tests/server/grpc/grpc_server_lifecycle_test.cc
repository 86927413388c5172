// Cancellation, deadlines, overload, drain, health and reflection of the
// gRPC service. The engine thread is stalled on purpose (EngineStall) where
// a test needs requests to wait, so that nothing depends on timing.
#include <chrono>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "google/protobuf/unknown_field_set.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "server/grpc/grpc_server.h"
#include "tests/common/temp_dir.h"
#include "tests/server/grpc/grpc_test_util.h"

namespace strata::server {
namespace {

using testing::EngineStall;
using testing::GenerateAll;
using ::testing::HasSubstr;
using testing::MakeContext;
using testing::StreamResult;
using testing::TestServer;
using testing::TestServerOptions;
using testing::TextRequest;

constexpr char kPrompt[] = "Once upon a time, there was a little girl named Lily.";

// The longest generation the 128-token model allows after kPrompt.
v1::GenerateRequest LongRequest() {
  v1::GenerateRequest request = TextRequest(kPrompt, 100);
  request.mutable_sampling()->set_ignore_eos(true);
  return request;
}

// The finished stats of every request but `except`.
std::vector<scheduler::RequestStats> OthersFinished(const TestServer& server,
                                                    scheduler::RequestId except) {
  std::vector<scheduler::RequestStats> others;
  for (const scheduler::RequestStats& stats : server.observer().finished()) {
    if (stats.id != except) others.push_back(stats);
  }
  return others;
}

// Polls until `n` requests are in the engine (submitted, not finished).
void WaitInFlight(TestServer& server, int64_t n) {
  while (server.engine().num_in_flight() < n) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// The finished stats of request `id`, if it has finished.
std::optional<scheduler::RequestStats> FinishedStats(const TestServer& server,
                                                     scheduler::RequestId id) {
  for (const scheduler::RequestStats& stats : server.observer().finished()) {
    if (stats.id == id) return stats;
  }
  return std::nullopt;
}

grpc::Status CompleteWithDeadline(v1::Strata::Stub& stub, const v1::GenerateRequest& request,
                                  std::chrono::milliseconds timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  v1::CompleteResponse response;
  return stub.Complete(&context, request, &response);
}

// Waits until the server has run the cancelled call's OnCancel: its slot
// (max_concurrent_streams 1) comes back in OnDone, which follows OnCancel's
// EngineService::Cancel, so once another call gets past the limit the cancel
// is queued for the engine.
void WaitForSlot(TestServer& server) {
  grpc::Status probe;
  do {
    probe = CompleteWithDeadline(server.stub(), TextRequest(kPrompt, 2),
                                 std::chrono::milliseconds(100));
  } while (probe.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED);
}

TEST(GrpcServerLifecycleTest, CancelMidStreamFreesTheRequest) {
  TestServerOptions options;
  options.grpc.max_concurrent_streams = 1;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);
  // `gate` and the stream start in the same step once `first` lets go; the
  // gate then stalls the engine at its second token, mid-stream.
  auto first = std::make_unique<EngineStall>(server->engine(), server->hooked());
  auto gate = std::make_unique<EngineStall>(server->engine(), server->hooked(), /*block_at=*/2,
                                            /*wait=*/false);
  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  auto reader = server->stub().Generate(context.get(), LongRequest());
  WaitInFlight(*server, 3);
  first->Release();

  v1::GenerateResponse message;
  ASSERT_TRUE(reader->Read(&message));
  EXPECT_FALSE(message.tokens().empty());
  scheduler::RequestId id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(message.request_id(), &id)) << message.request_id();
  gate->WaitStalled();
  context->TryCancel();
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  WaitForSlot(*server);
  gate->Release();

  EXPECT_TRUE(server->engine().WaitIdle(std::chrono::seconds(30)));
  EXPECT_EQ(server->engine().num_in_flight(), 0);
  std::optional<scheduler::RequestStats> stats = FinishedStats(*server, id);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->finish_reason, scheduler::FinishReason::kAbort);
  EXPECT_GE(stats->generated_tokens, 1);
  EXPECT_LT(stats->generated_tokens, 10);  // of the 91 it would have made
}

TEST(GrpcServerLifecycleTest, CancelBeforeTheFirstTokenAbortsInTheEngine) {
  TestServerOptions options;
  options.grpc.max_concurrent_streams = 1;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);
  auto stall = std::make_unique<EngineStall>(server->engine(), server->hooked());

  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  auto reader = server->stub().Generate(context.get(), LongRequest());
  // Submitted (the engine counts it) while the engine thread is stalled.
  WaitInFlight(*server, 2);
  context->TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  WaitForSlot(*server);
  stall->Release();
  EXPECT_TRUE(server->engine().WaitIdle(std::chrono::seconds(30)));
  EXPECT_EQ(server->engine().num_in_flight(), 0);
  // Ids are sequential: the stream's request came right after the stall's.
  std::optional<scheduler::RequestStats> cancelled = FinishedStats(*server, stall->id() + 1);
  ASSERT_TRUE(cancelled.has_value());
  EXPECT_EQ(cancelled->finish_reason, scheduler::FinishReason::kAbort);
  EXPECT_EQ(cancelled->generated_tokens, 0);
}

TEST(GrpcServerLifecycleTest, ShortDeadlineIsDeadlineExceeded) {
  std::unique_ptr<TestServer> server = TestServer::Start();
  ASSERT_NE(server, nullptr);
  auto stall = std::make_unique<EngineStall>(server->engine(), server->hooked());
  grpc::Status status =
      CompleteWithDeadline(server->stub(), LongRequest(), std::chrono::milliseconds(200));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  stall->Release();
  EXPECT_TRUE(server->engine().WaitIdle(std::chrono::seconds(30)));
  // Ended by the engine's deadline or by gRPC's cancellation at the deadline,
  // whichever came first, and cut short. (The server's copy of the deadline
  // may lie a little after the client's: between the stall's release and the
  // engine seeing either, a step or two may still generate.)
  std::vector<scheduler::RequestStats> others = OthersFinished(*server, stall->id());
  ASSERT_EQ(others.size(), 1u);
  EXPECT_THAT(others.front().finish_reason, ::testing::AnyOf(scheduler::FinishReason::kDeadline,
                                                             scheduler::FinishReason::kAbort));
  EXPECT_LT(others.front().generated_tokens, LongRequest().sampling().max_tokens());

  // The streaming call too.
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1));
  auto reader = server->stub().Generate(&context, LongRequest());
  v1::GenerateResponse message;
  while (reader->Read(&message)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(server->engine().WaitIdle(std::chrono::seconds(30)));
}

TEST(GrpcServerLifecycleTest, MoreOpenCallsThanTheLimitIsResourceExhausted) {
  TestServerOptions options;
  options.grpc.max_concurrent_streams = 1;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);
  auto stall = std::make_unique<EngineStall>(server->engine(), server->hooked());

  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  auto reader = server->stub().Generate(context.get(), TextRequest(kPrompt, 4));
  WaitInFlight(*server, 2);

  v1::CompleteResponse response;
  grpc::Status refused =
      server->stub().Complete(MakeContext().get(), TextRequest(kPrompt, 4), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("max_concurrent_streams"));
  StreamResult stream = GenerateAll(server->stub(), TextRequest(kPrompt, 4));
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);

  // The open call is unaffected and, once done, frees its slot.
  stall->Release();
  v1::GenerateResponse message;
  int messages = 0;
  while (reader->Read(&message)) ++messages;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_GT(messages, 0);
  grpc::Status later = grpc::Status::CANCELLED;
  // OnDone (which frees the slot) may trail the client's Finish a little.
  for (int i = 0; i < 1000; ++i) {
    later = server->stub().Complete(MakeContext().get(), TextRequest(kPrompt, 4), &response);
    if (later.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(later.ok()) << later.error_message();
}

TEST(GrpcServerLifecycleTest, FullWaitingQueueIsResourceExhausted) {
  TestServerOptions options;
  options.max_waiting = 1;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);
  auto stall = std::make_unique<EngineStall>(server->engine(), server->hooked());
  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  auto reader = server->stub().Generate(context.get(), TextRequest(kPrompt, 4));
  WaitInFlight(*server, 2);

  v1::CompleteResponse response;
  grpc::Status refused =
      server->stub().Complete(MakeContext().get(), TextRequest(kPrompt, 4), &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(), HasSubstr("waiting queue is full"));
  stall->Release();
  v1::GenerateResponse message;
  while (reader->Read(&message)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
}

grpc::health::v1::HealthCheckResponse::ServingStatus HealthOf(TestServer& server,
                                                              const std::string& service) {
  auto health = grpc::health::v1::Health::NewStub(server.channel());
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health->Check(MakeContext().get(), request, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

TEST(GrpcServerLifecycleTest, DrainRefusesNewCallsAndFinishesOpenOnes) {
  std::unique_ptr<TestServer> server = TestServer::Start();
  ASSERT_NE(server, nullptr);
  using Status = grpc::health::v1::HealthCheckResponse;
  EXPECT_EQ(HealthOf(*server, ""), Status::SERVING);
  EXPECT_EQ(HealthOf(*server, "strata.v1.Strata"), Status::SERVING);

  auto stall = std::make_unique<EngineStall>(server->engine(), server->hooked());
  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  auto reader = server->stub().Generate(context.get(), TextRequest(kPrompt, 6));
  WaitInFlight(*server, 2);

  server->grpc().BeginDrain();
  EXPECT_EQ(HealthOf(*server, ""), Status::NOT_SERVING);
  EXPECT_EQ(HealthOf(*server, "strata.v1.Strata"), Status::NOT_SERVING);
  StreamResult refused = GenerateAll(server->stub(), TextRequest(kPrompt, 4));
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("draining"));
  v1::TokenizeResponse tokens;
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hi");
  EXPECT_EQ(server->stub().Tokenize(MakeContext().get(), tokenize, &tokens).error_code(),
            grpc::StatusCode::UNAVAILABLE);

  stall->Release();
  std::string text;
  v1::GenerateResponse message;
  while (reader->Read(&message)) text += message.text();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_FALSE(text.empty());
}

// grpc.reflection.v1alpha by hand (Debian ships neither its .proto nor the
// client-side descriptor database): ServerReflectionRequest{list_services=7}
// and ServerReflectionResponse{list_services_response=6{service=1{name=1}}}.
std::vector<std::string> ListServices(TestServer& server) {
  grpc::GenericStub stub(server.channel());
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  auto step = [&](int expected) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(tag, reinterpret_cast<void*>(expected));
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  EXPECT_TRUE(step(1));
  const std::string request("\x3a\x00", 2);  // list_services: ""
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1);
  call->Write(out, reinterpret_cast<void*>(2));
  EXPECT_TRUE(step(2));
  grpc::ByteBuffer in;
  call->Read(&in, reinterpret_cast<void*>(3));
  EXPECT_TRUE(step(3));
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  EXPECT_TRUE(status.ok()) << status.error_message();

  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(in.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& s : slices)
    bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  std::vector<std::string> names;
  google::protobuf::UnknownFieldSet response;
  EXPECT_TRUE(response.ParseFromString(bytes));
  for (int i = 0; i < response.field_count(); ++i) {
    if (response.field(i).number() != 6) continue;
    google::protobuf::UnknownFieldSet list;
    EXPECT_TRUE(list.ParseFromString(response.field(i).length_delimited()));
    for (int j = 0; j < list.field_count(); ++j) {
      google::protobuf::UnknownFieldSet service;
      EXPECT_TRUE(service.ParseFromString(list.field(j).length_delimited()));
      for (int k = 0; k < service.field_count(); ++k) {
        if (service.field(k).number() == 1) names.push_back(service.field(k).length_delimited());
      }
    }
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return names;
}

TEST(GrpcServerLifecycleTest, ReflectionListsTheService) {
  std::unique_ptr<TestServer> server = TestServer::Start();
  ASSERT_NE(server, nullptr);
  std::vector<std::string> services = ListServices(*server);
  EXPECT_THAT(services, ::testing::Contains("strata.v1.Strata"));
  EXPECT_THAT(services, ::testing::Contains("grpc.health.v1.Health"));
}

TEST(GrpcServerLifecycleTest, StartErrors) {
  std::unique_ptr<TestServer> server = TestServer::Start();
  ASSERT_NE(server, nullptr);
  const engine::ModelConfig& config = server->serving().backend->model_config();
  ServedModel model{.name = "m", .config = &config, .tokenizer = &server->tokenizer()};

  GrpcServerOptions taken;
  taken.listen = absl::StrCat("127.0.0.1:", server->grpc().port());
  EXPECT_EQ(GrpcServer(taken, &server->engine(), model).Start().code(),
            absl::StatusCode::kUnavailable);
  GrpcServerOptions bad_address;
  bad_address.listen = "localhost";
  EXPECT_EQ(GrpcServer(bad_address, &server->engine(), model).Start().code(),
            absl::StatusCode::kInvalidArgument);
  GrpcServerOptions missing_key;
  missing_key.listen = "127.0.0.1:0";
  missing_key.tls_cert_file = "/nonexistent/cert.pem";
  absl::Status tls = GrpcServer(missing_key, &server->engine(), model).Start();
  EXPECT_EQ(tls.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tls.message()), HasSubstr("tls_"));
  missing_key.tls_key_file = "/nonexistent/key.pem";
  tls = GrpcServer(missing_key, &server->engine(), model).Start();
  EXPECT_EQ(tls.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(tls.message()), HasSubstr("tls_cert_file"));
}

TEST(GrpcServerLifecycleTest, ShutdownWithOpenCallsAndLateEvents) {
  std::unique_ptr<TestServer> server = TestServer::Start();
  ASSERT_NE(server, nullptr);
  auto stall = std::make_unique<EngineStall>(server->engine(), server->hooked());
  std::unique_ptr<grpc::ClientContext> stream_context = MakeContext();
  auto reader = server->stub().Generate(stream_context.get(), LongRequest());
  WaitInFlight(*server, 2);
  // Shutdown cancels the open call and destroys the service while the
  // engine still holds the request: its events arrive after the call is
  // done, and must be dropped safely.
  server->grpc().Shutdown(std::chrono::milliseconds(0));
  v1::GenerateResponse message;
  while (reader->Read(&message)) {
  }
  EXPECT_FALSE(reader->Finish().ok());
  stall->Release();
  EXPECT_TRUE(server->engine().WaitIdle(std::chrono::seconds(30)));
  EXPECT_EQ(server->engine().num_in_flight(), 0);
}

TEST(GrpcServerLifecycleTest, MessageSizeLimit) {
  TestServerOptions options;
  options.grpc.max_message_bytes = 1024;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);
  v1::TokenizeRequest request;
  request.set_text("Once upon a time");
  v1::TokenizeResponse response;
  EXPECT_TRUE(server->stub().Tokenize(MakeContext().get(), request, &response).ok());
  request.set_text(std::string(4096, 'a'));
  EXPECT_EQ(server->stub().Tokenize(MakeContext().get(), request, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

// A self-signed P-256 certificate for localhost and 127.0.0.1, valid from
// 2000 to 2100 (made with `openssl ca -selfsign`), and its key.
constexpr char kTestCert[] = R"(-----BEGIN CERTIFICATE-----
MIIBaDCCAQ2gAwIBAgIBATAKBggqhkjOPQQDAjAUMRIwEAYDVQQDDAlsb2NhbGhv
c3QwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBQxEjAQBgNVBAMM
CWxvY2FsaG9zdDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABOkjuYeyHx0uzT3r
IRt4V1fRTmDz+0CUuO9wSrEdNlHtAA/HDassI+vmyTHLC3muGRjvDFxsbd/YtQK4
HLN0e+2jTjBMMA8GA1UdEwEB/wQFMAMBAf8wGgYDVR0RBBMwEYIJbG9jYWxob3N0
hwR/AAABMB0GA1UdDgQWBBRboD/gba337SfnX3poXVUYPAGyOTAKBggqhkjOPQQD
AgNJADBGAiEApr43IqJBDa5ZMm/zpSer8wjhwupx9o+TQRFRJXdlMlUCIQDy78UD
PMej9WJW8JaOfR1eHdOTswTeEC3UV5jBX79A9A==
-----END CERTIFICATE-----
)";
constexpr char kTestKey[] = R"(-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgfQ3j630ysFaKfJzz
jRmoByMZ9+Kbf0vPSNjfDQISU8ShRANCAATpI7mHsh8dLs096yEbeFdX0U5g8/tA
lLjvcEqxHTZR7QAPxw2rLCPr5skxywt5rhkY7wxcbG3f2LUCuByzdHvt
-----END PRIVATE KEY-----
)";

TEST(GrpcServerLifecycleTest, TlsServesEncryptedCallsOnly) {
  strata::testing::TempDir dir;
  const std::string cert = (dir.path() / "cert.pem").string();
  const std::string key = (dir.path() / "key.pem").string();
  std::ofstream(cert) << kTestCert;
  std::ofstream(key) << kTestKey;
  TestServerOptions options;
  options.grpc.tls_cert_file = cert;
  options.grpc.tls_key_file = key;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);

  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = kTestCert;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", server->grpc().port()),
                                           grpc::SslCredentials(ssl), args);
  auto stub = v1::Strata::NewStub(channel);
  v1::CompleteResponse complete;
  grpc::Status status = stub->Complete(MakeContext().get(), TextRequest(kPrompt, 4), &complete);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(complete.tokens_size(), complete.final().usage().generated_tokens());

  // The plaintext channel cannot talk to it.
  grpc::ClientContext plain;
  plain.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  status = server->stub().Complete(&plain, TextRequest(kPrompt, 4), &complete);
  EXPECT_FALSE(status.ok());
}

}  // namespace
}  // namespace strata::server
