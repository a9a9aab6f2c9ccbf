// Runs the session's one engine::dht::Node on a ring: a UDP socket (by custom on the peer listen
// port), recvmsg/sendmsg as ring operations with buffers owned here, the node's clock fed from
// the owner's tick. The socket is one dual-stack AF_INET6 socket (IPV6_V6ONLY off) serving both
// DHTs of BEP 32 on one port number, IPv4 nodes seen as IPv4-mapped addresses; AF_INET, and an
// IPv4-only node, where the kernel has no IPv6. Bootstrap names ("router.bittorrent.com:6881") are
// resolved on a detached helper thread; numeric addresses need none. Good nodes and our node id are
// kept in a small state file between runs.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"
#include "engine/dht/dht_node.h"
#include "io/ring/ring.h"

namespace torrenty::io {

class DhtDriver {
 public:
  struct Options {
    uint16_t port = 0;                   // UDP port; when taken, an ephemeral one (logged)
    std::vector<std::string> bootstrap;  // HOST:PORT
    std::string state_file;              // empty: nothing kept between runs
    engine::dht::NodeConfig node;
    std::function<void(const std::string&)> on_log;
    std::function<void(const engine::InfoHash&, const std::vector<engine::PeerAddress>&)> on_peers;
    // `v6`: the lookup ran in the IPv6 DHT (each family has its own).
    std::function<void(const engine::InfoHash&, int responded, int announced, bool v6)>
        on_lookup_done;
  };
  // Datagrams wait here while every send slot is busy; beyond this they are dropped.
  static constexpr size_t kMaxQueuedSends = 4096;
  static constexpr int kSendSlots = 32;

  static absl::StatusOr<std::unique_ptr<DhtDriver>> Create(Ring* ring, Options options,
                                                           engine::Instant now);
  // The ring must hold no operation of this driver by then (destroy the ring first, or never run
  // it again).
  ~DhtDriver();
  DhtDriver(const DhtDriver&) = delete;
  DhtDriver& operator=(const DhtDriver&) = delete;

  void Tick(engine::Instant now);
  // False when the node runs as many lookups as it may (try again later).
  bool GetPeers(const engine::InfoHash& info_hash, uint16_t announce_port, engine::Instant now);
  // Writes the state file (our id and the good nodes).
  absl::Status Save(engine::Instant now);

  size_t nodes() const { return node_.nodes(); }
  bool ipv6() const { return ipv6_; }
  uint16_t port() const { return port_; }
  const engine::dht::Node& node() const { return node_; }
  uint64_t sends_dropped() const { return sends_dropped_; }

 private:
  struct SendSlot {
    DhtDriver* owner = nullptr;
    std::string bytes;
    sockaddr_storage to{};
    iovec iov{};
    msghdr msg{};
    Completion c;
    bool busy = false;
    void OnSend(int32_t, uint32_t) {
      busy = false;
      owner->OnSendDone();
    }
  };
  struct Resolver;

  DhtDriver(Ring* ring, Options options, const engine::dht::NodeId& id, engine::Instant now);
  void ArmRecv();
  void OnRecv(int32_t res, uint32_t flags);
  void Flush();
  void OnSendDone();
  void Pump(engine::Instant now);
  void StartBootstrap(engine::Instant now);

  Ring* ring_;
  Options options_;
  engine::dht::Node node_;
  int fd_ = -1;
  bool ipv6_ = false;  // fd_ is a dual-stack AF_INET6 socket
  uint16_t port_ = 0;
  engine::Instant now_{};

  std::unique_ptr<uint8_t[]> recv_buf_;
  sockaddr_storage recv_from_{};
  iovec recv_iov_{};
  msghdr recv_msg_{};
  Completion recv_c_;

  std::array<SendSlot, kSendSlots> slots_;
  std::deque<engine::dht::Outgoing> queue_;
  uint64_t sends_dropped_ = 0;
  std::vector<engine::dht::Outgoing> out_;
  std::vector<engine::dht::Event> events_;

  std::shared_ptr<Resolver> resolver_;
  std::vector<engine::dht::NodeInfo> saved_;
};

}  // namespace torrenty::io
