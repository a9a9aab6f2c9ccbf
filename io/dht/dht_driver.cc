#include "io/dht/dht_driver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/codec/bencode.h"
#include "engine/dht/krpc.h"
#include "io/disk/small_file.h"

namespace torrenty::io {
namespace {

using engine::Instant;
using engine::PeerAddress;
namespace dht = engine::dht;

constexpr int64_t kMaxStateBytes = 64 << 10;
constexpr size_t kMaxSavedNodes = 200;

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// HOST:PORT or [IPV6]:PORT; the brackets are taken off.
bool SplitHostPort(const std::string& text, HostPort* out) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port == 0 || port > 65535) return false;
  out->host = text.substr(0, colon);
  if (out->host.size() > 2 && out->host.front() == '[' && out->host.back() == ']') {
    out->host = out->host.substr(1, out->host.size() - 2);
  }
  out->port = static_cast<uint16_t>(port);
  return true;
}

// On the dual-stack socket an IPv4 address is written IPv4-mapped (::ffff:a.b.c.d).
socklen_t ToSockaddr(const PeerAddress& a, bool dual_stack, sockaddr_storage* out) {
  *out = sockaddr_storage{};
  if (!dual_stack) {
    auto* sa = reinterpret_cast<sockaddr_in*>(out);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(a.port);
    sa->sin_addr.s_addr = htonl(a.ip);
    return sizeof(sockaddr_in);
  }
  auto* sa = reinterpret_cast<sockaddr_in6*>(out);
  sa->sin6_family = AF_INET6;
  sa->sin6_port = htons(a.port);
  uint8_t* b = reinterpret_cast<uint8_t*>(&sa->sin6_addr);
  if (a.v6) {
    std::memcpy(b, a.ip6.data(), 16);
  } else {
    b[10] = b[11] = 0xFF;
    for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<uint8_t>(a.ip >> (24 - 8 * i));
  }
  return sizeof(sockaddr_in6);
}

// IPv4-mapped addresses come back as IPv4.
bool FromSockaddr(const sockaddr_storage& ss, PeerAddress* out) {
  if (ss.ss_family == AF_INET6) {
    const auto& sa = reinterpret_cast<const sockaddr_in6&>(ss);
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &sa.sin6_addr, bytes.size());
    *out = PeerAddress::V6(bytes, ntohs(sa.sin6_port));
    return true;
  }
  if (ss.ss_family != AF_INET) return false;
  const auto& sa = reinterpret_cast<const sockaddr_in&>(ss);
  *out = PeerAddress{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
  return true;
}

void ReadNodes(const engine::bencode::Value& v, std::string_view key, bool v6,
               std::vector<dht::NodeInfo>* nodes) {
  const size_t entry = v6 ? dht::kCompactNode6Bytes : dht::kCompactNodeBytes;
  const engine::bencode::Value* nv = v.Find(key);
  if (nv == nullptr || !nv->is_string() || nv->string.size() % entry != 0) return;
  for (size_t i = 0; i < nv->string.size() && nodes->size() < 2 * kMaxSavedNodes; i += entry) {
    const auto* p = reinterpret_cast<const uint8_t*>(nv->string.data()) + i;
    dht::NodeInfo n;
    std::memcpy(n.id.data(), p, 20);
    n.addr = v6 ? dht::ReadCompactPeer6(p + 20) : dht::ReadCompactPeer(p + 20);
    if (n.addr.port != 0 && n.addr.v6 == v6) nodes->push_back(n);
  }
}

// Our id and good nodes: d2:id20:<id>5:nodes<26 bytes each>6:nodes6<38 bytes each>e.
bool LoadState(const std::string& path, dht::NodeId* id, std::vector<dht::NodeInfo>* nodes) {
  absl::StatusOr<std::string> bytes = ReadSmallFile(path, kMaxStateBytes);
  if (!bytes.ok()) return false;
  absl::StatusOr<engine::bencode::Value> v = engine::bencode::Decode(*bytes);
  if (!v.ok() || !v->is_dict()) return false;
  const engine::bencode::Value* idv = v->Find("id");
  if (idv == nullptr || !idv->is_string() || idv->string.size() != 20) return false;
  *id = dht::NodeIdFromBytes(idv->string);
  ReadNodes(*v, "nodes", false, nodes);
  ReadNodes(*v, "nodes6", true, nodes);
  return true;
}

}  // namespace

// getaddrinfo for bootstrap names on a detached thread: a slow or absent DNS server never
// holds up the coordinator or the end of the session.
struct DhtDriver::Resolver {
  std::mutex mu;
  std::vector<PeerAddress> results;  // guarded by mu
  std::vector<std::string> errors;   // guarded by mu
};

DhtDriver::DhtDriver(Ring* ring, Options options, const dht::NodeId& id, Instant now)
    : ring_(ring),
      options_(std::move(options)),
      node_(id, options_.node, absl::Uniform<uint64_t>(absl::BitGen()), now),
      now_(now) {}

absl::StatusOr<std::unique_ptr<DhtDriver>> DhtDriver::Create(Ring* ring, Options options,
                                                             Instant now) {
  dht::NodeId id{};
  std::vector<dht::NodeInfo> saved;
  if (options.state_file.empty() || !LoadState(options.state_file, &id, &saved)) {
    absl::BitGen gen;
    for (uint8_t& b : id) b = absl::Uniform<uint8_t>(gen);
    saved.clear();
  }
  // The node learns whether it may send to IPv6 addresses before it is made.
  int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const bool dual = fd >= 0;
  if (dual) {
    const int off = 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) != 0) {
      const int err = errno;
      close(fd);
      return absl::ErrnoToStatus(err, "DHT socket: IPV6_V6ONLY");
    }
  } else {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return absl::ErrnoToStatus(errno, "DHT socket");
  }
  options.node.ipv6 = dual;
  std::unique_ptr<DhtDriver> d(new DhtDriver(ring, std::move(options), id, now));
  d->fd_ = fd;
  d->ipv6_ = dual;
  d->saved_ = std::move(saved);
  const auto bind_port = [&](uint16_t port) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (dual) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
      sa->sin6_family = AF_INET6;
      sa->sin6_addr = in6addr_any;
      sa->sin6_port = htons(port);
      len = sizeof(sockaddr_in6);
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
      sa->sin_family = AF_INET;
      sa->sin_addr.s_addr = htonl(INADDR_ANY);
      sa->sin_port = htons(port);
      len = sizeof(sockaddr_in);
    }
    return bind(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
  };
  if (!bind_port(d->options_.port)) {
    const int err = errno;
    if (d->options_.port == 0 || err != EADDRINUSE) return absl::ErrnoToStatus(err, "DHT bind");
    if (!bind_port(0)) return absl::ErrnoToStatus(errno, "DHT bind");
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  PeerAddress local;
  FromSockaddr(bound, &local);
  d->port_ = local.port;
  if (d->port_ != d->options_.port && d->options_.on_log) {
    d->options_.on_log(
        absl::StrCat("dht: UDP port ", d->options_.port, " is taken; using ", d->port_));
  }
  d->recv_buf_.reset(new uint8_t[dht::kMaxDatagramBytes + 1]);
  d->recv_c_ = MakeCompletion<&DhtDriver::OnRecv>(d.get());
  for (SendSlot& s : d->slots_) {
    s.owner = d.get();
    s.c = MakeCompletion<&SendSlot::OnSend>(&s);
  }
  d->ArmRecv();
  for (const dht::NodeInfo& n : d->saved_) d->node_.AddSavedNode(n, now);
  d->StartBootstrap(now);
  d->Pump(now);
  return d;
}

DhtDriver::~DhtDriver() {
  if (fd_ >= 0) close(fd_);
}

void DhtDriver::StartBootstrap(Instant now) {
  std::vector<HostPort> names;
  for (const std::string& text : options_.bootstrap) {
    HostPort hp;
    if (!SplitHostPort(text, &hp)) continue;  // the CLI checked the form
    in_addr ip{};
    std::array<uint8_t, 16> ip6;
    if (inet_pton(AF_INET, hp.host.c_str(), &ip) == 1) {
      node_.AddBootstrap(PeerAddress{ntohl(ip.s_addr), hp.port}, now);
    } else if (inet_pton(AF_INET6, hp.host.c_str(), ip6.data()) == 1) {
      if (ipv6_) node_.AddBootstrap(PeerAddress::V6(ip6, hp.port), now);
    } else {
      names.push_back(std::move(hp));
    }
  }
  if (names.empty()) return;
  resolver_ = std::make_shared<Resolver>();
  std::thread([r = resolver_, names = std::move(names), dual = ipv6_] {
    std::vector<std::string> errors;
    for (const HostPort& hp : names) {
      addrinfo hints{};
      hints.ai_family = dual ? AF_UNSPEC : AF_INET;
      hints.ai_socktype = SOCK_DGRAM;
      addrinfo* res = nullptr;
      const int rc = getaddrinfo(hp.host.c_str(), nullptr, &hints, &res);
      if (rc != 0 || res == nullptr) {
        errors.push_back(absl::StrCat(hp.host, ": ", gai_strerror(rc)));
      } else {
        // The first address of each family: a router usually has one of each (BEP 32).
        bool have[2] = {false, false};
        for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
          sockaddr_storage ss{};
          std::memcpy(&ss, ai->ai_addr, std::min<size_t>(ai->ai_addrlen, sizeof(ss)));
          PeerAddress a;
          if (!FromSockaddr(ss, &a) || have[a.v6]) continue;
          have[a.v6] = true;
          a.port = hp.port;
          std::lock_guard<std::mutex> lock(r->mu);
          r->results.push_back(a);
        }
      }
      if (res != nullptr) freeaddrinfo(res);
    }
    std::lock_guard<std::mutex> lock(r->mu);
    r->errors = std::move(errors);
  }).detach();
}

void DhtDriver::ArmRecv() {
  recv_iov_.iov_base = recv_buf_.get();
  recv_iov_.iov_len = dht::kMaxDatagramBytes + 1;
  recv_msg_ = msghdr{};
  recv_msg_.msg_name = &recv_from_;
  recv_msg_.msg_namelen = sizeof(recv_from_);
  recv_msg_.msg_iov = &recv_iov_;
  recv_msg_.msg_iovlen = 1;
  ring_->RecvMsg(fd_, &recv_msg_, 0, &recv_c_);
}

void DhtDriver::OnRecv(int32_t res, uint32_t) {
  if (res == -ECANCELED || res == -EBADF) return;
  // A datagram longer than the buffer is truncated (MSG_TRUNC); the node rejects its size.
  PeerAddress from;
  if (res > 0 && FromSockaddr(recv_from_, &from)) {
    node_.HandleDatagram(
        from,
        std::string_view(reinterpret_cast<const char*>(recv_buf_.get()), static_cast<size_t>(res)),
        now_);
  }
  ArmRecv();
  Pump(now_);
}

void DhtDriver::Pump(Instant now) {
  (void)now;
  node_.TakeOutgoing(&out_);
  for (dht::Outgoing& o : out_) {
    if (queue_.size() >= kMaxQueuedSends) {
      ++sends_dropped_;
      continue;
    }
    queue_.push_back(std::move(o));
  }
  out_.clear();
  Flush();
  node_.TakeEvents(&events_);
  for (dht::Event& e : events_) {
    switch (e.kind) {
      case dht::Event::Kind::kLog:
        if (options_.on_log) options_.on_log(e.text);
        break;
      case dht::Event::Kind::kPeers:
        if (options_.on_peers) options_.on_peers(e.info_hash, e.peers);
        break;
      case dht::Event::Kind::kLookupDone:
        if (options_.on_lookup_done) {
          options_.on_lookup_done(e.info_hash, e.responded, e.announced, e.v6);
        }
        break;
    }
  }
  events_.clear();
}

void DhtDriver::Flush() {
  for (SendSlot& s : slots_) {
    if (queue_.empty()) return;
    if (s.busy) continue;
    dht::Outgoing o = std::move(queue_.front());
    queue_.pop_front();
    s.busy = true;
    s.bytes = std::move(o.bytes);
    const socklen_t to_len = ToSockaddr(o.to, ipv6_, &s.to);
    s.iov.iov_base = s.bytes.data();
    s.iov.iov_len = s.bytes.size();
    s.msg = msghdr{};
    s.msg.msg_name = &s.to;
    s.msg.msg_namelen = to_len;
    s.msg.msg_iov = &s.iov;
    s.msg.msg_iovlen = 1;
    ring_->SendMsg(fd_, &s.msg, &s.c);
  }
}

void DhtDriver::OnSendDone() { Flush(); }

void DhtDriver::Tick(Instant now) {
  now_ = now;
  if (resolver_) {
    std::vector<PeerAddress> found;
    std::vector<std::string> errors;
    {
      std::lock_guard<std::mutex> lock(resolver_->mu);
      found.swap(resolver_->results);
      errors.swap(resolver_->errors);
    }
    for (const PeerAddress& a : found) node_.AddBootstrap(a, now);
    // One line for all of them: offline, every router fails at once.
    if (!errors.empty() && options_.on_log) {
      options_.on_log(
          absl::StrCat("dht: cannot resolve bootstrap nodes: ", absl::StrJoin(errors, "; ")));
    }
  }
  node_.HandleTick(now);
  Pump(now);
}

bool DhtDriver::GetPeers(const engine::InfoHash& info_hash, uint16_t announce_port, Instant now) {
  now_ = now;
  const bool started = node_.GetPeers(info_hash, announce_port, now) != 0;
  Pump(now);
  return started;
}

absl::Status DhtDriver::Save(Instant now) {
  if (options_.state_file.empty()) return absl::OkStatus();
  std::vector<dht::NodeInfo> good = node_.table().GoodNodes(now);
  std::vector<dht::NodeInfo> good6 = node_.table6().GoodNodes(now);
  if (good.size() > kMaxSavedNodes) good.resize(kMaxSavedNodes);
  if (good6.size() > kMaxSavedNodes) good6.resize(kMaxSavedNodes);
  std::string compact, compact6;
  for (const dht::NodeInfo& n : good) dht::AppendCompactNode(n, &compact);
  for (const dht::NodeInfo& n : good6) dht::AppendCompactNode(n, &compact6);
  engine::bencode::Encoder e;
  e.BeginDict();
  e.String("id");
  e.String(std::string_view(reinterpret_cast<const char*>(node_.id().data()), 20));
  e.String("nodes");
  e.String(compact);
  if (!compact6.empty()) {
    e.String("nodes6");
    e.String(compact6);
  }
  e.End();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(options_.state_file).parent_path(), ec);
  return WriteFileAtomically(options_.state_file, e.Take());
}

}  // namespace torrenty::io
