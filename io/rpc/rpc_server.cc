#include "io/rpc/rpc_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <list>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/rpc/http_request.h"
#include "io/ring/ring.h"
#include "io/rpc/transmission_rpc.h"

namespace torrenty::io::rpc {
namespace {

namespace http = engine::http;
using Clock = std::chrono::steady_clock;

constexpr std::string_view kSessionIdHeader = "X-Transmission-Session-Id";
constexpr size_t kRecvChunk = 16 * 1024;
constexpr int kAcceptRetryMs = 100;
constexpr int kLingerMs = 2000;
constexpr double kAuthGuessBurst = 10;
constexpr double kAuthGuessesPerSecond = 1;

// Compares without an early exit, so response timing does not reveal how much of a secret matched.
// Debian's abseil has its own string_view type.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

absl::StatusOr<std::string> RandomToken() {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  unsigned char bytes[48];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    const ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, "getrandom");
    }
    got += static_cast<size_t>(n);
  }
  std::string token;
  for (const unsigned char b : bytes) token.push_back(kAlphabet[b % 62]);
  return token;
}

std::string StripBrackets(std::string_view s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  return std::string(s);
}

bool IsIpLiteral(const std::string& s) {
  in_addr a4{};
  in6_addr a6{};
  return inet_pton(AF_INET, s.c_str(), &a4) == 1 || inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

// The host part of a Host header ("name", "name:port", "[v6]:port"), lowercased, without a
// trailing dot; nullopt if malformed.
std::optional<std::string> HostName(std::string_view host) {
  std::string_view name = host;
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    name = host.substr(1, close - 1);
    const std::string_view rest = host.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return std::nullopt;
  } else {
    const size_t colon = host.find(':');
    if (colon != std::string_view::npos) {
      if (host.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
      name = host.substr(0, colon);
    }
  }
  if (name.empty()) return std::nullopt;
  std::string out = absl::AsciiStrToLower(AV(name));
  if (out.size() > 1 && out.back() == '.') out.pop_back();
  return out;
}

struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool close = false;
};

Response Simple(int status, std::string_view message) {
  Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
  r.body = absl::StrCat(status, " ", AV(http::ReasonPhrase(status)), ": ", AV(message), "\n");
  return r;
}

}  // namespace

// Everything that lives on the server thread.
class RpcServer::Loop {
 public:
  Loop(RpcBackend* backend, const RpcServerOptions& options, std::string session_id,
       std::unique_ptr<Ring> ring, int listen_fd, int stop_fd)
      : options_(options),
        session_id_(std::move(session_id)),
        rpc_(backend),
        backend_(backend),
        listen_fd_(listen_fd),
        stop_fd_(stop_fd),
        ring_(std::move(ring)) {
    rpc_.set_session_id(session_id_);
    limits_.max_body_bytes = options_.max_body_bytes;
    const std::string bind = absl::AsciiStrToLower(StripBrackets(options_.bind_address));
    allowed_hosts_.push_back(bind);
    for (const std::string& h : options_.allowed_hosts) {
      std::optional<std::string> name = HostName(h);
      if (name) allowed_hosts_.push_back(*name);
    }
    if (!options_.username.empty()) {
      expected_auth_ = absl::StrCat(options_.username, ":", options_.password);
    }
  }

  ~Loop() {
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  void Run() {
    accept_c_ = MakeCompletion<&Loop::OnAccept>(this);
    stop_c_ = MakeCompletion<&Loop::OnStop>(this);
    PostAccept();
    ring_->Read(stop_fd_, &stop_buf_, sizeof(stop_buf_), 0, &stop_c_);
    stop_inflight_ = true;
    while (!stopping_) {
      absl::StatusOr<int> n = ring_->RunOnce(NextWaitMs());
      if (!n.ok()) {
        std::fprintf(stderr, "torrenty: rpc server: %s\n",
                     std::string(n.status().message()).c_str());
        break;
      }
      ExpireIdle();
      if (!accept_inflight_ && !stopping_ && Clock::now() >= accept_retry_at_) PostAccept();
    }
    Shutdown();
  }

 private:
  struct Conn {
    Loop* loop = nullptr;
    int fd = -1;
    Completion recv_c, send_c, close_c;
    std::string rbuf;
    std::string pending;  // received bytes of the next (pipelined) request
    http::RequestParser parser;
    std::string out;  // being sent
    size_t out_off = 0;
    std::string next_out;  // queued behind `out`
    bool recv_inflight = false;
    bool send_inflight = false;
    bool closing = false;
    bool close_after_send = false;
    bool answering = false;  // a full request is being answered; reading waits for the reply
    bool sent_continue = false;
    bool draining = false;  // the last reply is out; reading and discarding until the client closes
    Clock::time_point deadline;
    std::list<Conn>::iterator self;

    void OnRecv(int32_t res, uint32_t) { loop->HandleRecv(this, res); }
    void OnSend(int32_t res, uint32_t) { loop->HandleSend(this, res); }
    void OnClose(int32_t, uint32_t) { loop->HandleClosed(this); }
  };

  int NextWaitMs() const {
    // Idle connections are swept at least once a second; the loop does nothing else on a timer.
    return accept_inflight_ ? 1000 : kAcceptRetryMs;
  }

  void OnStop(int32_t, uint32_t) {
    stop_inflight_ = false;
    stopping_ = true;
  }

  void OnAccept(int32_t res, uint32_t) {
    accept_inflight_ = false;
    if (stopping_) {
      if (res >= 0) ::close(res);
      return;
    }
    if (res >= 0) {
      if (conns_.size() >= options_.max_connections) {
        ::close(res);
      } else {
        conns_.emplace_back();
        Conn* c = &conns_.back();
        c->self = std::prev(conns_.end());
        c->loop = this;
        c->fd = res;
        c->parser = http::RequestParser(limits_);
        c->recv_c = MakeCompletion<&Conn::OnRecv>(c);
        c->send_c = MakeCompletion<&Conn::OnSend>(c);
        c->close_c = MakeCompletion<&Conn::OnClose>(c);
        c->rbuf.resize(kRecvChunk);
        c->deadline = Clock::now() + absl::ToChronoMilliseconds(options_.idle_timeout);
        PostRecv(c);
      }
    } else if (res != -EINTR && res != -ECONNABORTED && res != -EAGAIN) {
      // Out of descriptors or memory: accepting again at once would fail at once, in a loop.
      std::fprintf(stderr, "torrenty: rpc server: accept: %s\n", std::strerror(-res));
      accept_retry_at_ = Clock::now() + std::chrono::milliseconds(kAcceptRetryMs);
      return;
    }
    PostAccept();
  }

  void PostAccept() {
    ring_->Accept(listen_fd_, &accept_c_);
    accept_inflight_ = true;
  }

  void PostRecv(Conn* c) {
    if (c->recv_inflight || c->closing) return;
    c->recv_inflight = true;
    ring_->Recv(c->fd, c->rbuf.data(), c->rbuf.size(), &c->recv_c);
  }

  void HandleRecv(Conn* c, int32_t res) {
    c->recv_inflight = false;
    if (c->closing) return MaybeFinishClose(c);
    if (res <= 0) return BeginClose(c);
    if (c->draining) return PostRecv(c);
    Process(c, std::string_view(c->rbuf.data(), static_cast<size_t>(res)));
  }

  // Feeds bytes to the parser and answers every request they complete.
  void Process(Conn* c, std::string_view data) {
    while (!c->closing && !c->answering) {
      size_t used = 0;
      const http::ParseStatus st = c->parser.Feed(data, &used);
      data.remove_prefix(used);
      if (st == http::ParseStatus::kError) {
        Response r = Simple(c->parser.error_status(), c->parser.error_reason());
        r.close = true;
        Queue(c, std::move(r));
        return;
      }
      if (st == http::ParseStatus::kNeedMore) {
        const http::Request& req = c->parser.request();
        if (c->parser.headers_complete() && req.expect_continue && !c->sent_continue) {
          // Refuse before the client uploads a large body, or invite it to send.
          std::optional<Response> refusal = Precheck(req);
          if (refusal) {
            refusal->close = true;
            Queue(c, std::move(*refusal));
            return;
          }
          c->sent_continue = true;
          QueueRaw(c, "HTTP/1.1 100 Continue\r\n\r\n");
        }
        PostRecv(c);
        return;
      }
      // A complete request: answer it, keep what follows for after the reply is sent.
      c->answering = true;
      c->pending.assign(data.data(), data.size());
      Response r = Answer(c->parser.request());
      if (!c->parser.request().keep_alive) r.close = true;
      Queue(c, std::move(r));
    }
  }

  std::optional<Response> Precheck(const http::Request& req) {
    const std::string* host = req.Header("host");
    std::optional<std::string> name = host ? HostName(*host) : std::nullopt;
    // An absolute-form target names a host too; both must be ours.
    std::optional<std::string> target_name =
        req.Authority().empty() ? name : HostName(req.Authority());
    if (!name || !HostAllowed(*name) || !target_name || !HostAllowed(*target_name)) {
      return Simple(421, "unrecognized Host; add it to the RPC server's allowed hosts");
    }
    if (!expected_auth_.empty()) {
      bool ok = false;
      const std::string* auth = req.Header("authorization");
      if (auth != nullptr) {
        RefillAuthTokens();
        if (auth_tokens_ < 1) {
          Response r = Simple(429, "too many wrong passwords; try again in a second");
          r.headers.emplace_back("Retry-After", "1");
          return r;
        }
        std::string decoded;
        if (auth->size() > 6 && absl::EqualsIgnoreCase(auth->substr(0, 6), "basic ") &&
            absl::Base64Unescape(AV(std::string_view(*auth).substr(6)), &decoded)) {
          ok = ConstantTimeEquals(decoded, expected_auth_);
        }
        if (!ok) auth_tokens_ -= 1;
      }
      if (!ok) {
        Response r = Simple(401, "unauthorized");
        r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"Transmission\"");
        return r;
      }
    }
    const std::string_view path = req.Path();
    if (path == "/transmission/rpc" || path == "/transmission/rpc/") {
      const std::string* theirs = req.Header("x-transmission-session-id");
      if (theirs == nullptr || !ConstantTimeEquals(*theirs, session_id_)) {
        Response r =
            Simple(409, absl::StrCat("send the header ", AV(kSessionIdHeader), ": ", session_id_));
        r.headers.emplace_back(std::string(kSessionIdHeader), session_id_);
        return r;
      }
      if (req.method != "POST") {
        Response r = Simple(405, "use POST");
        r.headers.emplace_back("Allow", "POST");
        return r;
      }
      return std::nullopt;
    }
    if (path == "/metrics") {
      if (req.method != "GET") {
        Response r = Simple(405, "use GET");
        r.headers.emplace_back("Allow", "GET");
        return r;
      }
      return std::nullopt;
    }
    return Simple(404, "not found");
  }

  Response Answer(const http::Request& req) {
    if (std::optional<Response> refusal = Precheck(req)) return std::move(*refusal);
    Response r;
    if (req.Path() == "/metrics") {
      r.headers.emplace_back("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
      r.body = backend_->Metrics();
      return r;
    }
    r.headers.emplace_back("Content-Type", "application/json; charset=UTF-8");
    r.headers.emplace_back(std::string(kSessionIdHeader), session_id_);
    r.body = rpc_.Handle(req.body);
    return r;
  }

  // Wrong credentials spend a token; tokens come back at kAuthGuessesPerSecond up to
  // kAuthGuessBurst, which bounds password guessing without locking the owner out for long.
  void RefillAuthTokens() {
    const Clock::time_point now = Clock::now();
    const double seconds = std::chrono::duration<double>(now - auth_refilled_at_).count();
    auth_tokens_ = std::min(kAuthGuessBurst, auth_tokens_ + seconds * kAuthGuessesPerSecond);
    auth_refilled_at_ = now;
  }

  bool HostAllowed(const std::string& name) const {
    if (name == "localhost" || IsIpLiteral(name)) return true;
    for (const std::string& h : allowed_hosts_) {
      if (name == h) return true;
    }
    return false;
  }

  void QueueRaw(Conn* c, std::string bytes) {
    if (c->send_inflight) {
      c->next_out.append(bytes);
      return;
    }
    c->out = std::move(bytes);
    c->out_off = 0;
    PostSend(c);
  }

  void Queue(Conn* c, Response r) {
    if (r.close) c->close_after_send = true;
    r.headers.emplace_back("Server", "torrenty");
    QueueRaw(c, http::WriteResponse(r.status, r.headers, r.body, !r.close));
  }

  void PostSend(Conn* c) {
    c->send_inflight = true;
    ring_->Send(c->fd, c->out.data() + c->out_off, c->out.size() - c->out_off, &c->send_c);
  }

  void HandleSend(Conn* c, int32_t res) {
    c->send_inflight = false;
    if (c->closing) return MaybeFinishClose(c);
    if (res <= 0) return BeginClose(c);
    c->out_off += static_cast<size_t>(res);
    c->deadline = Clock::now() + absl::ToChronoMilliseconds(options_.idle_timeout);
    if (c->out_off < c->out.size()) return PostSend(c);
    if (!c->next_out.empty()) {
      c->out = std::move(c->next_out);
      c->next_out.clear();
      c->out_off = 0;
      return PostSend(c);
    }
    c->out.clear();
    c->out_off = 0;
    if (c->close_after_send) return LingeringClose(c);
    if (c->answering) {
      // The reply is out: start on the next request.
      c->answering = false;
      c->sent_continue = false;
      c->parser.Reset();
      std::string pending = std::move(c->pending);
      c->pending.clear();
      if (!pending.empty()) Process(c, pending);
      if (!c->answering && !c->closing) PostRecv(c);
    }
  }

  // Closing with unread request bytes in the socket makes the kernel send a reset, which can
  // destroy the error reply before the client reads it (a refused upload is exactly that case).
  // So: send FIN, then read and discard until the client closes or a short deadline passes.
  void LingeringClose(Conn* c) {
    if (c->draining || c->closing) return;
    c->draining = true;
    ::shutdown(c->fd, SHUT_WR);
    c->deadline = Clock::now() + std::chrono::milliseconds(kLingerMs);
    PostRecv(c);
  }

  void BeginClose(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    if (c->recv_inflight || c->send_inflight) ring_->CancelFd(c->fd, nullptr);
    MaybeFinishClose(c);
  }

  void MaybeFinishClose(Conn* c) {
    if (c->recv_inflight || c->send_inflight || c->fd < 0) return;
    ring_->Close(c->fd, &c->close_c);
    c->fd = -1;
  }

  void HandleClosed(Conn* c) { conns_.erase(c->self); }

  void ExpireIdle() {
    const Clock::time_point now = Clock::now();
    for (Conn& c : conns_) {
      if (!c.closing && now >= c.deadline) BeginClose(&c);
    }
  }

  void Shutdown() {
    for (Conn& c : conns_) BeginClose(&c);
    if (accept_inflight_) ring_->CancelFd(listen_fd_, nullptr);
    if (stop_inflight_) ring_->CancelFd(stop_fd_, nullptr);
    // Every operation references memory owned here; wait for all of them to finish.
    const Clock::time_point give_up = Clock::now() + std::chrono::seconds(10);
    while ((!conns_.empty() || accept_inflight_ || stop_inflight_) && Clock::now() < give_up) {
      if (!ring_->RunOnce(100).ok()) break;
    }
  }

  const RpcServerOptions& options_;
  const std::string session_id_;
  TransmissionRpc rpc_;
  RpcBackend* backend_;
  int listen_fd_;
  int stop_fd_;
  http::Limits limits_;
  std::vector<std::string> allowed_hosts_;
  std::string expected_auth_;  // "user:pass", empty when auth is off
  double auth_tokens_ = kAuthGuessBurst;
  Clock::time_point auth_refilled_at_ = Clock::now();
  Completion accept_c_, stop_c_;
  bool accept_inflight_ = false;
  Clock::time_point accept_retry_at_;
  bool stop_inflight_ = false;
  uint64_t stop_buf_ = 0;
  bool stopping_ = false;
  std::list<Conn> conns_;
  // Last, so it is torn down first: io_uring_queue_exit waits out operations that still point
  // into the connections.
  std::unique_ptr<Ring> ring_;
};

RpcServer::RpcServer(RpcBackend* backend, RpcServerOptions options)
    : backend_(backend), options_(std::move(options)) {}

RpcServer::~RpcServer() { Stop(); }

absl::Status RpcServer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (loop_ != nullptr) return absl::FailedPreconditionError("the RPC server is already running");

  const std::string addr = StripBrackets(options_.bind_address);
  sockaddr_storage ss{};
  socklen_t len = 0;
  bool loopback = false;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, addr.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options_.port);
    len = sizeof(sockaddr_in);
    loopback = (ntohl(v4->sin_addr.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, addr.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options_.port);
    len = sizeof(sockaddr_in6);
    loopback = IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) ||
               (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr) && v6->sin6_addr.s6_addr[12] == 127);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("RPC bind address \"", options_.bind_address, "\" is not an IP address"));
  }
  if (!loopback && options_.username.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve RPC on ", options_.bind_address,
        " without authentication: set a user and password (--rpc-auth USER:PASS) or bind to "
        "127.0.0.1"));
  }
  if (options_.max_connections == 0) {
    return absl::InvalidArgumentError("RPC max_connections must be at least 1");
  }

  absl::StatusOr<std::string> token = RandomToken();
  if (!token.ok()) return token.status();
  absl::StatusOr<std::unique_ptr<Ring>> ring = Ring::Create(256);
  if (!ring.ok()) return ring.status();

  const int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "RPC socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(
        err, absl::StrCat("RPC bind to ", options_.bind_address, ":", options_.port));
  }
  if (listen(fd, 64) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(err, "RPC listen");
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  port_.store(ntohs(bound.ss_family == AF_INET
                        ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                        : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port));

  stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    const int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(err, "RPC eventfd");
  }
  session_id_ = *std::move(token);
  loop_ = std::make_unique<Loop>(backend_, options_, session_id_, *std::move(ring), fd, stop_fd_);
  thread_ = std::thread([loop = loop_.get()] { loop->Run(); });
  return absl::OkStatus();
}

void RpcServer::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  if (loop_ == nullptr) return;
  const uint64_t one = 1;
  while (write(stop_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
  if (thread_.joinable()) thread_.join();
  loop_.reset();
  ::close(stop_fd_);
  stop_fd_ = -1;
}

}  // namespace torrenty::io::rpc
