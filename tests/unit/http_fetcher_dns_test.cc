// HttpFetcher resolves a tracker's name once per DNS cache timeout, however many requests go to
// it and even when every request needs a new connection. Lookups are counted by interposing
// getaddrinfo (the one libcurl's threaded resolver calls) in this test executable only: names
// ending in ".test" are counted and answered with 127.0.0.1, others go to the real resolver.
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "io/tracker/http_fetcher.h"

namespace {

std::atomic<int> test_lookups{0};

using GetAddrInfoFn = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

GetAddrInfoFn RealGetAddrInfo() {
  static const auto real = reinterpret_cast<GetAddrInfoFn>(dlsym(RTLD_NEXT, "getaddrinfo"));
  return real;
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints,
                           addrinfo** res) {
  if (node != nullptr && std::string_view(node).ends_with(".test")) {
    test_lookups.fetch_add(1);
    return RealGetAddrInfo()("127.0.0.1", service, hints, res);
  }
  return RealGetAddrInfo()(node, service, hints, res);
}

namespace torrenty::io {
namespace {

// Answers each connection once and closes it, so every request opens a new connection.
class ClosingServer {
 public:
  ClosingServer() {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_, 128), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ClosingServer() {
    shutdown(fd_, SHUT_RDWR);
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void Serve() {
    while (true) {
      const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      connections_.fetch_add(1);
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        const ssize_t n = recv(conn, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      [[maybe_unused]] ssize_t sent = send(conn, response.data(), response.size(), MSG_NOSIGNAL);
      close(conn);
    }
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

std::vector<HttpResult> WaitForResult(HttpFetcher& fetcher) {
  std::vector<HttpResult> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (out.empty() && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fetcher.notify_fd(), POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    uint64_t counter = 0;
    EXPECT_EQ(read(fetcher.notify_fd(), &counter, sizeof(counter)), 8);
    fetcher.TakeResults(&out);
  }
  return out;
}

TEST(HttpFetcherDnsTest, OneLookupPerHostAcrossRequests) {
  ClosingServer server;
  absl::StatusOr<std::unique_ptr<HttpFetcher>> fetcher = HttpFetcher::Create();
  ASSERT_TRUE(fetcher.ok()) << fetcher.status();
  const std::string url = "http://tracker.test:" + std::to_string(server.port()) + "/announce";
  for (uint64_t i = 0; i < 10; ++i) {
    (*fetcher)->Get(i, url, 5000);
    std::vector<HttpResult> results = WaitForResult(**fetcher);
    ASSERT_EQ(results.size(), 1u);
    ASSERT_TRUE(results[0].body.ok()) << results[0].body.status();
  }
  EXPECT_EQ(server.connections(), 10);  // A new connection each time...
  EXPECT_EQ(test_lookups.load(), 1);    // ...and still one lookup.
}

TEST(HttpFetcherDnsTest, EveryRequestLooksUpWithTheCacheOff) {
  // A zero timeout turns the cache off: this checks that the counting sees every lookup.
  ClosingServer server;
  HttpFetcher::Options options;
  options.dns_cache_timeout_s = 0;
  absl::StatusOr<std::unique_ptr<HttpFetcher>> fetcher = HttpFetcher::Create(options);
  ASSERT_TRUE(fetcher.ok()) << fetcher.status();
  const int before = test_lookups.load();
  const std::string url = "http://other.test:" + std::to_string(server.port()) + "/announce";
  for (uint64_t i = 0; i < 3; ++i) {
    (*fetcher)->Get(i, url, 5000);
    std::vector<HttpResult> results = WaitForResult(**fetcher);
    ASSERT_EQ(results.size(), 1u);
    ASSERT_TRUE(results[0].body.ok()) << results[0].body.status();
  }
  EXPECT_EQ(test_lookups.load() - before, 3);
}

}  // namespace
}  // namespace torrenty::io
