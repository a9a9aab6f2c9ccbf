// The session's BEP 14 local service discovery socket, on the coordinator's ring: one UDP socket
// bound to port 6771 and joined to the IPv4 group 239.192.152.143, which sends the announces
// engine::lsd::LsdScheduler decides on and hands the peers it finds in received announces to
// `on_peer` (the coordinator feeds them to the torrent as tracker peers are).
//
// Multicast needs an interface that carries it (a route to 239.0.0.0/8 or a default route):
// without one, Create fails and the session runs without local discovery. Our own announces come
// back through IP_MULTICAST_LOOP (other clients on this host must hear them) and are dropped by
// their cookie. IPv6 (ff15::efc0:988f) is not joined.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"
#include "engine/lsd/lsd_scheduler.h"
#include "io/ring/ring.h"

namespace torrenty::io {

class LsdService {
 public:
  using PeerFn = std::function<void(uint64_t torrent, engine::PeerAddress peer)>;
  // A malformed datagram, for a log line (each sender's first one).
  using BadFn = std::function<void(const std::string& line)>;

  struct Options {
    uint32_t group = 0xEFC0988F;  // 239.192.152.143, host byte order
    uint16_t group_port = engine::lsd::kLsdPort;
    uint16_t listen_port = 0;  // ours, announced
    uint64_t seed = 0;         // for the cookie
  };

  // Opens and joins; the receive is armed on `ring` (submitted with its next RunOnce).
  static absl::StatusOr<std::unique_ptr<LsdService>> Create(Ring* ring, Options options,
                                                            PeerFn on_peer, BadFn on_bad);
  // The ring must be gone (or hold no operation of this object) by then.
  ~LsdService();
  LsdService(const LsdService&) = delete;
  LsdService& operator=(const LsdService&) = delete;

  void AddTorrent(uint64_t id, const engine::InfoHash& info_hash, bool is_private,
                  engine::Instant now) {
    scheduler_.AddTorrent(id, info_hash, is_private, now);
  }
  void RemoveTorrent(uint64_t id) { scheduler_.RemoveTorrent(id); }
  // Sends the announce that is due, if any. Call every few hundred ms.
  void Tick(engine::Instant now);

  uint64_t sent() const { return sent_; }
  uint64_t received() const { return received_; }

 private:
  LsdService(Ring* ring, Options options, PeerFn on_peer, BadFn on_bad);
  void ArmRecv();
  void OnRecv(int32_t res, uint32_t flags);
  void OnSend(int32_t res, uint32_t flags);

  Ring* ring_;
  Options options_;
  PeerFn on_peer_;
  BadFn on_bad_;
  engine::lsd::LsdScheduler scheduler_;
  int fd_ = -1;
  uint64_t sent_ = 0, received_ = 0, bad_ = 0;

  std::string send_buf_;  // the datagram in flight; one at a time (at most one per 2 s anyway)
  bool send_in_flight_ = false;
  sockaddr_in send_to_{};
  iovec send_iov_{};
  msghdr send_msg_{};
  Completion send_c_;

  uint8_t recv_buf_[2048] = {};
  sockaddr_in recv_from_{};
  iovec recv_iov_{};
  msghdr recv_msg_{};
  Completion recv_c_;
  std::vector<engine::lsd::LsdScheduler::Found> found_;
};

}  // namespace torrenty::io
