// Requests that cannot be parsed: raw bytes on the wire, sent through the
// generic (ByteBuffer) call path so that no client-side serializer gets in
// the way. They get INVALID_ARGUMENT naming the problem, the daemon keeps
// serving, and a JSON log stays one JSON object per line.
#include "server/grpc/parse_error_interceptor.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/support/sync_stream.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "server/logging/log.h"
#include "tests/server/grpc/grpc_test_util.h"

namespace strata::server {
namespace {

using ::testing::HasSubstr;
using testing::MakeContext;
using testing::TestServer;

grpc::ByteBuffer Bytes(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

grpc::Status RawUnary(grpc::Channel& channel, const char* method, const std::string& bytes) {
  grpc::internal::RpcMethod rpc(method, grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ByteBuffer response;
  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  return grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      &channel, rpc, context.get(), Bytes(bytes), &response);
}

grpc::Status RawGenerate(grpc::Channel& channel, const std::string& bytes) {
  grpc::internal::RpcMethod rpc("/strata.v1.Strata/Generate",
                                grpc::internal::RpcMethod::SERVER_STREAMING);
  std::unique_ptr<grpc::ClientContext> context = MakeContext();
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(&channel, rpc, context.get(),
                                                                    Bytes(bytes)));
  grpc::ByteBuffer message;
  while (reader->Read(&message)) {
  }
  return reader->Finish();
}

// GenerateRequest{text = "\xC3("}: field 1, length 2, a lead byte and then
// an ASCII byte, which is not UTF-8.
constexpr char kNonUtf8Text[] = "\x0A\x02\xC3\x28";
// A tag with field number 0 and then a truncated varint: no message at all.
constexpr char kGarbage[] = "\x00\xFF\xFF\xFF\xFF";

class ParseErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    logging::Configure(logging::Level::kInfo, logging::Format::kJson, &log_);
    server_ = TestServer::Start();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    server_.reset();
    logging::Configure(logging::Level::kInfo, logging::Format::kText);
  }

  std::ostringstream log_;
  std::unique_ptr<TestServer> server_;
};

TEST_F(ParseErrorTest, NonUtf8StringFieldIsInvalidArgumentNamingTheField) {
  grpc::Channel& channel = *server_->channel();
  const std::string non_utf8(kNonUtf8Text, sizeof(kNonUtf8Text) - 1);
  for (const char* method : {"/strata.v1.Strata/Complete", "/strata.v1.Strata/Tokenize"}) {
    grpc::Status status = RawUnary(channel, method, non_utf8);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(status.error_message(), HasSubstr(".text: is not valid UTF-8")) << method;
  }
  grpc::Status streamed = RawGenerate(channel, non_utf8);
  EXPECT_EQ(streamed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(streamed.error_message(),
              HasSubstr("strata.v1.GenerateRequest.text: is not valid UTF-8"));
}

TEST_F(ParseErrorTest, RandomBytesAreInvalidArgumentNamingTheMessageType) {
  grpc::Channel& channel = *server_->channel();
  const std::string garbage(kGarbage, sizeof(kGarbage) - 1);
  grpc::Status status = RawUnary(channel, "/strata.v1.Strata/Complete", garbage);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "request: cannot be parsed as strata.v1.GenerateRequest (malformed protobuf wire "
            "data)");
  grpc::Status streamed = RawGenerate(channel, garbage);
  EXPECT_EQ(streamed.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(streamed.error_message(), HasSubstr("strata.v1.GenerateRequest"));

  // A method nobody serves is still UNIMPLEMENTED.
  EXPECT_EQ(RawUnary(channel, "/strata.v1.Strata/NoSuchMethod", garbage).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  // And the server still serves well-formed calls.
  v1::TokenizeRequest tokenize;
  tokenize.set_text("hello");
  v1::TokenizeResponse tokens;
  EXPECT_TRUE(server_->stub().Tokenize(MakeContext().get(), tokenize, &tokens).ok());
}

TEST_F(ParseErrorTest, JsonLogStaysJson) {
  grpc::Channel& channel = *server_->channel();
  ::testing::internal::CaptureStderr();
  RawUnary(channel, "/strata.v1.Strata/Complete", std::string(kNonUtf8Text, 4));
  RawUnary(channel, "/strata.v1.Strata/Complete", std::string(kGarbage, 5));
  server_.reset();  // every call done, every line written
  const std::string stderr_text = ::testing::internal::GetCapturedStderr();
  // Nothing went around the structured log.
  EXPECT_THAT(stderr_text, ::testing::Not(HasSubstr("libprotobuf"))) << stderr_text;
  const std::string log = log_.str();
  int rejected = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    nlohmann::json event;
    ASSERT_NO_THROW(event = nlohmann::json::parse(std::string(line))) << line;
    if (event["event"] == "request_rejected") ++rejected;
  }
  EXPECT_EQ(rejected, 2) << log;
  // libprotobuf's own complaint came through the structured log.
  EXPECT_THAT(log, HasSubstr("\"library\":\"protobuf\""));
}

TEST(UnparseableRequestMessageTest, NamesTheFieldOrTheType) {
  EXPECT_EQ(
      UnparseableRequestMessage(
          "/strata.v1.Strata/Generate",
          "String field 'strata.v1.ContextChunk.text' contains invalid UTF-8 data when "
          "parsing a protocol buffer. Use the 'bytes' type if you intend to send raw bytes. "),
      "strata.v1.ContextChunk.text: is not valid UTF-8 (proto3 string fields must be; send "
      "token ids for raw bytes)");
  EXPECT_EQ(UnparseableRequestMessage("/strata.v1.Strata/CacheControl", ""),
            "request: cannot be parsed as strata.v1.CacheControlRequest (malformed protobuf wire "
            "data)");
  EXPECT_EQ(UnparseableRequestMessage("/x.Y/Z", "unrelated"),
            "request: cannot be parsed as the request of /x.Y/Z (malformed protobuf wire data)");
}

}  // namespace
}  // namespace strata::server
