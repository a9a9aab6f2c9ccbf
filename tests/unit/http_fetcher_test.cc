// Tests for io/tracker/http_fetcher.h against tiny blocking HTTP servers on 127.0.0.1.
#include "io/tracker/http_fetcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace torrenty::io {
namespace {

using ::testing::HasSubstr;

// Listens on 127.0.0.1:<ephemeral>. Returns the fd and fills `port`.
int ListenLocal(uint16_t* port, bool do_listen = true) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  if (do_listen) {
    EXPECT_EQ(listen(fd, 128), 0);
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *port = ntohs(addr.sin_port);
  return fd;
}

// Answers each connection with handler(request head), one request per connection.
class TestServer {
 public:
  using Handler = std::function<std::string(const std::string& request)>;
  explicit TestServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ListenLocal(&port_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~TestServer() {
    shutdown(listen_fd_, SHUT_RDWR);  // Wakes the blocking accept().
    thread_.join();
    close(listen_fd_);
  }
  uint16_t port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    while (true) {
      int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = recv(conn, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(request);
      }
      const std::string response = handler_(request);
      size_t sent = 0;
      while (sent < response.size()) {
        // MSG_NOSIGNAL: the client may hang up early (oversized body) and SIGPIPE would kill us.
        ssize_t n = send(conn, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) break;
        sent += static_cast<size_t>(n);
      }
      close(conn);
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mu_;                      // std::mutex so ThreadSanitizer sees it
  std::vector<std::string> requests_;  // guarded by mu_
};

// HTTP/1.1 with keep-alive, one thread per connection, each response after `latency_ms` (a slow
// tracker, so requests overlap). Counts connections, and in `open` (which several servers may
// share, to count over all of them) the most requests being served at once: each is on a
// connection of its own, so that is a lower bound of the client's open connections. (Counting
// open sockets here would race: the client's close of an idle connection to open another may
// reach this side after the new connection's accept.)
class KeepAliveServer {
 public:
  struct Open {
    std::mutex mu;
    int now = 0;
    int max = 0;
  };
  KeepAliveServer(int latency_ms, std::shared_ptr<Open> open)
      : latency_ms_(latency_ms), open_(std::move(open)) {
    listen_fd_ = ListenLocal(&port_);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~KeepAliveServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    accept_thread_.join();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int fd : conns_) shutdown(fd, SHUT_RDWR);
    }
    for (std::thread& t : threads_) t.join();
    for (int fd : conns_) close(fd);
    close(listen_fd_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(conns_.size());
  }

 private:
  void AcceptLoop() {
    while (true) {
      const int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.push_back(conn);
      threads_.emplace_back([this, conn] { Serve(conn); });
    }
  }
  void Serve(int conn) {
    std::string buffered;
    char buf[4096];
    bool open = true;
    while (open) {
      size_t end;
      while ((end = buffered.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t n = recv(conn, buf, sizeof(buf), 0);
        if (n <= 0) {
          open = false;
          break;
        }
        buffered.append(buf, static_cast<size_t>(n));
      }
      if (!open) break;
      buffered.erase(0, end + 4);
      {
        std::lock_guard<std::mutex> lock(open_->mu);
        open_->max = std::max(open_->max, ++open_->now);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(latency_ms_));
      const std::string body = "d8:intervali1800e5:peers0:e";
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      // Counted down before the response leaves: once the client has it, it may start the next
      // request on another connection, and counting down after send() raced with that.
      {
        std::lock_guard<std::mutex> lock(open_->mu);
        --open_->now;
      }
      const bool sent = send(conn, response.data(), response.size(), MSG_NOSIGNAL) ==
                        static_cast<ssize_t>(response.size());
      if (!sent) break;
    }
  }

  int latency_ms_;
  std::shared_ptr<Open> open_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::vector<int> conns_;            // guarded by mu_
  std::vector<std::thread> threads_;  // guarded by mu_
};

std::string Response(const std::string& status, const std::string& body,
                     const std::string& extra_headers = "") {
  return "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
}

// Waits on notify_fd with poll() until `count` results arrived or `timeout_ms` passed.
std::map<uint64_t, HttpResult> WaitForResults(HttpFetcher& fetcher, size_t count,
                                              int timeout_ms = 10'000) {
  std::map<uint64_t, HttpResult> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{fetcher.notify_fd(), POLLIN, 0};
    if (poll(&pfd, 1, 100) <= 0) continue;
    uint64_t counter = 0;
    EXPECT_EQ(read(fetcher.notify_fd(), &counter, sizeof(counter)), 8);
    std::vector<HttpResult> results;
    fetcher.TakeResults(&results);
    for (HttpResult& r : results) out.emplace(r.id, std::move(r));
  }
  return out;
}

std::unique_ptr<HttpFetcher> MakeFetcher() {
  absl::StatusOr<std::unique_ptr<HttpFetcher>> f = HttpFetcher::Create();
  EXPECT_TRUE(f.ok()) << f.status();
  return *std::move(f);
}

TEST(HttpFetcherTest, FetchesCannedBody) {
  TestServer server([](const std::string&) { return Response("200 OK", "d8:intervali60ee"); });
  auto fetcher = MakeFetcher();
  fetcher->Get(7, server.url("/announce?info_hash=%00%ff&x=1"), 5000);
  auto results = WaitForResults(*fetcher, 1);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_TRUE(results.at(7).body.ok()) << results.at(7).body.status();
  EXPECT_EQ(*results.at(7).body, "d8:intervali60ee");
  ASSERT_EQ(server.requests().size(), 1u);
  EXPECT_THAT(server.requests()[0], HasSubstr("GET /announce?info_hash=%00%ff&x=1 HTTP/1.1\r\n"));
  EXPECT_THAT(server.requests()[0], HasSubstr("User-Agent: Torrenty/0.1\r\n"));
}

TEST(HttpFetcherTest, ManyConcurrentRequests) {
  TestServer server([](const std::string& req) {
    const size_t start = req.find("/n") + 2;
    return Response("200 OK", req.substr(start, req.find(' ', start) - start));
  });
  auto fetcher = MakeFetcher();
  for (uint64_t i = 0; i < 20; ++i) fetcher->Get(i, server.url("/n" + std::to_string(i)), 5000);
  auto results = WaitForResults(*fetcher, 20);
  ASSERT_EQ(results.size(), 20u);
  for (uint64_t i = 0; i < 20; ++i) {
    ASSERT_TRUE(results.at(i).body.ok()) << results.at(i).body.status();
    EXPECT_EQ(*results.at(i).body, std::to_string(i));
  }
}

TEST(HttpFetcherTest, AnnouncesToOneHostReuseItsConnection) {
  auto open = std::make_shared<KeepAliveServer::Open>();
  KeepAliveServer server(0, open);
  auto fetcher = MakeFetcher();
  for (uint64_t i = 0; i < 20; ++i) {
    fetcher->Get(i, server.url("/announce?n=" + std::to_string(i)), 5000);
    auto results = WaitForResults(*fetcher, 1);
    ASSERT_EQ(results.size(), 1u);
    ASSERT_TRUE(results.at(i).body.ok()) << results.at(i).body.status();
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpFetcherTest, ConnectionsPerHostAreBounded) {
  auto open = std::make_shared<KeepAliveServer::Open>();
  KeepAliveServer server(20, open);
  HttpFetcher::Options options;
  options.max_host_connections = 2;
  absl::StatusOr<std::unique_ptr<HttpFetcher>> fetcher = HttpFetcher::Create(options);
  ASSERT_TRUE(fetcher.ok()) << fetcher.status();
  for (uint64_t i = 0; i < 40; ++i) (*fetcher)->Get(i, server.url("/announce"), 10'000);
  auto results = WaitForResults(**fetcher, 40, 20'000);
  ASSERT_EQ(results.size(), 40u);
  for (const auto& [id, r] : results) ASSERT_TRUE(r.body.ok()) << id << ": " << r.body.status();
  // 40 overlapping requests over at most two connections, reused.
  EXPECT_LE(server.connections(), 2);
  std::lock_guard<std::mutex> lock(open->mu);
  EXPECT_LE(open->max, 2);
}

TEST(HttpFetcherTest, ConnectionsOverAllHostsAreBounded) {
  auto open = std::make_shared<KeepAliveServer::Open>();
  KeepAliveServer a(20, open);
  KeepAliveServer b(20, open);
  HttpFetcher::Options options;
  options.max_host_connections = 4;
  options.max_total_connections = 3;
  absl::StatusOr<std::unique_ptr<HttpFetcher>> fetcher = HttpFetcher::Create(options);
  ASSERT_TRUE(fetcher.ok()) << fetcher.status();
  for (uint64_t i = 0; i < 40; ++i) {
    (*fetcher)->Get(i, (i % 2 ? a : b).url("/announce"), 10'000);
  }
  auto results = WaitForResults(**fetcher, 40, 20'000);
  ASSERT_EQ(results.size(), 40u);
  for (const auto& [id, r] : results) ASSERT_TRUE(r.body.ok()) << id << ": " << r.body.status();
  std::lock_guard<std::mutex> lock(open->mu);
  EXPECT_LE(open->max, 3);
}

TEST(HttpFetcherTest, Non2xxIsAnErrorWithTheCode) {
  TestServer server([](const std::string&) { return Response("404 Not Found", "nope"); });
  auto fetcher = MakeFetcher();
  fetcher->Get(1, server.url("/missing"), 5000);
  auto results = WaitForResults(*fetcher, 1);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results.at(1).body.ok());
  EXPECT_THAT(results.at(1).body.status().message(), HasSubstr("404"));
}

TEST(HttpFetcherTest, FollowsRedirectsButNotForever) {
  TestServer server([](const std::string& req) {
    if (req.starts_with("GET /final ")) return Response("200 OK", "done");
    if (req.starts_with("GET /r ")) return Response("302 Found", "", "Location: /final\r\n");
    if (req.starts_with("GET /file ")) {
      return Response("302 Found", "", "Location: file:///etc/passwd\r\n");
    }
    return Response("302 Found", "", "Location: /loop\r\n");
  });
  auto fetcher = MakeFetcher();
  fetcher->Get(1, server.url("/r"), 5000);
  fetcher->Get(2, server.url("/loop"), 5000);
  fetcher->Get(3, server.url("/file"), 5000);
  auto results = WaitForResults(*fetcher, 3);
  ASSERT_EQ(results.size(), 3u);
  ASSERT_TRUE(results.at(1).body.ok()) << results.at(1).body.status();
  EXPECT_EQ(*results.at(1).body, "done");
  EXPECT_FALSE(results.at(2).body.ok());
  EXPECT_FALSE(results.at(3).body.ok());
}

TEST(HttpFetcherTest, OversizedBodyIsRefused) {
  const std::string big(HttpFetcher::kMaxBodyBytes + 1, 'x');
  TestServer server([&](const std::string& req) {
    // Without Content-Length the cap must be enforced while streaming.
    if (req.starts_with("GET /stream "))
      return "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + big;
    return Response("200 OK", big);
  });
  auto fetcher = MakeFetcher();
  fetcher->Get(1, server.url("/stream"), 10'000);
  fetcher->Get(2, server.url("/sized"), 10'000);
  auto results = WaitForResults(*fetcher, 2);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results.at(1).body.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(results.at(2).body.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(HttpFetcherTest, SilentTrackerTimesOut) {
  uint16_t port = 0;
  int fd = ListenLocal(&port);  // The kernel completes the handshake; nobody ever answers.
  auto fetcher = MakeFetcher();
  const auto start = std::chrono::steady_clock::now();
  fetcher->Get(1, "http://127.0.0.1:" + std::to_string(port) + "/announce", 300);
  auto results = WaitForResults(*fetcher, 1);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results.at(1).body.status().code(), absl::StatusCode::kDeadlineExceeded)
      << results.at(1).body.status();
  EXPECT_GE(elapsed, std::chrono::milliseconds(250));
  EXPECT_LT(elapsed, std::chrono::seconds(2));  // 300 ms asked; room for sanitizer builds
  close(fd);
}

TEST(HttpFetcherTest, ConnectionRefusedIsAnError) {
  uint16_t port = 0;
  close(ListenLocal(&port, /*do_listen=*/false));  // A port with nobody behind it.
  auto fetcher = MakeFetcher();
  fetcher->Get(1, "http://127.0.0.1:" + std::to_string(port) + "/announce", 5000);
  auto results = WaitForResults(*fetcher, 1);
  ASSERT_EQ(results.size(), 1u);
  ASSERT_FALSE(results.at(1).body.ok());
  EXPECT_EQ(results.at(1).body.status().code(), absl::StatusCode::kUnavailable)
      << results.at(1).body.status();
}

TEST(HttpFetcherTest, NonHttpUrlIsRejected) {
  auto fetcher = MakeFetcher();
  fetcher->Get(1, "file:///etc/passwd", 5000);
  fetcher->Get(2, "not a url", 5000);
  auto results = WaitForResults(*fetcher, 2);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_FALSE(results.at(1).body.ok());
  EXPECT_FALSE(results.at(2).body.ok());
}

TEST(HttpFetcherTest, DestructorDoesNotWaitForInFlightRequests) {
  uint16_t port = 0;
  int fd = ListenLocal(&port);
  auto fetcher = MakeFetcher();
  fetcher->Get(1, "http://127.0.0.1:" + std::to_string(port) + "/announce", 60'000);
  // In flight: its connection is waiting in our backlog (never accepted, never answered).
  pollfd pending{.fd = fd, .events = POLLIN, .revents = 0};
  ASSERT_EQ(poll(&pending, 1, 5000), 1) << "the request never connected";
  const auto start = std::chrono::steady_clock::now();
  fetcher.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  close(fd);
}

}  // namespace
}  // namespace torrenty::io
