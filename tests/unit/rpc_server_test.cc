// The RPC server over real loopback sockets, and the real transmission-remote 3.00 (Debian's
// transmission-cli) driving it against a fake backend.
#include "io/rpc/rpc_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/unit/fake_rpc_backend.h"

namespace torrenty::io::rpc {
namespace {

using json = nlohmann::json;

struct HttpReply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
  std::string Header(const std::string& name) const {
    const std::string key = "\r\n" + name + ": ";
    const size_t p = head.find(key);
    if (p == std::string::npos) return "";
    const size_t start = p + key.size();
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

// A blocking client with a receive timeout, so a server bug fails the test instead of hanging it.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc;
    do {
      rc = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    } while (rc != 0 && errno == EINTR);
    connected_ = rc == 0 || errno == EISCONN;
  }
  ~Client() { close(fd_); }
  bool connected() const { return connected_; }

  void Send(std::string_view data) {
    while (!data.empty()) {
      const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      data.remove_prefix(static_cast<size_t>(n));
    }
  }

  // Reads one response (head plus Content-Length body); status 0 on EOF or timeout.
  HttpReply Read() {
    HttpReply r;
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return r;
    }
    r.head = buf_.substr(0, end + 2);
    buf_.erase(0, end + 4);
    r.status = std::atoi(r.head.c_str() + 9);
    const std::string len = r.Header("Content-Length");
    const size_t n = len.empty() ? 0 : std::stoul(len);
    while (buf_.size() < n) {
      if (!Fill()) return HttpReply{};
    }
    r.body = buf_.substr(0, n);
    buf_.erase(0, n);
    return r;
  }

  // True if the server closed the connection (EOF) within the receive timeout.
  bool ReadsEof() {
    char c;
    return RecvRetrying(&c, 1) == 0;
  }

 private:
  bool Fill() {
    char tmp[65536];
    const ssize_t n = RecvRetrying(tmp, sizeof(tmp));
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  // The process's other threads (the server's ring) can interrupt a blocking recv.
  ssize_t RecvRetrying(char* buf, size_t len) {
    ssize_t n;
    do {
      n = recv(fd_, buf, len, 0);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

std::string Post(const std::string& body, const std::string& extra_headers = "",
                 const std::string& host = "127.0.0.1") {
  return absl::StrCat("POST /transmission/rpc HTTP/1.1\r\nHost: ", host,
                      "\r\nContent-Type: application/json\r\n", extra_headers,
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

class RpcServerTest : public ::testing::Test {
 protected:
  void StartServer(RpcServerOptions options = {}) {
    options.port = 0;
    server_ = std::make_unique<RpcServer>(&backend_, options);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_NE(server_->port(), 0);
  }
  std::string Sid() const {
    return absl::StrCat("X-Transmission-Session-Id: ", server_->session_id(), "\r\n");
  }

  FakeRpcBackend backend_;
  std::unique_ptr<RpcServer> server_;
};

const std::string kGet = R"({"method":"torrent-get","arguments":{"fields":["id","name"]}})";

TEST_F(RpcServerTest, SessionIdHandshake) {
  StartServer();
  Client c(server_->port());
  ASSERT_TRUE(c.connected());
  c.Send(Post(kGet));
  HttpReply r = c.Read();
  EXPECT_EQ(r.status, 409);
  const std::string sid = r.Header("X-Transmission-Session-Id");
  EXPECT_EQ(sid, server_->session_id());
  EXPECT_GE(sid.size(), 32u);
  EXPECT_EQ(backend_.GetCalls(), 0);  // the backend never saw the request

  c.Send(Post(kGet, "X-Transmission-Session-Id: wrong\r\n"));
  EXPECT_EQ(c.Read().status, 409);

  c.Send(Post(kGet, Sid()));
  r = c.Read();
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Type"), "application/json; charset=UTF-8");
  const json j = json::parse(r.body);
  EXPECT_EQ(j["result"], "success");
  EXPECT_EQ(j["arguments"]["torrents"][1]["name"], "beta");
}

TEST_F(RpcServerTest, RpcPathsMetricsAndNotFound) {
  StartServer();
  Client c(server_->port());
  // transmission-remote posts to the path with a trailing slash.
  c.Send("GET /transmission/rpc/ HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(c.Read().status, 409);
  c.Send(absl::StrCat("GET /transmission/rpc HTTP/1.1\r\nHost: localhost\r\n", Sid(), "\r\n"));
  EXPECT_EQ(c.Read().status, 405);
  c.Send(absl::StrCat("POST /transmission/rpc/ HTTP/1.1\r\nHost: localhost:9091\r\n", Sid(),
                      "Content-Length: ", kGet.size(), "\r\n\r\n", kGet));
  EXPECT_EQ(c.Read().status, 200);
  c.Send("GET /metrics HTTP/1.1\r\nHost: [::1]:9091\r\n\r\n");
  HttpReply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, backend_.Metrics());
  c.Send("GET /elsewhere HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(c.Read().status, 404);
}

TEST_F(RpcServerTest, HostAllowList) {
  RpcServerOptions o;
  o.allowed_hosts = {"Torrents.Example.Org"};
  StartServer(o);
  auto status_for = [&](const std::string& host) {
    Client c(server_->port());
    c.Send(absl::StrCat("GET /metrics HTTP/1.1\r\nHost: ", host, "\r\n\r\n"));
    return c.Read().status;
  };
  EXPECT_EQ(status_for("localhost"), 200);
  EXPECT_EQ(status_for("localhost.:9091"), 200);
  EXPECT_EQ(status_for("127.0.0.1:9091"), 200);
  EXPECT_EQ(status_for("[::1]"), 200);
  EXPECT_EQ(status_for("torrents.example.org:9091"), 200);
  EXPECT_EQ(status_for("evil.example"), 421);
  EXPECT_EQ(status_for("evil.example:9091"), 421);
  EXPECT_EQ(status_for("localhost.evil.example"), 421);
  EXPECT_EQ(status_for("[::1"), 421);
  EXPECT_EQ(status_for("a:b:c"), 421);
  // An absolute-form target's host must pass too, and so must the Host header.
  {
    Client c(server_->port());
    c.Send("GET http://localhost:1/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    EXPECT_EQ(c.Read().status, 200);
    c.Send("GET http://evil.example/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    EXPECT_EQ(c.Read().status, 421);
    c.Send("GET http://localhost/metrics HTTP/1.1\r\nHost: evil.example\r\n\r\n");
    EXPECT_EQ(c.Read().status, 421);
  }
  // The rebinding check comes before the CSRF handshake.
  Client c(server_->port());
  c.Send(Post(kGet, "", "evil.example"));
  EXPECT_EQ(c.Read().status, 421);
}

TEST_F(RpcServerTest, BasicAuth) {
  RpcServerOptions o;
  o.username = "user";
  o.password = "pa:ss";
  StartServer(o);
  Client c(server_->port());
  c.Send(Post(kGet, Sid()));
  HttpReply r = c.Read();
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.Header("WWW-Authenticate"), "Basic realm=\"Transmission\"");
  const std::string wrong =
      absl::StrCat("Authorization: Basic ", absl::Base64Escape("user:pa"), "\r\n");
  c.Send(Post(kGet, wrong + Sid()));
  EXPECT_EQ(c.Read().status, 401);
  c.Send(Post(kGet, "Authorization: Basic !!!\r\n" + Sid()));
  EXPECT_EQ(c.Read().status, 401);
  const std::string right =
      absl::StrCat("Authorization: basic ", absl::Base64Escape("user:pa:ss"), "\r\n");
  c.Send(Post(kGet, right));
  EXPECT_EQ(c.Read().status, 409);
  c.Send(Post(kGet, right + Sid()));
  EXPECT_EQ(c.Read().status, 200);
  c.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(c.Read().status, 401);
  EXPECT_EQ(backend_.GetCalls(), 1);
}

TEST_F(RpcServerTest, PasswordGuessingIsThrottled) {
  RpcServerOptions o;
  o.username = "user";
  o.password = "secret";
  StartServer(o);
  Client c(server_->port());
  const std::string right =
      absl::StrCat("Authorization: Basic ", absl::Base64Escape("user:secret"), "\r\n");
  // Requests without credentials (a client's first probe) cost nothing.
  for (int i = 0; i < 20; ++i) {
    c.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    ASSERT_EQ(c.Read().status, 401);
  }
  int wrong = 0;
  HttpReply r;
  do {
    c.Send(absl::StrCat("GET /metrics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic ",
                        absl::Base64Escape(absl::StrCat("user:guess", wrong)), "\r\n\r\n"));
    r = c.Read();
    ++wrong;
  } while (r.status == 401 && wrong < 100);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.Header("Retry-After"), "1");
  EXPECT_GE(wrong, 10);
  EXPECT_LE(wrong, 12);
  // The right password waits too, then works once a token is back.
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    c.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n" + right + "\r\n");
    status = c.Read().status;
    if (status != 429) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 200);
}

TEST(RpcServerStart, RefusesNonLoopbackWithoutAuth) {
  FakeRpcBackend backend;
  RpcServerOptions o;
  o.port = 0;
  o.bind_address = "0.0.0.0";
  RpcServer s(&backend, o);
  const absl::Status st = s.Start();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(st.message().find("without authentication"), std::string::npos);

  o.username = "u";
  o.password = "p";
  RpcServer with_auth(&backend, o);
  EXPECT_TRUE(with_auth.Start().ok());
  EXPECT_EQ(with_auth.Start().code(), absl::StatusCode::kFailedPrecondition);
  with_auth.Stop();
  with_auth.Stop();

  o.bind_address = "not-an-ip";
  RpcServer bad(&backend, o);
  EXPECT_EQ(bad.Start().code(), absl::StatusCode::kInvalidArgument);

  RpcServerOptions v6;
  v6.port = 0;
  v6.bind_address = "[::1]";
  RpcServer loop6(&backend, v6);
  EXPECT_TRUE(loop6.Start().ok());
}

TEST_F(RpcServerTest, BodyLimitAndMalformedRequests) {
  RpcServerOptions o;
  o.max_body_bytes = 1024;
  StartServer(o);
  {
    Client c(server_->port());
    c.Send(absl::StrCat("POST /transmission/rpc HTTP/1.1\r\nHost: localhost\r\n", Sid(),
                        "Content-Length: 1025\r\n\r\n"));
    EXPECT_EQ(c.Read().status, 413);
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    // The whole oversized upload arrives at once: the 413 must still reach the client.
    Client c(server_->port());
    c.Send(absl::StrCat("POST /transmission/rpc HTTP/1.1\r\nHost: localhost\r\n", Sid(),
                        "Content-Length: 300000\r\n\r\n", std::string(300000, 'x')));
    EXPECT_EQ(c.Read().status, 413);
  }
  {
    Client c(server_->port());
    c.Send("BLAH\r\n\r\n");
    EXPECT_EQ(c.Read().status, 400);
    EXPECT_TRUE(c.ReadsEof());
  }
  {
    Client c(server_->port());
    c.Send("POST /transmission/rpc HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_EQ(c.Read().status, 501);
  }
  {
    Client c(server_->port());
    c.Send(Post("{not json", Sid()));
    const HttpReply r = c.Read();
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse(r.body)["result"], "malformed JSON request");
  }
}

TEST_F(RpcServerTest, KeepAlivePipeliningAndConnectionClose) {
  StartServer();
  Client c(server_->port());
  c.Send(Post(kGet, Sid()) + Post(kGet, Sid()) +
         "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(c.Read().status, 200);
  EXPECT_EQ(c.Read().status, 200);
  EXPECT_EQ(c.Read().status, 200);
  c.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  const HttpReply r = c.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.Header("Connection"), "close");
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(RpcServerTest, ExpectContinue) {
  StartServer();
  {
    Client c(server_->port());
    c.Send(absl::StrCat("POST /transmission/rpc HTTP/1.1\r\nHost: localhost\r\n", Sid(),
                        "Expect: 100-continue\r\nContent-Length: ", kGet.size(), "\r\n\r\n"));
    EXPECT_EQ(c.Read().status, 100);
    c.Send(kGet);
    EXPECT_EQ(c.Read().status, 200);
  }
  {
    // Without the session id the client is told before it uploads the body.
    Client c(server_->port());
    c.Send(
        "POST /transmission/rpc HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\n"
        "Content-Length: 100000\r\n\r\n");
    EXPECT_EQ(c.Read().status, 409);
    EXPECT_TRUE(c.ReadsEof());
  }
}

TEST_F(RpcServerTest, IdleConnectionsAreClosed) {
  RpcServerOptions o;
  o.idle_timeout = absl::Milliseconds(200);
  StartServer(o);
  Client c(server_->port());
  c.Send("GET /metrics HTTP/1.1\r\nHost: local");  // a request that never completes
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(c.ReadsEof());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST_F(RpcServerTest, ConnectionCap) {
  RpcServerOptions o;
  o.max_connections = 2;
  StartServer(o);
  Client a(server_->port()), b(server_->port());
  a.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  b.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(a.Read().status, 200);
  EXPECT_EQ(b.Read().status, 200);
  Client c(server_->port());
  EXPECT_TRUE(c.ReadsEof());
}

TEST_F(RpcServerTest, StopClosesOpenConnections) {
  StartServer();
  Client c(server_->port());
  c.Send("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  EXPECT_EQ(c.Read().status, 200);
  server_->Stop();
  EXPECT_TRUE(c.ReadsEof());
  Client after(server_->port());
  EXPECT_FALSE(after.connected());
}

// --- the real transmission-remote ---------------------------------------------------------------

constexpr const char* kRemote = "/usr/bin/transmission-remote";

struct RemoteResult {
  int exit_code = -1;
  std::string output;
};

class TransmissionRemoteTest : public RpcServerTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(access(kRemote, X_OK), 0)
        << kRemote << " is missing: install Debian's transmission-cli (tools/setup does)";
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("torrenty_rpc_remote_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs transmission-remote with a clean environment (no ~/.netrc, no proxy unless asked),
  // bounded by timeout(1).
  RemoteResult Remote(const std::string& args, const std::string& env = "") {
    const std::string cmd = absl::StrCat("env -i HOME=", dir_.string(), " ", env, " timeout 30 ",
                                         kRemote, " ", args, " 2>&1");
    RemoteResult r;
    FILE* p = popen(cmd.c_str(), "r");
    if (p == nullptr) return r;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), p)) > 0) r.output.append(buf, n);
    const int st = pclose(p);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
  }
  std::string Url() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  std::filesystem::path dir_;
};

TEST_F(TransmissionRemoteTest, ListInfoFilesAndSession) {
  StartServer();
  RemoteResult r = Remote(Url() + " -l");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alpha"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("beta"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("66%"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Sum:"), std::string::npos) << r.output;

  r = Remote(Url() + " -t 1 -i");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("Id: 1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Name: alpha"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Hash: " + std::string(40, 'a')), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Location: /data"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Peers: connected to 3, uploading to 1, downloading from 2"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Comment: a comment"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Download Limit: Unlimited"), std::string::npos) << r.output;

  r = Remote(Url() + " -t 1 -f");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alpha (2 files):"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("alpha/two.bin"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("High     No"), std::string::npos) << r.output;

  r = Remote(Url() + " -st");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("CURRENT SESSION"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Started 3 times"), std::string::npos) << r.output;

  r = Remote(Url() + " -si");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("RPC version: 16"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Download directory: /data"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Download speed limit: Unlimited"), std::string::npos) << r.output;
}

TEST_F(TransmissionRemoteTest, AddStartStopRemove) {
  StartServer();
  // Over 1 KiB, so curl sends "Expect: 100-continue" before the body.
  std::string torrent = "d8:announce30:http://127.0.0.1:6969/announce7:comment3000:";
  torrent += std::string(3000, 'x');
  torrent += "4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:";
  torrent += std::string(20, 'h');
  torrent += "ee";
  const std::string file = (dir_ / "new.torrent").string();
  std::ofstream(file, std::ios::binary) << torrent;

  RemoteResult r = Remote(Url() + " -a " + file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("responded: \"success\""), std::string::npos) << r.output;
  const std::vector<AddRequest> adds = backend_.Adds();
  ASSERT_EQ(adds.size(), 1u);
  EXPECT_EQ(adds[0].metainfo, torrent);
  EXPECT_FALSE(adds[0].paused);

  r = Remote(Url() + " -t 1 -S");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Remote(Url() + " -t 1 -s");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Remote(Url() + " -t 1 -r");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Remote(Url() + " -t 2 --remove-and-delete");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(backend_.Calls(),
            (std::vector<std::string>{"stop 1", "start 1", "remove 1", "remove+delete 2"}));

  // An id that is gone: an error, and nothing is done.
  r = Remote(Url() + " -t 2 -S");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("no torrent with id 2"), std::string::npos) << r.output;
  EXPECT_EQ(backend_.Calls().size(), 4u);
}

TEST_F(TransmissionRemoteTest, SpeedLimits) {
  StartServer();
  RemoteResult r = Remote(Url() + " -d 100");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Remote(Url() + " -u 200");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Remote(Url() + " -as");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = Remote(Url() + " -t 1 -d 50 -u 60");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto session_sets = backend_.SessionSets();
  const auto sets = backend_.Sets();
  ASSERT_EQ(session_sets.size(), 3u);
  EXPECT_EQ(session_sets[0].speed_limit_down, 100 * 1024);
  EXPECT_EQ(session_sets[0].speed_limit_down_enabled, true);
  EXPECT_EQ(session_sets[1].speed_limit_up, 200 * 1024);
  EXPECT_EQ(session_sets[1].speed_limit_up_enabled, true);
  EXPECT_EQ(session_sets[2].alt_speed_enabled, true);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].first, std::vector<int>{1});
  EXPECT_EQ(sets[0].second.download_limit, 50 * 1024);
  EXPECT_EQ(sets[0].second.download_limited, true);
  EXPECT_EQ(sets[0].second.upload_limit, 60 * 1024);

  r = Remote(Url() + " -si");
  EXPECT_NE(r.output.find("Enabled limit: 100 kB/s"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Enabled limit: 200 kB/s"), std::string::npos) << r.output;
}

TEST_F(TransmissionRemoteTest, BasicAuth) {
  RpcServerOptions o;
  o.username = "user";
  o.password = "secret";
  StartServer(o);
  RemoteResult r = Remote(Url() + " -n user:secret -l");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alpha"), std::string::npos) << r.output;
  r = Remote(Url() + " -n user:wrong -l");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("alpha"), std::string::npos) << r.output;
  r = Remote(Url() + " -l");
  EXPECT_NE(r.exit_code, 0) << r.output;
}

TEST_F(TransmissionRemoteTest, WrongHostIs421) {
  StartServer();
  // Through our server as its HTTP proxy, curl sends the Host of the URL without resolving it:
  // what a browser sends after a DNS rebinding.
  RemoteResult r =
      Remote(absl::StrCat("http://rebind.example:", server_->port(), "/transmission -l"),
             absl::StrCat("http_proxy=http://127.0.0.1:", server_->port()));
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("421"), std::string::npos) << r.output;
  EXPECT_EQ(backend_.GetCalls(), 0);
  // The same route with a name we know works, so the 421 above was the Host check.
  r = Remote(absl::StrCat("http://localhost:", server_->port(), "/transmission -l"),
             absl::StrCat("http_proxy=http://127.0.0.1:", server_->port()));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("alpha"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace torrenty::io::rpc
