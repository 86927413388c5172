// A minimal HTTP/1.1 client over a loopback socket for the OpenAI API
// tests: one request per connection, the response read until the server
// closes it. Raw bytes are kept, so a test can watch a server-sent-event
// stream arrive (each event is one chunk: its JSON is never split).
#ifndef STRATA_TESTS_INTEGRATION_HTTP_TEST_CLIENT_H_
#define STRATA_TESTS_INTEGRATION_HTTP_TEST_CLIENT_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string>

namespace strata::testing {

class HttpConnection {
 public:
  HttpConnection() = default;
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;
  ~HttpConnection() {
    if (fd_ >= 0) close(fd_);
  }

  // Connects to the numeric IPv4 `address` (host:port) and sends one request.
  bool Send(const std::string& address, const std::string& method, const std::string& path,
            const std::string& body = "", const std::map<std::string, std::string>& headers = {}) {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) return false;
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
    if (inet_pton(AF_INET, address.substr(0, colon).c_str(), &target.sin_addr) != 1) return false;
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    timeval timeout{.tv_sec = 120, .tv_usec = 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (connect(fd_, reinterpret_cast<sockaddr*>(&target), sizeof(target)) != 0) return false;
    std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + address + "\r\n";
    for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
    if (!body.empty() || method == "POST") {
      request +=
          "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\n";
    }
    request += "Connection: close\r\n\r\n" + body;
    return send(fd_, request.data(), request.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(request.size());
  }

  // Reads what has arrived (blocking until something does); false at the end.
  bool ReadSome() {
    char buffer[8192];
    const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) return false;
    raw_.append(buffer, static_cast<size_t>(n));
    return true;
  }
  void ReadAll() {
    while (ReadSome()) {
    }
  }

  const std::string& raw() const { return raw_; }
  // The status code of the response read so far (0: none yet).
  int status() const {
    const size_t space = raw_.find(' ');
    return space == std::string::npos ? 0 : std::atoi(raw_.c_str() + space + 1);
  }
  // Everything after the headers (chunk framing included for a stream).
  std::string body() const {
    const size_t at = raw_.find("\r\n\r\n");
    return at == std::string::npos ? "" : raw_.substr(at + 4);
  }

 private:
  int fd_ = -1;
  std::string raw_;
};

struct HttpResult {
  int status = 0;
  std::string body;
};

// One request, read to the end.
inline HttpResult HttpCall(const std::string& address, const std::string& method,
                           const std::string& path, const std::string& body = "",
                           const std::map<std::string, std::string>& headers = {}) {
  HttpConnection connection;
  if (!connection.Send(address, method, path, body, headers)) return {};
  connection.ReadAll();
  return {connection.status(), connection.body()};
}

}  // namespace strata::testing

#endif  // STRATA_TESTS_INTEGRATION_HTTP_TEST_CLIENT_H_
