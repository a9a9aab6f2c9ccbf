// Runs engine::UdpTrackerExchange (BEP 15) for a torrent's UDP trackers on the ring: one UDP
// socket bound to 0.0.0.0:0, sendmsg/recvmsg as ring operations with buffers owned here (no
// allocation per packet), timers driven by the caller's Tick. Host names are resolved with
// getaddrinfo on a helper thread (numeric IPv4 and "localhost" need none) through a cache with a
// TTL (engine::ResolveCache): one lookup per host per TTL for all the trackers on that host and
// all the torrents announcing to them. Only IPv4 is supported.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"
#include "engine/tracker/http_announce.h"
#include "engine/tracker/resolve_cache.h"
#include "engine/tracker/udp_tracker.h"
#include "io/ring/ring.h"

namespace torrenty::io {

class UdpTrackerTransport {
 public:
  using ResultFn =
      std::function<void(uint64_t id, absl::StatusOr<engine::AnnounceResponse> result)>;
  // Datagrams are received whole into a buffer of this size; longer ones are dropped.
  static constexpr size_t kRecvBufferBytes = 64 << 10;

  // Opens the socket and arms the receive on `ring` (submitted with the ring's next RunOnce).
  // `on_result` runs on the ring thread: from a completion, or from inside Announce or Tick.
  struct Options {
    // Resolves a host name to an IPv4 address (host byte order). Runs on the helper thread.
    // Empty: getaddrinfo.
    std::function<absl::StatusOr<uint32_t>(const std::string& host)> resolve;
    engine::ResolveCache::Config dns;
  };

  static absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> Create(Ring* ring, ResultFn on_result,
                                                                     uint64_t seed);
  static absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> Create(Ring* ring, ResultFn on_result,
                                                                     uint64_t seed,
                                                                     Options options);
  // Closes the socket. The ring must be gone (or hold no operation of this transport) by then:
  // its operations point into this object.
  ~UdpTrackerTransport();
  UdpTrackerTransport(const UdpTrackerTransport&) = delete;
  UdpTrackerTransport& operator=(const UdpTrackerTransport&) = delete;

  // Announces to host:port. Exactly one result with `id` follows (unless a later Announce to the
  // same tracker abandons this one first): the response (failure_reason set for a BEP 15 error),
  // DeadlineExceeded after `max_retransmits` retransmissions (see UdpTrackerExchange), or a
  // resolution error (Unavailable; Unimplemented for IPv6).
  void Announce(uint64_t id, const std::string& host, uint16_t port,
                const engine::AnnounceParams& params, int max_retransmits, engine::Instant now);

  // Retransmits or fails exchanges whose timeout has passed. Call every few hundred ms.
  void Tick(engine::Instant now);

  // The socket's local port (for tests).
  uint16_t local_port() const;

 private:
  struct Tracker;
  struct Resolver;

  UdpTrackerTransport(Ring* ring, ResultFn on_result, uint64_t seed, Options options);
  Tracker& FindOrAdd(const std::string& host, uint16_t port);
  void StartExchange(Tracker& t, engine::Instant now);
  void Process(Tracker& t, engine::UdpTrackerExchange::Step step);
  void Fail(Tracker& t, absl::Status status);
  void Send(Tracker& t, absl::Span<const uint8_t> packet);
  void IssueSend(Tracker& t);
  void OnSend(Tracker& t, int32_t res);
  void ArmRecv();
  void OnRecv(int32_t res, uint32_t flags);
  void Resolve(Tracker& t, engine::Instant now);
  void ArmResolverRead();
  void OnResolverEvent(int32_t res, uint32_t flags);

  Ring* ring_;
  ResultFn on_result_;
  uint64_t seed_;
  uint32_t key_;
  int fd_ = -1;
  std::vector<std::unique_ptr<Tracker>> trackers_;

  // Receive state, reused for every datagram.
  std::unique_ptr<uint8_t[]> recv_buf_;
  sockaddr_in recv_from_{};
  iovec recv_iov_{};
  msghdr recv_msg_{};
  Completion recv_c_;

  // Host-name resolution off the ring thread; created on first use.
  Options options_;
  engine::ResolveCache dns_cache_;
  std::shared_ptr<Resolver> resolver_;
  uint64_t resolver_evt_ = 0;
  Completion resolver_c_;
};

}  // namespace torrenty::io
