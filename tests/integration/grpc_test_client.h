// Client-side helpers for the integration tests: one Generate stream or
// Complete call collected whole, an HTTP GET over a plain socket (for
// /metrics and Prometheus's API), and a free loopback port.
#ifndef STRATA_TESTS_INTEGRATION_GRPC_TEST_CLIENT_H_
#define STRATA_TESTS_INTEGRATION_GRPC_TEST_CLIENT_H_

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server/daemon/grpc_client.h"
#include "strata/v1/strata.grpc.pb.h"

namespace strata::testing {

struct Generation {
  grpc::Status status;
  std::string text;
  std::vector<int32_t> ids;
  bool has_final = false;
  v1::FinalInfo final_info;
  int messages = 0;
};

struct CallOptions {
  std::string token;
  std::string session_id;  // the x-session-id header (the request's own field is separate)
  std::chrono::milliseconds timeout{120000};
};

inline std::unique_ptr<v1::Strata::Stub> NewStub(const std::string& address) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = server::OpenChannel({.server = address});
  return v1::Strata::NewStub(*channel);
}

inline void PrepareContext(grpc::ClientContext& context, const CallOptions& options) {
  server::AddCallMetadata(context, options.token, options.session_id);
  context.set_deadline(std::chrono::system_clock::now() + options.timeout);
}

inline Generation StreamGenerate(v1::Strata::Stub& stub, const v1::GenerateRequest& request,
                                 const CallOptions& options = {}) {
  grpc::ClientContext context;
  PrepareContext(context, options);
  Generation out;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader =
      stub.Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    ++out.messages;
    out.text += response.text();
    for (const v1::GeneratedToken& token : response.tokens()) out.ids.push_back(token.id());
    if (response.has_final()) {
      out.has_final = true;
      out.final_info = response.final();
    }
  }
  out.status = reader->Finish();
  return out;
}

inline Generation CompleteCall(v1::Strata::Stub& stub, const v1::GenerateRequest& request,
                               const CallOptions& options = {}) {
  grpc::ClientContext context;
  PrepareContext(context, options);
  v1::CompleteResponse response;
  Generation out;
  out.status = stub.Complete(&context, request, &response);
  out.text = response.text();
  for (const v1::GeneratedToken& token : response.tokens()) out.ids.push_back(token.id());
  out.has_final = response.has_final();
  out.final_info = response.final();
  out.messages = 1;
  return out;
}

inline v1::GenerateRequest TextRequest(const std::string& text, int32_t max_tokens,
                                       float temperature = 0, uint64_t seed = 1) {
  v1::GenerateRequest request;
  request.set_text(text);
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_temperature(temperature);
  request.mutable_sampling()->set_seed(seed);
  return request;
}

struct HttpResponse {
  int status = 0;  // 0: no response
  std::string body;
};

// GET http://ADDRESS/PATH_AND_QUERY, HTTP/1.0, numeric IPv4 host.
inline HttpResponse HttpGet(const std::string& address, const std::string& path) {
  HttpResponse result;
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return result;
  sockaddr_in target{};
  target.sin_family = AF_INET;
  target.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &target.sin_addr) != 1) return result;
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return result;
  timeval timeout{.tv_sec = 30, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (connect(fd, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) {
    close(fd);
    return result;
  }
  std::string request = "GET ";
  request.append(path).append(" HTTP/1.0\r\nHost: ").append(address).append("\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return result;
  }
  std::string raw;
  char buffer[8192];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) raw.append(buffer, static_cast<size_t>(n));
  close(fd);
  const size_t space = raw.find(' ');
  const size_t body = raw.find("\r\n\r\n");
  if (space == std::string::npos || body == std::string::npos) return result;
  result.status = std::atoi(raw.c_str() + space + 1);
  result.body = raw.substr(body + 4);
  return result;
}

// The value of the sample `series` (a metric name with its labels, in the
// alphabetical order prometheus-cpp writes them) in a /metrics body; -1 when
// the body has none.
inline double MetricSample(const std::string& body, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = body.find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + needle.size()));
}

// The same, from a scrape of the metrics endpoint at `metrics_address`.
inline double ScrapeMetric(const std::string& metrics_address, const std::string& series) {
  return MetricSample(HttpGet(metrics_address, "/metrics").body, series);
}

// A loopback port nothing listens on right now (bound, read back, closed).
inline int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    socklen_t length = sizeof(address);
    getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_INTEGRATION_GRPC_TEST_CLIENT_H_
