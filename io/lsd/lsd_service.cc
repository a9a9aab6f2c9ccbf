#include "io/lsd/lsd_service.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace torrenty::io {
namespace {

engine::Instant Now() {
  using namespace std::chrono;
  return engine::Instant{
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count()};
}

std::string FormatIp(uint32_t ip) {
  return absl::StrCat(ip >> 24, ".", (ip >> 16) & 255, ".", (ip >> 8) & 255, ".", ip & 255);
}

engine::lsd::LsdScheduler::Config SchedulerConfig(const LsdService::Options& o) {
  engine::lsd::LsdScheduler::Config c;
  c.port = o.listen_port;
  c.cookie = absl::StrFormat("%016x", o.seed);
  return c;
}

}  // namespace

LsdService::LsdService(Ring* ring, Options options, PeerFn on_peer, BadFn on_bad)
    : ring_(ring),
      options_(options),
      on_peer_(std::move(on_peer)),
      on_bad_(std::move(on_bad)),
      scheduler_(SchedulerConfig(options)) {}

LsdService::~LsdService() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::unique_ptr<LsdService>> LsdService::Create(Ring* ring, Options options,
                                                               PeerFn on_peer, BadFn on_bad) {
  std::unique_ptr<LsdService> s(
      new LsdService(ring, options, std::move(on_peer), std::move(on_bad)));
  s->fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s->fd_ < 0) return absl::ErrnoToStatus(errno, "socket");
  const int one = 1;
  // Every BEP 14 client on the host binds the same port.
  if (setsockopt(s->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
    return absl::ErrnoToStatus(errno, "SO_REUSEADDR");
  }
  sockaddr_in bind_addr{};
  bind_addr.sin_family = AF_INET;
  bind_addr.sin_port = htons(options.group_port);
  bind_addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (::bind(s->fd_, reinterpret_cast<const sockaddr*>(&bind_addr), sizeof(bind_addr)) < 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("bind to port ", options.group_port));
  }
  ip_mreqn mreq{};
  mreq.imr_multiaddr.s_addr = htonl(options.group);
  mreq.imr_address.s_addr = htonl(INADDR_ANY);
  if (setsockopt(s->fd_, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0) {
    return absl::ErrnoToStatus(errno, "joining the multicast group");
  }
  // Other BitTorrent clients on this host listen on the group too.
  if (setsockopt(s->fd_, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) < 0) {
    return absl::ErrnoToStatus(errno, "IP_MULTICAST_LOOP");
  }
  // The local network only: announces must not be routed further.
  if (setsockopt(s->fd_, IPPROTO_IP, IP_MULTICAST_TTL, &one, sizeof(one)) < 0) {
    return absl::ErrnoToStatus(errno, "IP_MULTICAST_TTL");
  }
  s->send_to_.sin_family = AF_INET;
  s->send_to_.sin_port = htons(options.group_port);
  s->send_to_.sin_addr.s_addr = htonl(options.group);
  s->send_c_ = MakeCompletion<&LsdService::OnSend>(s.get());
  s->recv_c_ = MakeCompletion<&LsdService::OnRecv>(s.get());
  s->ArmRecv();
  return s;
}

void LsdService::Tick(engine::Instant now) {
  if (send_in_flight_) return;
  std::optional<std::string> m = scheduler_.Poll(now);
  if (!m.has_value()) return;
  send_buf_ = std::move(*m);
  send_iov_ = {send_buf_.data(), send_buf_.size()};
  send_msg_ = {};
  send_msg_.msg_name = &send_to_;
  send_msg_.msg_namelen = sizeof(send_to_);
  send_msg_.msg_iov = &send_iov_;
  send_msg_.msg_iovlen = 1;
  send_in_flight_ = true;
  ring_->SendMsg(fd_, &send_msg_, &send_c_);
}

void LsdService::OnSend(int32_t res, uint32_t) {
  send_in_flight_ = false;
  // A failed send (no route for a moment, ENOBUFS) waits for the torrent's next announce.
  if (res >= 0) ++sent_;
}

void LsdService::ArmRecv() {
  recv_iov_ = {recv_buf_, sizeof(recv_buf_)};
  recv_msg_ = {};
  recv_msg_.msg_name = &recv_from_;
  recv_msg_.msg_namelen = sizeof(recv_from_);
  recv_msg_.msg_iov = &recv_iov_;
  recv_msg_.msg_iovlen = 1;
  // MSG_TRUNC: the result is the datagram's real length, so an oversized one is refused whole.
  ring_->RecvMsg(fd_, &recv_msg_, MSG_TRUNC, &recv_c_);
}

void LsdService::OnRecv(int32_t res, uint32_t) {
  if (res == -ECANCELED || res == -EBADF) return;
  if (res >= 0 && recv_from_.sin_family == AF_INET) {
    ++received_;
    const uint32_t from = ntohl(recv_from_.sin_addr.s_addr);
    found_.clear();
    absl::Status st = absl::InvalidArgumentError("local discovery message: longer than 1400 bytes");
    // A datagram longer than the buffer arrived cut; MSG_TRUNC told its real length.
    if (static_cast<size_t>(res) <= sizeof(recv_buf_)) {
      st = scheduler_.HandleDatagram(absl::Span<const uint8_t>(recv_buf_, static_cast<size_t>(res)),
                                     from, Now(), &found_);
    }
    if (!st.ok()) {
      // One line per run is enough to tell a user that something on the LAN speaks nonsense.
      if (bad_++ == 0 && on_bad_) {
        on_bad_(absl::StrCat(st.message(), " (from ", FormatIp(from),
                             "; further ones are dropped silently)"));
      }
    }
    for (const engine::lsd::LsdScheduler::Found& f : found_) on_peer_(f.torrent, f.peer);
  }
  ArmRecv();
}

}  // namespace torrenty::io
