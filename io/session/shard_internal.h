// What the files of io/session/shard are built from: the shard's constants and the two nested
// types, shared by shard.cc (loop, torrents, disk) and shard_connections.cc (sockets). Private to
// those files.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "io/session/shard.h"
#include "io/webseed/web_seed_driver.h"

namespace torrenty::io {

// Counters and per-torrent totals reach the coordinator and /metrics this often while the shard
// has torrents.
inline constexpr int64_t kPublishMs = 1000;
// The loop never sleeps longer than this even with nothing due: a bound on how stale a missed
// wake-up could leave it.
inline constexpr int64_t kMaxSleepMs = 60'000;
inline constexpr engine::Instant kNoDeadline{std::numeric_limits<int64_t>::max()};
inline constexpr int kConnectTimeoutSec = 10;
// After a stop, connections get this long to close before the loop ends anyway.
inline constexpr int64_t kStopGraceMs = 3'000;
// The cache keeps at least this many entries per shard, whatever the budget.
inline constexpr size_t kReadCacheEntriesMin = 4;
inline constexpr size_t kRecvBufferMin = 256 << 10;
// Receive buffers start here and double (up to RecvBufferMax) while a peer keeps them full:
// 2000 idle peers then cost 2000 x 32 KiB instead of 2000 x 256 KiB.
inline constexpr size_t kRecvBufferInitial = 32 << 10;
// Incoming connections over all shards; more are refused at accept.
inline constexpr size_t kAcceptedConnectionsMax = 4096;
// Bytes of a BitTorrent handshake up to and including the info-hash.
inline constexpr size_t kHandshakeThroughInfoHash = 1 + 19 + 8 + 20;
// Reads of the cache waiting for the disk: more than this and peers wait in the backlog.
inline constexpr size_t kDiskReadsMax = 100;
// A rate-limited peer waits until this much (or all it wants, if less) may move, so a low limit
// means fewer, larger reads and sends rather than many tiny ones.
inline constexpr int64_t kRateChunk = 16 << 10;
// The most pieces of one gathered send: a lent block is two (its header, its bytes), so this
// is up to 16 blocks a submission.
inline constexpr size_t kSendPartsMax = 32;
// Tags for DiskIo operations: the high bit separates cache reads from piece writes.
inline constexpr uint64_t kReadTagBit = uint64_t{1} << 63;

inline engine::Instant Now() {
  using namespace std::chrono;
  return engine::Instant{
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count()};
}

// Fills `out` for an IPv4 or IPv6 address and returns its length.
inline socklen_t ToSockaddr(const engine::PeerAddress& a, sockaddr_storage* out) {
  *out = sockaddr_storage{};
  if (a.v6) {
    auto* sa = reinterpret_cast<sockaddr_in6*>(out);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(a.port);
    std::memcpy(&sa->sin6_addr, a.ip6.data(), a.ip6.size());
    return sizeof(sockaddr_in6);
  }
  auto* sa = reinterpret_cast<sockaddr_in*>(out);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(a.port);
  sa->sin_addr.s_addr = htonl(a.ip);
  return sizeof(sockaddr_in);
}

// An IPv4-mapped address (an IPv4 peer on the dual-stack socket) comes back as IPv4.
inline engine::PeerAddress FromSockaddr(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET6) {
    const auto& sa = reinterpret_cast<const sockaddr_in6&>(ss);
    std::array<uint8_t, 16> bytes;
    std::memcpy(bytes.data(), &sa.sin6_addr, bytes.size());
    return engine::PeerAddress::V6(bytes, ntohs(sa.sin6_port));
  }
  const auto& sa = reinterpret_cast<const sockaddr_in&>(ss);
  return engine::PeerAddress{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
}

inline uint64_t HashTag(TorrentId id, uint32_t piece) { return (uint64_t{id} << 32) | piece; }

// A torrent with peers on this shard.
struct Shard::ShardTorrent {
  SessionTorrent* t = nullptr;
  std::unique_ptr<engine::Torrent> engine;
  std::unique_ptr<DiskIo> disk;
  // Verified pieces waiting for a free disk slot; their buffers are the shard's until written.
  std::deque<std::pair<uint32_t, engine::PieceBuffer>> write_backlog;
  size_t recv_buffer_max = kRecvBufferMin;
  uint32_t hashes_pending = 0;
  // The engine's payload totals already added to the shard's metrics.
  int64_t counted_down = 0, counted_up = 0;
  uint32_t conns = 0;  // Conns attached to it, open or closing
  // The engine's NextTimeout, recomputed after a turn in which it saw an event (dirty).
  engine::Instant next_timeout{0};
  bool dirty = true;
  bool draining = false;  // deactivated: released once its peers, hashes and writes are done
  // What the coordinator was last told of this shard's PEX peers (sorted), and at which
  // pex_generation, so an unchanged set costs one comparison per publish.
  uint64_t pex_generation_reported = 0;
  std::vector<engine::pex::PexPeer> pex_reported;
  std::unique_ptr<WebSeedDriver> web;  // on the one shard that drives its web seeds
  engine::Instant web_poll_at = kNoDeadline;
};

struct Shard::Conn {
  Shard* shard = nullptr;
  ShardTorrent* st = nullptr;  // null until an incoming handshake names its torrent
  engine::PeerKey key = 0;
  int fd = -1;
  engine::PeerAddress address{};
  bool outgoing = false;
  bool connected = false;  // connect finished and the engine knows the peer
  bool closing = false;
  bool engine_knows = false;
  bool handshaken = false;  // the engine accepted its handshake (for reporting)
  int ops = 0;  // operations in flight; the Conn is freed when this reaches 0 after closing
  sockaddr_storage sa{};
  socklen_t sa_len = 0;
  __kernel_timespec connect_ts{};
  std::unique_ptr<uint8_t[]> rbuf;
  size_t rcap = 0;  // starts small; grows while the peer keeps filling it
  size_t head = 0, tail = 0;
  bool recv_armed = false;
  bool send_armed = false;
  // Parked by a rate limit (Shard::throttled_ holds it) in that direction.
  std::array<bool, 2> throttled{};
  // Tokens taken for the recv/send in flight: what it does not move is refunded.
  size_t recv_granted = 0, send_granted = 0;
  Completion recv_c, send_c, connect_c, close_c;
  // The gathered send in flight (the kernel reads these until it completes).
  msghdr send_msg{};
  std::array<iovec, kSendPartsMax> send_iov{};
  // Read-cache pins the engine let go of while a send was in flight: the kernel may still be
  // reading them, so they go back to the cache when it completes.
  std::vector<uint64_t> deferred_pins;

  void OnRecvThunk(int32_t res, uint32_t) { shard->OnRecv(*this, res); }
  void OnSendThunk(int32_t res, uint32_t) { shard->OnSend(*this, res); }
  void OnConnectThunk(int32_t res, uint32_t) { shard->OnConnect(*this, res); }
  void OnCloseThunk(int32_t res, uint32_t) { shard->OnClose(*this, res); }
};

}  // namespace torrenty::io
