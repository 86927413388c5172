#include "server/metrics/metrics_http_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

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
// A connected loopback socket whose reads give up after `receive_timeout_s`
// (a guard against a hung server), or -1.
int Connect(int port, int receive_timeout_s = 30) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  timeval timeout{receive_timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

HttpResponse Request(int port, const std::string& method, const std::string& path,
                     int receive_timeout_s = 30) {
  HttpResponse response;
  const int fd = Connect(port, receive_timeout_s);
  if (fd < 0) return response;
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

// A slowloris connection: the start of a request whose header never ends.
constexpr char kHalfRequest[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";

int OpenHalfSent(int port) {
  const int fd = Connect(port);
  if (fd >= 0 && send(fd, kHalfRequest, sizeof(kHalfRequest) - 1, MSG_NOSIGNAL) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads until the server closes `fd`: true on EOF or reset, false when the
// receive timeout passed first (the server kept it open).
bool ServerCloses(int fd) {
  char buffer[512];
  while (true) {
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

std::shared_ptr<prometheus::Registry> NewRegistry() {
  return std::make_shared<prometheus::Registry>(prometheus::Registry::InsertBehavior::Throw);
}

TEST(MetricsHttpServerTest, ServesMetricsOnAPickedPort) {
  auto registry = NewRegistry();
  StrataMetrics metrics = *StrataMetrics::Register(registry.get());
  metrics.generation_tokens_total->Increment(42);
  metrics.request_success_total->Add({{"finished_reason", "length"}}).Increment();

  MetricsHttpServer server(registry);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  ASSERT_TRUE(server.running());
  ASSERT_GT(server.port(), 0);

  const HttpResponse response = Request(server.port(), "GET", "/metrics");
  EXPECT_EQ(response.status, 200);
  EXPECT_THAT(response.headers, HasSubstr("Content-Type: text/plain"));
  // The registry's text, after the Exposer's own exposer_* metrics.
  EXPECT_THAT(response.body, HasSubstr(ExpositionText(*registry)));
  EXPECT_THAT(response.body, HasSubstr("# TYPE exposer_scrapes_total counter\n"));
  EXPECT_THAT(response.body, HasSubstr("strata_generation_tokens_total 42\n"));
  EXPECT_THAT(response.body,
              HasSubstr("strata_request_success_total{finished_reason=\"length\"} 1\n"));

  const testing::PromtoolResult result = testing::RunPromtoolCheck(response.body);
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_THAT(result.output, IsEmpty());

  // Later scrapes see later updates.
  metrics.generation_tokens_total->Increment(8);
  EXPECT_THAT(Request(server.port(), "GET", "/metrics").body,
              HasSubstr("strata_generation_tokens_total 50\n"));
  server.Stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(server.port(), 0);
}

TEST(MetricsHttpServerTest, OtherPathsAreNotFound) {
  auto registry = NewRegistry();
  prometheus::BuildGauge().Name("g").Help("A gauge.").Register(*registry).Add({});
  MetricsHttpServer server(registry);
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  EXPECT_EQ(Request(server.port(), "GET", "/").status, 404);
  EXPECT_EQ(Request(server.port(), "GET", "/other").status, 404);
  // A query string does not change the path.
  const HttpResponse query = Request(server.port(), "GET", "/metrics?x=1");
  EXPECT_EQ(query.status, 200);
  EXPECT_THAT(query.body, HasSubstr("g 0"));
}

// The slowloris regression (issue 12): idle, half-sent requests used to hold
// both of two workers for 10 s each. Now many of them leave workers to spare,
// and a scrape is answered while they sit there: the request timeout here is
// a minute, so a scrape queued behind them would outlast the client's 20 s
// guard and fail.
TEST(MetricsHttpServerTest, ScrapesAnswerWhileManyHalfSentRequestsSitIdle) {
  auto registry = NewRegistry();
  ASSERT_TRUE(StrataMetrics::Register(registry.get()).ok());
  MetricsHttpServer server(registry, {.worker_threads = 32, .request_timeout_ms = 60000});
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());

  std::vector<int> idle;
  for (int i = 0; i < 24; ++i) {
    const int fd = OpenHalfSent(server.port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  for (int scrape = 0; scrape < 3; ++scrape) {
    const HttpResponse response = Request(server.port(), "GET", "/metrics", 20);
    EXPECT_EQ(response.status, 200) << "scrape " << scrape;
    EXPECT_THAT(response.body, HasSubstr("strata_num_requests_running 0\n"));
  }
  for (int fd : idle) close(fd);
}

// More idle connections than workers: each is closed once the request
// timeout passes, also one that keeps trickling bytes (the timeout bounds the
// whole header, not the gap between bytes), and scrapes then answer again.
TEST(MetricsHttpServerTest, HalfSentRequestsAreClosedAtTheRequestTimeout) {
  auto registry = NewRegistry();
  ASSERT_TRUE(StrataMetrics::Register(registry.get()).ok());
  MetricsHttpServer server(registry, {.worker_threads = 2, .request_timeout_ms = 300});
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());

  std::vector<int> idle;
  for (int i = 0; i < 4; ++i) {
    const int fd = OpenHalfSent(server.port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  // One byte of header every 50 ms for up to 30 s: the server must hang up
  // long before the trickle ends.
  const int trickle = Connect(server.port());
  ASSERT_GE(trickle, 0);
  bool trickle_closed = false;
  for (int i = 0; i < 600 && !trickle_closed; ++i) {
    trickle_closed = send(trickle, "X", 1, MSG_NOSIGNAL) < 0;
    if (!trickle_closed) {
      char byte;
      const ssize_t n = recv(trickle, &byte, 1, MSG_DONTWAIT);
      trickle_closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(trickle_closed);
  close(trickle);
  for (int fd : idle) {
    EXPECT_TRUE(ServerCloses(fd));
    close(fd);
  }
  EXPECT_EQ(Request(server.port(), "GET", "/metrics").status, 200);
}

TEST(MetricsHttpServerTest, PortInUseIsUnavailable) {
  auto registry = NewRegistry();
  MetricsHttpServer first(registry);
  ASSERT_TRUE(first.Start("127.0.0.1:0").ok());
  const std::string address = "127.0.0.1:" + std::to_string(first.port());

  MetricsHttpServer second(registry);
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

TEST(MetricsHttpServerTest, MalformedAddressesAndOptionsAreInvalid) {
  auto registry = NewRegistry();
  MetricsHttpServer server(registry);
  for (const char* address : {"", "127.0.0.1", "localhost:9090", "127.0.0.1:", "127.0.0.1:x",
                              "127.0.0.1:70000", "1.2.3:80", "127.0.0.1:-1"}) {
    EXPECT_EQ(server.Start(address).code(), absl::StatusCode::kInvalidArgument) << address;
  }
  EXPECT_FALSE(server.running());
  MetricsHttpServer no_workers(registry, {.worker_threads = 0});
  EXPECT_EQ(no_workers.Start("127.0.0.1:0").code(), absl::StatusCode::kInvalidArgument);
  MetricsHttpServer no_timeout(registry, {.request_timeout_ms = 0});
  EXPECT_EQ(no_timeout.Start("127.0.0.1:0").code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace strata::metrics
