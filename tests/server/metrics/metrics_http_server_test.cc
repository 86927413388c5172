#include "server/metrics/metrics_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics/strata_metrics.h"
#include "tests/server/metrics/promtool_util.h"

namespace strata::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

struct HttpResponse {
  int status = 0;
  std::string headers;  // header lines, lower-cased names as sent
  std::string body;
};

// A minimal HTTP/1.1 client over a raw loopback socket: sends one request
// with Connection: close and reads the reply to EOF.
HttpResponse Request(int port, const std::string& method, const std::string& path) {
  HttpResponse response;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return response;
  // Guards against a hung server only; the test does not measure time.
  timeval timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return response;
  }
  const std::string request =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd, request.data() + sent, request.size() - sent, 0);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string raw;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) raw.append(buffer, static_cast<size_t>(n));
  close(fd);

  const size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return response;
  const std::string head = raw.substr(0, header_end);
  response.body = raw.substr(header_end + 4);
  // Status line: HTTP/1.1 200 OK
  const size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.rfind("HTTP/1.", 0) == 0 && status_line.size() >= 12) {
    response.status = std::stoi(status_line.substr(9, 3));
  }
  response.headers = line_end == std::string::npos ? "" : head.substr(line_end + 2);
  return response;
}

TEST(MetricsHttpServerTest, ServesMetricsOnAPickedPort) {
  MetricsRegistry registry;
  StrataMetrics metrics = *StrataMetrics::Register(&registry);
  metrics.generation_tokens_total->Inc(42);
  metrics.request_success_total->Labels({"length"}).Inc();

  MetricsHttpServer server(&registry);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  ASSERT_TRUE(server.running());
  ASSERT_GT(server.port(), 0);

  const HttpResponse response = Request(server.port(), "GET", "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.headers,
              HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_EQ(response.body, registry.Serialize());
  EXPECT_THAT(response.body, HasSubstr("strata_generation_tokens_total 42\n"));
  EXPECT_THAT(response.body,
              HasSubstr("strata_request_success_total{finished_reason=\"length\"} 1\n"));

  const testing::PromtoolResult result = testing::RunPromtoolCheck(response.body);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, IsEmpty());

  // Later scrapes see later updates.
  metrics.generation_tokens_total->Inc(8);
  EXPECT_THAT(Request(server.port(), "GET", "/metrics").body,
              HasSubstr("strata_generation_tokens_total 50\n"));
  server.Stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(server.port(), 0);
}

TEST(MetricsHttpServerTest, OtherPathsAndMethodsAreRejected) {
  MetricsRegistry registry;
  ASSERT_TRUE(registry.AddGauge("g", "A gauge.").ok());
  MetricsHttpServer server(&registry);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  EXPECT_EQ(Request(server.port(), "GET", "/").status, 404);
  EXPECT_EQ(Request(server.port(), "GET", "/metrics/extra").status, 404);
  EXPECT_EQ(Request(server.port(), "GET", "/metricsx").status, 404);
  EXPECT_EQ(Request(server.port(), "POST", "/metrics").status, 405);
  const HttpResponse head = Request(server.port(), "HEAD", "/metrics");
  EXPECT_EQ(head.status, 200);
  EXPECT_THAT(head.body, IsEmpty());
  // A query string does not change the path.
  EXPECT_EQ(Request(server.port(), "GET", "/metrics?x=1").status, 200);
}

TEST(MetricsHttpServerTest, PortInUseIsUnavailable) {
  MetricsRegistry registry;
  MetricsHttpServer first(&registry);
  ASSERT_TRUE(first.Start("127.0.0.1:0").ok());
  const std::string address = "127.0.0.1:" + std::to_string(first.port());

  MetricsHttpServer second(&registry);
  const absl::Status status = second.Start(address);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr(address));
  EXPECT_FALSE(second.running());
  // The first one still serves.
  EXPECT_EQ(Request(first.port(), "GET", "/metrics").status, 200);

  EXPECT_EQ(first.Start("127.0.0.1:0").code(), absl::StatusCode::kFailedPrecondition);
  // Stop frees the port for a new server.
  first.Stop();
  EXPECT_TRUE(second.Start(address).ok());
  EXPECT_EQ(Request(second.port(), "GET", "/metrics").status, 200);
}

TEST(MetricsHttpServerTest, MalformedAddressesAreInvalid) {
  MetricsRegistry registry;
  MetricsHttpServer server(&registry);
  for (const char* address : {"", "127.0.0.1", "localhost:9090", "127.0.0.1:", "127.0.0.1:x",
                              "127.0.0.1:70000", "1.2.3:80", "127.0.0.1:-1"}) {
    EXPECT_EQ(server.Start(address).code(), absl::StatusCode::kInvalidArgument) << address;
  }
  EXPECT_FALSE(server.running());
}

}  // namespace
}  // namespace strata::metrics
