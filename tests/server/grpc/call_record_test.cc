// The request log lines of CallRecord: a client's request id is logged, but
// never more than a bounded prefix of it.
#include "server/grpc/call_record.h"

#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/logging/log.h"

namespace strata::server {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ClientRequestIdForLogTest, ShortIdsAreKeptLongOnesCutAtACharacter) {
  EXPECT_EQ(ClientRequestIdForLog("client-7"), "client-7");
  const std::string exact(kMaxLoggedClientIdBytes, 'x');
  EXPECT_EQ(ClientRequestIdForLog(exact), exact);
  EXPECT_EQ(ClientRequestIdForLog(exact + "y"), exact + "...(129 bytes)");
  // "é" (C3 A9) straddling the cut is dropped whole, not split.
  const std::string straddling = std::string(kMaxLoggedClientIdBytes - 1, 'x') + "\xC3\xA9zz";
  EXPECT_EQ(ClientRequestIdForLog(straddling),
            std::string(kMaxLoggedClientIdBytes - 1, 'x') + "...(131 bytes)");
}

TEST(CallRecordLogTest, AMebibyteClientIdIsNotLoggedInFull) {
  std::ostringstream sink;
  logging::Configure(logging::Level::kInfo, logging::Format::kJson, &sink);
  CallRecord record{.method = "Complete", .client_request_id = std::string(1 << 20, 'r')};
  record.id = 42;
  LogRequestStarted(record);
  record.status = absl::CancelledError("cancelled by the client");
  LogRequestFinished(record);
  logging::Configure(logging::Level::kInfo, logging::Format::kText);
  const std::string log = sink.str();
  EXPECT_LT(log.size(), 2048u) << log.size();
  EXPECT_THAT(log, HasSubstr("\"client_request_id\":\"rrrr"));
  EXPECT_THAT(log, HasSubstr("...(1048576 bytes)\""));
  EXPECT_THAT(log, StartsWith("{"));
  EXPECT_THAT(log, EndsWith("}\n"));
}

}  // namespace
}  // namespace strata::server
