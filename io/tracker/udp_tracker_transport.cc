// UdpTrackerTransport: BEP 15 exchanges on the ring; see udp_tracker_transport.h.
#include "io/tracker/udp_tracker_transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace torrenty::io {
struct UdpTrackerTransport::Tracker {
  enum class Dns { kUnresolved, kResolving, kReady };

  Tracker(UdpTrackerTransport* o, std::string h, uint16_t p, uint64_t seed, uint32_t key)
      : owner(o), host(std::move(h)), port(p), exchange(seed, key) {}

  UdpTrackerTransport* owner;
  std::string host;
  uint16_t port;
  Dns dns = Dns::kUnresolved;
  // A numeric IPv4 address or "localhost": ready once, never looked up.
  bool literal = false;
  sockaddr_in addr{};
  engine::UdpTrackerExchange exchange;
  // The announce this tracker owes a result for (in an exchange or waiting for DNS).
  std::optional<uint64_t> id;
  engine::AnnounceParams params;
  int max_retransmits = 0;

  // One send in flight at a time; a packet produced meanwhile waits in `next`.
  uint8_t buf[engine::kUdpAnnounceRequestSize] = {};
  size_t len = 0;
  uint8_t next[engine::kUdpAnnounceRequestSize] = {};
  size_t next_len = 0;
  bool send_in_flight = false;
  iovec iov{};
  msghdr msg{};
  Completion send_c;

  void OnSendThunk(int32_t res, uint32_t) { owner->OnSend(*this, res); }
};

// getaddrinfo on a helper thread. Shared with the thread, which is detached when the transport
// goes away, so a slow DNS server never delays shutdown.
struct UdpTrackerTransport::Resolver {
  using ResolveFn = std::function<absl::StatusOr<uint32_t>(const std::string& host)>;
  struct Done {
    std::string host;
    absl::StatusOr<uint32_t> ipv4;
  };

  ~Resolver() {
    if (event_fd >= 0) close(event_fd);
  }

  void Run() {
    for (;;) {
      std::string host;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [this] { return stop || !queue.empty(); });
        if (stop) return;
        host = std::move(queue.front());
        queue.pop_front();
      }
      Done done{host, resolve(host)};
      std::lock_guard<std::mutex> lock(mu);
      if (stop) return;
      results.push_back(std::move(done));
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(event_fd, &one, sizeof(one));
    }
  }

  ResolveFn resolve;
  int event_fd = -1;
  // std::mutex rather than absl::Mutex so ThreadSanitizer sees the synchronisation.
  std::mutex mu;
  std::condition_variable cv;     // queue became non-empty or stop was set
  bool stop = false;              // guarded by mu
  std::deque<std::string> queue;  // guarded by mu
  std::vector<Done> results;      // guarded by mu
};

namespace {

absl::StatusOr<uint32_t> GetAddrInfo(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || res == nullptr) {
    if (res != nullptr) freeaddrinfo(res);
    return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  sockaddr_in sa{};
  std::memcpy(&sa, res->ai_addr, sizeof(sa));
  freeaddrinfo(res);
  return ntohl(sa.sin_addr.s_addr);
}

}  // namespace

UdpTrackerTransport::UdpTrackerTransport(Ring* ring, ResultFn on_result, uint64_t seed,
                                         Options options)
    : ring_(ring),
      on_result_(std::move(on_result)),
      seed_(seed),
      key_(static_cast<uint32_t>(seed ^ (seed >> 32))),
      options_(std::move(options)),
      dns_cache_(options_.dns) {
  if (!options_.resolve) options_.resolve = &GetAddrInfo;
}

absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> UdpTrackerTransport::Create(Ring* ring,
                                                                                 ResultFn on_result,
                                                                                 uint64_t seed) {
  return Create(ring, std::move(on_result), seed, Options{});
}

absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> UdpTrackerTransport::Create(Ring* ring,
                                                                                 ResultFn on_result,
                                                                                 uint64_t seed,
                                                                                 Options options) {
  std::unique_ptr<UdpTrackerTransport> t(
      new UdpTrackerTransport(ring, std::move(on_result), seed, std::move(options)));
  t->fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (t->fd_ < 0) return absl::ErrnoToStatus(errno, "UDP tracker socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  sa.sin_port = 0;
  if (bind(t->fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    return absl::ErrnoToStatus(errno, "UDP tracker socket bind");
  }
  t->recv_buf_.reset(new uint8_t[kRecvBufferBytes]);
  t->recv_c_ = MakeCompletion<&UdpTrackerTransport::OnRecv>(t.get());
  t->resolver_c_ = MakeCompletion<&UdpTrackerTransport::OnResolverEvent>(t.get());
  t->ArmRecv();
  return t;
}

UdpTrackerTransport::~UdpTrackerTransport() {
  if (resolver_) {
    {
      std::lock_guard<std::mutex> lock(resolver_->mu);
      resolver_->stop = true;
    }
    resolver_->cv.notify_all();
  }
  if (fd_ >= 0) close(fd_);
}

uint16_t UdpTrackerTransport::local_port() const {
  sockaddr_in sa{};
  socklen_t len = sizeof(sa);
  if (getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) return 0;
  return ntohs(sa.sin_port);
}

UdpTrackerTransport::Tracker& UdpTrackerTransport::FindOrAdd(const std::string& host,
                                                             uint16_t port) {
  for (const std::unique_ptr<Tracker>& t : trackers_) {
    if (t->port == port && t->host == host) return *t;
  }
  auto t = std::make_unique<Tracker>(this, host, port, seed_ + trackers_.size() + 1, key_);
  t->send_c = MakeCompletion<&Tracker::OnSendThunk>(t.get());
  trackers_.push_back(std::move(t));
  return *trackers_.back();
}

void UdpTrackerTransport::Announce(uint64_t id, const std::string& host, uint16_t port,
                                   const engine::AnnounceParams& params, int max_retransmits,
                                   engine::Instant now) {
  Tracker& t = FindOrAdd(host, port);
  t.exchange.Abandon();  // A newer announce replaces whatever this tracker was doing.
  t.id = id;
  t.params = params;
  t.max_retransmits = max_retransmits;
  if (t.dns == Tracker::Dns::kResolving) return;  // Starts when the address arrives.
  if (t.literal) {
    StartExchange(t, now);
    return;
  }
  in_addr ip{};
  if (inet_pton(AF_INET, host.c_str(), &ip) == 1 || absl::EqualsIgnoreCase(host, "localhost")) {
    if (absl::EqualsIgnoreCase(host, "localhost")) ip.s_addr = htonl(INADDR_LOOPBACK);
    t.addr.sin_family = AF_INET;
    t.addr.sin_port = htons(port);
    t.addr.sin_addr = ip;
    t.dns = Tracker::Dns::kReady;
    t.literal = true;
    StartExchange(t, now);
    return;
  }
  if (host.find(':') != std::string::npos) {
    Fail(t, absl::UnimplementedError(absl::StrCat("IPv6 UDP tracker ", host, " not supported")));
    return;
  }
  Resolve(t, now);
}

void UdpTrackerTransport::Resolve(Tracker& t, engine::Instant now) {
  // Every announce asks the cache, so an address is looked up again once its TTL has passed.
  engine::ResolveCache::Result cached = dns_cache_.Find(t.host, now);
  switch (cached.kind) {
    case engine::ResolveCache::Result::Kind::kAddress:
      t.addr.sin_family = AF_INET;
      t.addr.sin_port = htons(t.port);
      t.addr.sin_addr.s_addr = htonl(cached.ipv4);
      t.dns = Tracker::Dns::kReady;
      StartExchange(t, now);
      return;
    case engine::ResolveCache::Result::Kind::kFailed:
      t.dns = Tracker::Dns::kUnresolved;
      Fail(t, std::move(cached.error));
      return;
    case engine::ResolveCache::Result::Kind::kPending:
      t.dns = Tracker::Dns::kResolving;
      return;
    case engine::ResolveCache::Result::Kind::kStartLookup:
      break;
  }
  if (!resolver_) {
    const int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
      const absl::Status status = absl::ErrnoToStatus(errno, "eventfd");
      dns_cache_.Resolved(t.host, status, now);
      Fail(t, status);
      return;
    }
    resolver_ = std::make_shared<Resolver>();
    resolver_->event_fd = efd;
    resolver_->resolve = options_.resolve;
    std::thread([r = resolver_] { r->Run(); }).detach();
    ArmResolverRead();
  }
  t.dns = Tracker::Dns::kResolving;
  {
    std::lock_guard<std::mutex> lock(resolver_->mu);
    resolver_->queue.push_back(t.host);
  }
  resolver_->cv.notify_one();
}

void UdpTrackerTransport::StartExchange(Tracker& t, engine::Instant now) {
  Send(t, t.exchange.Start(t.params, now, t.max_retransmits));
}

void UdpTrackerTransport::Tick(engine::Instant now) {
  // Index loop: a result callback may add trackers.
  for (size_t i = 0; i < trackers_.size(); ++i) {
    Tracker& t = *trackers_[i];
    if (!t.id.has_value() || !t.exchange.busy()) continue;
    Process(t, t.exchange.HandleTimeout(now));
  }
}

void UdpTrackerTransport::Process(Tracker& t, engine::UdpTrackerExchange::Step step) {
  switch (step.kind) {
    case engine::UdpTrackerExchange::Step::Kind::kNothing:
      return;
    case engine::UdpTrackerExchange::Step::Kind::kSend:
      Send(t, step.packet);
      return;
    case engine::UdpTrackerExchange::Step::Kind::kDone: {
      if (!t.id.has_value()) return;
      const uint64_t id = *t.id;
      t.id.reset();
      // Last: the callback may start another announce, on this tracker too.
      on_result_(id, std::move(step.result));
      return;
    }
  }
}

void UdpTrackerTransport::Fail(Tracker& t, absl::Status status) {
  t.exchange.Abandon();
  if (!t.id.has_value()) return;
  const uint64_t id = *t.id;
  t.id.reset();
  on_result_(id, std::move(status));
}

void UdpTrackerTransport::Send(Tracker& t, absl::Span<const uint8_t> packet) {
  if (packet.empty() || packet.size() > sizeof(t.buf)) return;
  if (t.send_in_flight) {
    std::memcpy(t.next, packet.data(), packet.size());
    t.next_len = packet.size();
    return;
  }
  std::memcpy(t.buf, packet.data(), packet.size());
  t.len = packet.size();
  IssueSend(t);
}

void UdpTrackerTransport::IssueSend(Tracker& t) {
  t.iov.iov_base = t.buf;
  t.iov.iov_len = t.len;
  t.msg = msghdr{};
  t.msg.msg_name = &t.addr;
  t.msg.msg_namelen = sizeof(t.addr);
  t.msg.msg_iov = &t.iov;
  t.msg.msg_iovlen = 1;
  t.send_in_flight = true;
  ring_->SendMsg(fd_, &t.msg, &t.send_c);
}

void UdpTrackerTransport::OnSend(Tracker& t, int32_t res) {
  t.send_in_flight = false;
  if (res == -ECANCELED || fd_ < 0) return;
  // A failed send (no route, ...) is not fatal: the exchange retransmits on its schedule.
  if (t.next_len > 0) {
    std::memcpy(t.buf, t.next, t.next_len);
    t.len = t.next_len;
    t.next_len = 0;
    IssueSend(t);
  }
}

void UdpTrackerTransport::ArmRecv() {
  recv_iov_.iov_base = recv_buf_.get();
  recv_iov_.iov_len = kRecvBufferBytes;
  recv_msg_ = msghdr{};
  recv_msg_.msg_name = &recv_from_;
  recv_msg_.msg_namelen = sizeof(recv_from_);
  recv_msg_.msg_iov = &recv_iov_;
  recv_msg_.msg_iovlen = 1;
  // MSG_TRUNC: the result is the datagram's real length, so an oversized one is recognised.
  ring_->RecvMsg(fd_, &recv_msg_, MSG_TRUNC, &recv_c_);
}

void UdpTrackerTransport::OnRecv(int32_t res, uint32_t) {
  if (res == -ECANCELED || res == -EBADF) return;
  if (res >= 0 && static_cast<size_t>(res) <= kRecvBufferBytes &&
      recv_msg_.msg_namelen >= sizeof(sockaddr_in) && recv_from_.sin_family == AF_INET) {
    // Monotonic ms, as the session's clock.
    const engine::Instant now{std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count()};
    const absl::Span<const uint8_t> datagram(recv_buf_.get(), static_cast<size_t>(res));
    for (size_t i = 0; i < trackers_.size(); ++i) {
      Tracker& t = *trackers_[i];
      if (t.dns != Tracker::Dns::kReady || !t.id.has_value() ||
          t.addr.sin_addr.s_addr != recv_from_.sin_addr.s_addr ||
          t.addr.sin_port != recv_from_.sin_port) {
        continue;
      }
      Process(t, t.exchange.HandleDatagram(datagram, now));
      break;
    }
  }
  ArmRecv();
}

void UdpTrackerTransport::ArmResolverRead() {
  ring_->Read(resolver_->event_fd, &resolver_evt_, sizeof(resolver_evt_), 0, &resolver_c_);
}

void UdpTrackerTransport::OnResolverEvent(int32_t res, uint32_t) {
  if (res == -ECANCELED) return;
  std::vector<Resolver::Done> done;
  {
    std::lock_guard<std::mutex> lock(resolver_->mu);
    done.swap(resolver_->results);
  }
  ArmResolverRead();
  const engine::Instant now{std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now().time_since_epoch())
                                .count()};
  for (Resolver::Done& d : done) {
    dns_cache_.Resolved(d.host, d.ipv4, now);
    // Index loop: a result callback may add trackers.
    for (size_t i = 0; i < trackers_.size(); ++i) {
      Tracker& t = *trackers_[i];
      if (t.dns != Tracker::Dns::kResolving || !absl::EqualsIgnoreCase(t.host, d.host)) continue;
      if (!d.ipv4.ok()) {
        t.dns = Tracker::Dns::kUnresolved;
        Fail(t, d.ipv4.status());
        continue;
      }
      t.addr.sin_family = AF_INET;
      t.addr.sin_port = htons(t.port);
      t.addr.sin_addr.s_addr = htonl(*d.ipv4);
      t.dns = Tracker::Dns::kReady;
      if (t.id.has_value()) StartExchange(t, now);
    }
  }
}

}  // namespace torrenty::io
