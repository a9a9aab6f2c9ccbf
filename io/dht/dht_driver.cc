#include "io/dht/dht_driver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <unistd.h>

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

bool SplitHostPort(const std::string& text, HostPort* out) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  uint32_t port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port == 0 || port > 65535) return false;
  out->host = text.substr(0, colon);
  out->port = static_cast<uint16_t>(port);
  return true;
}

// Our id and good nodes: d2:id20:<id>5:nodes<26 bytes each>e.
bool LoadState(const std::string& path, dht::NodeId* id, std::vector<dht::NodeInfo>* nodes) {
  absl::StatusOr<std::string> bytes = ReadSmallFile(path, kMaxStateBytes);
  if (!bytes.ok()) return false;
  absl::StatusOr<engine::bencode::Value> v = engine::bencode::Decode(*bytes);
  if (!v.ok() || !v->is_dict()) return false;
  const engine::bencode::Value* idv = v->Find("id");
  if (idv == nullptr || !idv->is_string() || idv->string.size() != 20) return false;
  *id = dht::NodeIdFromBytes(idv->string);
  const engine::bencode::Value* nv = v->Find("nodes");
  if (nv != nullptr && nv->is_string() && nv->string.size() % dht::kCompactNodeBytes == 0) {
    for (size_t i = 0; i < nv->string.size() && nodes->size() < kMaxSavedNodes;
         i += dht::kCompactNodeBytes) {
      const auto* p = reinterpret_cast<const uint8_t*>(nv->string.data()) + i;
      dht::NodeInfo n;
      std::memcpy(n.id.data(), p, 20);
      n.addr = dht::ReadCompactPeer(p + 20);
      if (n.addr.port != 0) nodes->push_back(n);
    }
  }
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
  std::unique_ptr<DhtDriver> d(new DhtDriver(ring, std::move(options), id, now));
  d->saved_ = std::move(saved);
  d->fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (d->fd_ < 0) return absl::ErrnoToStatus(errno, "DHT socket");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  sa.sin_port = htons(d->options_.port);
  if (bind(d->fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    const int err = errno;
    if (d->options_.port == 0 || err != EADDRINUSE) return absl::ErrnoToStatus(err, "DHT bind");
    sa.sin_port = 0;
    if (bind(d->fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return absl::ErrnoToStatus(errno, "DHT bind");
    }
  }
  socklen_t len = sizeof(sa);
  getsockname(d->fd_, reinterpret_cast<sockaddr*>(&sa), &len);
  d->port_ = ntohs(sa.sin_port);
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
    if (inet_pton(AF_INET, hp.host.c_str(), &ip) == 1) {
      node_.AddBootstrap(PeerAddress{ntohl(ip.s_addr), hp.port}, now);
    } else {
      names.push_back(std::move(hp));
    }
  }
  if (names.empty()) return;
  resolver_ = std::make_shared<Resolver>();
  std::thread([r = resolver_, names = std::move(names)] {
    std::vector<std::string> errors;
    for (const HostPort& hp : names) {
      addrinfo hints{};
      hints.ai_family = AF_INET;
      hints.ai_socktype = SOCK_DGRAM;
      addrinfo* res = nullptr;
      const int rc = getaddrinfo(hp.host.c_str(), nullptr, &hints, &res);
      if (rc != 0 || res == nullptr) {
        errors.push_back(absl::StrCat(hp.host, ": ", gai_strerror(rc)));
      } else {
        sockaddr_in sa{};
        std::memcpy(&sa, res->ai_addr, sizeof(sa));
        std::lock_guard<std::mutex> lock(r->mu);
        r->results.push_back(PeerAddress{ntohl(sa.sin_addr.s_addr), hp.port});
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
  if (res > 0 && recv_from_.sin_family == AF_INET) {
    const PeerAddress from{ntohl(recv_from_.sin_addr.s_addr), ntohs(recv_from_.sin_port)};
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
        if (options_.on_lookup_done) options_.on_lookup_done(e.info_hash, e.responded, e.announced);
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
    s.to = sockaddr_in{};
    s.to.sin_family = AF_INET;
    s.to.sin_addr.s_addr = htonl(o.to.ip);
    s.to.sin_port = htons(o.to.port);
    s.iov.iov_base = s.bytes.data();
    s.iov.iov_len = s.bytes.size();
    s.msg = msghdr{};
    s.msg.msg_name = &s.to;
    s.msg.msg_namelen = sizeof(s.to);
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
  if (good.size() > kMaxSavedNodes) good.resize(kMaxSavedNodes);
  std::string compact;
  for (const dht::NodeInfo& n : good) dht::AppendCompactNode(n, &compact);
  engine::bencode::Encoder e;
  e.BeginDict();
  e.String("id");
  e.String(std::string_view(reinterpret_cast<const char*>(node_.id().data()), 20));
  e.String("nodes");
  e.String(compact);
  e.End();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(options_.state_file).parent_path(), ec);
  return WriteFileAtomically(options_.state_file, e.Take());
}

}  // namespace torrenty::io
