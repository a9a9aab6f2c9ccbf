// The shard's sockets: dialling, accepting, attaching an incoming peer to its torrent by the
// info-hash of its handshake, receiving into a growing buffer, sending the engine's bytes, and
// closing through the ring.
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/peer_id.h"
#include "engine/codec/wire.h"
#include "io/session/shard.h"
#include "io/session/shard_internal.h"

namespace torrenty::io {

using engine::Action;
using engine::Instant;
using engine::PeerAddress;
using engine::PeerKey;

// ---------------------------------------------------------------------------------------------
// Sockets

Shard::Conn* Shard::NewConn(int fd, PeerAddress address, bool outgoing) {
  auto c = std::make_unique<Conn>();
  c->shard = this;
  c->key = next_key_++;
  c->fd = fd;
  c->address = address;
  c->outgoing = outgoing;
  c->recv_c = MakeCompletion<&Conn::OnRecvThunk>(c.get());
  c->send_c = MakeCompletion<&Conn::OnSendThunk>(c.get());
  c->connect_c = MakeCompletion<&Conn::OnConnectThunk>(c.get());
  c->close_c = MakeCompletion<&Conn::OnCloseThunk>(c.get());
  Conn* raw = c.get();
  conns_[raw->key] = std::move(c);
  return raw;
}

void Shard::Dial(ShardTorrent& st, const PeerAddress& address) {
  const Instant now = now_;
  if (stopping_ || st.draining) {
    st.engine->HandleConnectFailed(address, now);
    return;
  }
  // With --bind, connections leave from that address, so one of the other family cannot be made.
  if (env_->bind_given && env_->bind_address.v6 != address.v6) {
    st.engine->HandleConnectFailed(address, now);
    return;
  }
  int fd = socket(address.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    st.engine->HandleConnectFailed(address, now);
    return;
  }
  if (env_->bind_given) {
    sockaddr_storage local;
    engine::PeerAddress from = env_->bind_address;
    from.port = 0;
    const socklen_t len = ToSockaddr(from, &local);
    if (bind(fd, reinterpret_cast<sockaddr*>(&local), len) != 0) {
      ::close(fd);
      st.engine->HandleConnectFailed(address, now);
      return;
    }
  }
  Conn* c = NewConn(fd, address, true);
  c->st = &st;
  ++st.conns;
  st.disk->set_active(true);
  c->sa_len = ToSockaddr(address, &c->sa);
  c->connect_ts.tv_sec = kConnectTimeoutSec;
  ++c->ops;
  ring_->ConnectWithTimeout(fd, reinterpret_cast<sockaddr*>(&c->sa), c->sa_len, &c->connect_ts,
                            &c->connect_c);
}

void Shard::OnConnect(Conn& c, int32_t res) {
  --c.ops;
  const Instant now = now_;
  if (c.closing) {
    MaybeFree(c);
    return;
  }
  ShardTorrent& st = *c.st;
  const TorrentId id = st.t->id;
  if (res < 0) {
    // The connect's linked timeout cancels it: -ECANCELED means it timed out.
    const PeerOutcome outcome = res == -ECONNREFUSED ? PeerOutcome::kRefused
                                : res == -ECANCELED || res == -ETIMEDOUT || res == -ETIME
                                    ? PeerOutcome::kTimeout
                                    : PeerOutcome::kUnreachable;
    Log(id,
        absl::StrCat("peer ", c.address.ToString(), ": connect failed: ",
                     outcome == PeerOutcome::kUnreachable ? strerror(-res)
                                                          : PeerOutcomeName(outcome)),
        /*verbose=*/true);
    ReportOutcome(id, c.address, outcome);
    st.engine->HandleConnectFailed(c.address, now);
    CloseConn(c);
    Drain(st);
    return;
  }
  Log(id, absl::StrCat("peer ", c.address.ToString(), ": connected (outgoing)"),
      /*verbose=*/true);
  ReportOutcome(id, c.address, PeerOutcome::kConnected);
  StartPeer(c, now);
}

void Shard::OnAccept(int32_t res, uint32_t) {
  if (res >= 0) {
    const int fd = res;
    sockaddr_storage sa{};
    socklen_t len = sizeof(sa);
    getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len);
    const PeerAddress address = FromSockaddr(sa);
    if (stopping_ || conns_.size() >= accepted_max_ || known_.empty()) {
      ::close(fd);  // over the connection limit, or nothing to serve: refuse at once
    } else {
      Conn* c = NewConn(fd, address, false);
      StartPeer(*c, now_);
    }
  } else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
    Log(0, absl::StrCat("accept failed: ", strerror(-res)));
  }
  if (!stopping_) ring_->Accept(listen_fd_, &accept_c_);
}

void Shard::StartPeer(Conn& c, Instant now) {
  int one = 1;
  setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // Idle peers are the common case in a big swarm, so a connection starts with room for one
  // block message (or its bitfield) and grows only while it keeps the buffer full. An incoming
  // one starts with what any handshake needs; it grows once its torrent is known.
  size_t cap = kRecvBufferInitial;
  if (c.st != nullptr) {
    cap = std::min(c.st->recv_buffer_max,
                   std::max(kRecvBufferInitial,
                            size_t{engine::wire::MaxMessageLen(c.st->t->meta->num_pieces())} + 256));
  }
  c.rcap = cap;
  c.rbuf.reset(new uint8_t[c.rcap]);
  env_->receive_budget->Charge(static_cast<int64_t>(c.rcap));
  metrics_.receive_buffer_bytes.Add(static_cast<int64_t>(c.rcap));
  c.connected = true;
  if (c.st != nullptr) {
    c.engine_knows = true;
    c.st->engine->HandlePeerConnected(c.key, c.address, c.outgoing, now);
  }
  ArmRecv(c);
  if (c.st != nullptr) Drain(*c.st);
}

// An incoming connection names its torrent in the handshake: hand it to that torrent's engine
// once the info-hash has arrived, or close it. False when it was closed.
bool Shard::AttachIncoming(Conn& c, Instant now) {
  const uint8_t* p = c.rbuf.get() + c.head;
  if (p[0] != 19) {
    Log(0, absl::StrCat("closed peer ", c.address.ToString(), ": not a BitTorrent handshake"),
        /*verbose=*/true);
    CloseConn(c);
    return false;
  }
  engine::InfoHash hash;
  std::memcpy(hash.data(), p + 28, hash.size());
  auto it = by_hash_.find(hash);
  if (it == by_hash_.end()) {
    Log(0, absl::StrCat("closed peer ", c.address.ToString(), ": unknown info-hash"),
        /*verbose=*/true);
    CloseConn(c);
    return false;
  }
  ShardTorrent* st = Instance(it->second);
  c.st = st;
  ++st->conns;
  st->disk->set_active(true);
  Log(st->t->id, absl::StrCat("peer ", c.address.ToString(), ": connected (incoming)"),
      /*verbose=*/true);
  const size_t want = std::min(
      st->recv_buffer_max,
      std::max(kRecvBufferInitial,
               size_t{engine::wire::MaxMessageLen(st->t->meta->num_pieces())} + 256));
  if (want > c.rcap) {
    // Room for the torrent's bitfield is not optional.
    env_->receive_budget->Charge(static_cast<int64_t>(want - c.rcap));
    ResizeRecvBuffer(c, want);
  }
  c.engine_knows = true;
  st->engine->HandlePeerConnected(c.key, c.address, /*outgoing=*/false, now);
  return true;
}

void Shard::ArmRecv(Conn& c) {
  if (c.closing || c.recv_armed || c.throttled[0]) return;
  size_t len = c.rcap - c.tail;
  c.recv_granted = 0;
  // Bytes before the handshake names a torrent are not limited: there is no torrent to charge.
  if (c.st != nullptr && limiter_.limited(engine::Direction::kDown)) {
    len = Admit(c, engine::Direction::kDown, len);
    if (len == 0) return;
    c.recv_granted = len;
  }
  c.recv_armed = true;
  ++c.ops;
  ring_->Recv(c.fd, c.rbuf.get() + c.tail, len, &c.recv_c);
}

size_t Shard::Admit(Conn& c, engine::Direction direction, size_t want) {
  const uint64_t id = c.st->t->id;
  const int64_t chunk = std::min<int64_t>(static_cast<int64_t>(want), kRateChunk);
  const Instant at = limiter_.NextRefill(id, direction, chunk, now_);
  if (at.ms <= now_.ms) {
    const int64_t granted = limiter_.Request(id, direction, static_cast<int64_t>(want), now_);
    if (granted > 0) return static_cast<size_t>(granted);
  }
  c.throttled[static_cast<int>(direction)] = true;
  if (throttled_.empty() || at.ms < throttle_wake_.ms) {
    throttle_wake_ = Instant{std::max(at.ms, now_.ms + 1)};
  }
  throttled_.push_back(Throttled{c.key, direction});
  return 0;
}

// Re-arms parked peers in the order they were parked, so a limit is shared round-robin; those
// that still find no tokens park again at the back.
void Shard::RetryThrottled(Instant now) {
  throttle_wake_ = kNoDeadline;
  size_t n = throttled_.size();
  while (n-- > 0) {
    const Throttled t = throttled_.front();
    throttled_.pop_front();
    auto it = conns_.find(t.key);
    if (it == conns_.end() || it->second->closing) continue;
    Conn& c = *it->second;
    c.throttled[static_cast<int>(t.direction)] = false;
    if (t.direction == engine::Direction::kDown) {
      ArmRecv(c);
    } else if (c.st != nullptr) {
      StartSend(*c.st, c.key);
    }
  }
  if (!throttled_.empty() && throttle_wake_.ms == kNoDeadline.ms) throttle_wake_ = now;
}

void Shard::OnRecv(Conn& c, int32_t res) {
  --c.ops;
  c.recv_armed = false;
  if (c.closing) {
    MaybeFree(c);
    return;
  }
  const Instant now = now_;
  const size_t moved = res > 0 ? static_cast<size_t>(res) : 0;
  if (c.recv_granted > moved && c.st != nullptr) {
    limiter_.Refund(c.st->t->id, engine::Direction::kDown,
                    static_cast<int64_t>(c.recv_granted - moved), now);
  }
  c.recv_granted = 0;
  if (res <= 0) {
    if (res == -EINTR || res == -EAGAIN) {
      ArmRecv(c);
      return;
    }
    PeerGone(c, res, now);
    return;
  }
  c.tail += static_cast<size_t>(res);
  wire_received_ += static_cast<uint64_t>(res);
  if (c.st == nullptr) {
    if (c.tail - c.head < kHandshakeThroughInfoHash) {
      ArmRecv(c);
      return;
    }
    if (!AttachIncoming(c, now)) return;
  }
  ShardTorrent& st = *c.st;
  const bool filled = c.tail == c.rcap;
  const size_t consumed = st.engine->HandleBytes(
      c.key, absl::MakeConstSpan(c.rbuf.get() + c.head, c.tail - c.head), now);
  c.head += consumed;
  if (c.head == c.tail) c.head = c.tail = 0;
  CountPayload(st);
  if (!c.handshaken && st.engine->IsHandshaken(c.key)) {
    c.handshaken = true;
    if (env_->log_verbose) {
      const std::string client = engine::ClientName(*st.engine->PeerIdOf(c.key));
      Log(st.t->id,
          absl::StrCat("peer ", c.address.ToString(), ": handshake done",
                       client.empty() ? "" : absl::StrCat(", client ", client)),
          /*verbose=*/true);
    }
  }
  // A busy peer: fewer, larger reads, while the receive-buffer share of the piece memory lasts.
  const bool grown = filled && c.rcap < st.recv_buffer_max && GrowRecvBuffer(c);
  if (!grown && c.head > 0 && c.rcap - c.tail < c.rcap / 2) {
    // Keep room for at least one whole message; partial messages are rare and small.
    std::memmove(c.rbuf.get(), c.rbuf.get() + c.head, c.tail - c.head);
    c.tail -= c.head;
    c.head = 0;
  }
  Drain(st);
  if (!c.closing) ArmRecv(c);
}

bool Shard::GrowRecvBuffer(Conn& c) {
  const size_t cap = std::min(c.st->recv_buffer_max, c.rcap * 2);
  if (!env_->receive_budget->TryGrow(static_cast<int64_t>(cap - c.rcap))) return false;
  ResizeRecvBuffer(c, cap);
  return true;
}

void Shard::ResizeRecvBuffer(Conn& c, size_t cap) {
  metrics_.receive_buffer_bytes.Add(static_cast<int64_t>(cap) - static_cast<int64_t>(c.rcap));
  std::unique_ptr<uint8_t[]> bigger(new uint8_t[cap]);
  std::memcpy(bigger.get(), c.rbuf.get() + c.head, c.tail - c.head);
  c.tail -= c.head;
  c.head = 0;
  c.rbuf = std::move(bigger);
  c.rcap = cap;
}

void Shard::StartSend(ShardTorrent& st, PeerKey key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  if (c.closing || c.send_armed || !c.connected || c.throttled[1]) return;
  std::array<absl::Span<const uint8_t>, kSendPartsMax> parts;
  const size_t n = st.engine->NextSendParts(key, absl::MakeSpan(parts));
  if (n == 0) return;
  size_t len = 0;
  for (size_t i = 0; i < n; ++i) len += parts[i].size();
  c.send_granted = 0;
  if (limiter_.limited(engine::Direction::kUp)) {
    len = Admit(c, engine::Direction::kUp, len);
    if (len == 0) return;
    c.send_granted = len;
  }
  c.send_armed = true;
  ++c.ops;
  if (n == 1 || parts[0].size() >= len) {
    ring_->Send(c.fd, parts[0].data(), len, &c.send_c);
    return;
  }
  // A lent block goes out with its header in one submission, straight from the read cache.
  size_t iovs = 0;
  for (size_t left = len; left > 0; ++iovs) {
    const size_t take = std::min(left, parts[iovs].size());
    c.send_iov[iovs] = iovec{const_cast<uint8_t*>(parts[iovs].data()), take};
    left -= take;
  }
  c.send_msg = msghdr{};
  c.send_msg.msg_iov = c.send_iov.data();
  c.send_msg.msg_iovlen = iovs;
  ring_->SendMsg(c.fd, &c.send_msg, &c.send_c, MSG_NOSIGNAL);
}

void Shard::ReleaseBlock(PeerKey key, uint64_t pin) {
  auto it = conns_.find(key);
  if (it != conns_.end() && it->second->send_armed) {
    it->second->deferred_pins.push_back(pin);
    return;
  }
  cache_->Release(pin);
  reads_waiting_ = !read_backlog_.empty();
}

void Shard::ReleaseDeferred(Conn& c) {
  if (c.deferred_pins.empty()) return;
  for (uint64_t pin : c.deferred_pins) cache_->Release(pin);
  c.deferred_pins.clear();
  reads_waiting_ = !read_backlog_.empty();
}

void Shard::OnSend(Conn& c, int32_t res) {
  --c.ops;
  c.send_armed = false;
  ReleaseDeferred(c);
  if (c.closing) {
    MaybeFree(c);
    return;
  }
  const Instant now = now_;
  const size_t moved = res > 0 ? static_cast<size_t>(res) : 0;
  if (c.send_granted > moved) {
    limiter_.Refund(c.st->t->id, engine::Direction::kUp,
                    static_cast<int64_t>(c.send_granted - moved), now);
  }
  c.send_granted = 0;
  if (res < 0) {
    if (res == -EINTR || res == -EAGAIN) {
      StartSend(*c.st, c.key);
      return;
    }
    PeerGone(c, res, now);
    return;
  }
  ShardTorrent& st = *c.st;
  wire_sent_ += static_cast<uint64_t>(res);
  st.engine->HandleSent(c.key, static_cast<size_t>(res), now);
  CountPayload(st);
  StartSend(st, c.key);
  Drain(st);
}

// The connection ended from the other side: `res` is 0 (closed) or a negative errno.
void Shard::PeerGone(Conn& c, int32_t res, Instant now) {
  ShardTorrent* st = c.st;
  if (st != nullptr && c.engine_knows) {
    const bool handshaken = c.handshaken || st->engine->IsHandshaken(c.key);
    Log(st->t->id,
        absl::StrCat("closed peer ", c.address.ToString(), ": ",
                     res == 0 ? "closed by peer" : strerror(-res),
                     handshaken ? " after handshake" : " before handshake"),
        /*verbose=*/true);
    if (c.outgoing) {
      ReportOutcome(st->t->id, c.address,
                    handshaken ? PeerOutcome::kClosedAfterHandshake
                               : PeerOutcome::kClosedBeforeHandshake);
    }
    c.engine_knows = false;
    st->engine->HandlePeerClosed(c.key, now);
  }
  CloseConn(c);
  if (st != nullptr) Drain(*st);
}

void Shard::CloseConn(Conn& c) {
  if (c.closing) return;
  c.closing = true;
  if (c.ops > 0) ring_->CancelFd(c.fd, nullptr);
  MaybeFree(c);
}

void Shard::MaybeFree(Conn& c) {
  if (c.ops > 0) return;
  if (c.fd >= 0) {
    // The kernel holds no pointer into this Conn any more; closing through the ring keeps the
    // loop free of blocking syscalls.
    ++c.ops;
    const int fd = c.fd;
    c.fd = -1;
    ring_->Close(fd, &c.close_c);
    return;
  }
  ShardTorrent* st = c.st;
  if (c.rbuf != nullptr) {
    env_->receive_budget->Release(static_cast<int64_t>(c.rcap));
    metrics_.receive_buffer_bytes.Add(-static_cast<int64_t>(c.rcap));
  }
  conns_.erase(c.key);
  if (st != nullptr) {
    if (--st->conns == 0) st->disk->set_active(false);  // its files close once disk work ends
    MaybeRelease(*st);
  }
}

void Shard::OnClose(Conn& c, int32_t) {
  --c.ops;
  MaybeFree(c);
}

}  // namespace torrenty::io
