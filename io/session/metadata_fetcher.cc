#include "io/session/metadata_fetcher.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "engine/base/peer_id.h"
#include "engine/torrent/metadata_fetch.h"
#include "engine/tracker/http_announce.h"
#include "engine/tracker/udp_tracker.h"
#include "io/dht/dht_driver.h"
#include "io/ring/ring.h"
#include "io/tracker/http_fetcher.h"
#include "io/tracker/udp_tracker_transport.h"

namespace torrenty::io {
namespace {

using engine::Action;
using engine::Instant;
using engine::PeerAddress;
using engine::PeerKey;

constexpr size_t kRecvInitial = 32 << 10;
// engine::MetadataFetch accepts messages up to 256 KiB (a bitfield of two million pieces).
constexpr size_t kRecvMax = (256 << 10) + 64;
constexpr int kConnectTimeoutSec = 10;
// Trackers are asked again this often while no peer has given us the metadata.
constexpr int64_t kReannounceMs = 30'000;

Instant Now() {
  return Instant{std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::steady_clock::now().time_since_epoch())
                     .count()};
}

class Fetcher {
 public:
  Fetcher(const MetadataFetchOptions& options, std::unique_ptr<Ring> ring, engine::PeerId id)
      : options_(options),
        ring_(std::move(ring)),
        fetch_(engine::MetadataFetchConfig{
            .info_hash = options.info_hash, .self_id = id, .listen_port = options.listen_port}),
        self_id_(id) {}

  ~Fetcher() {
    if (dht_ != nullptr) (void)dht_->Save(now_);
    for (auto& [key, c] : conns_) {
      if (c->fd >= 0) ::close(c->fd);
    }
    if (signal_fd_ >= 0) ::close(signal_fd_);
    ring_.reset();  // before the DHT driver and UDP trackers: their armed receives point into them
    dht_.reset();
    udp_.reset();
  }

  absl::StatusOr<std::string> Run() {
    if (options_.watch_signals) {
      sigset_t mask;
      sigemptyset(&mask);
      sigaddset(&mask, SIGINT);
      sigaddset(&mask, SIGTERM);
      signal_fd_ = signalfd(-1, &mask, SFD_CLOEXEC);
      if (signal_fd_ >= 0) {
        signal_c_ = MakeCompletion<&Fetcher::OnSignal>(this);
        ring_->Read(signal_fd_, &siginfo_, sizeof(siginfo_), 0, &signal_c_);
      }
    }
    const Instant start = Now();
    now_ = start;
    Announce();
    StartDht();
    fetch_.AddPeerCandidates(options_.peers, now_);
    Drain();
    Instant last_progress{start.ms - 1000};
    while (!fetch_.done()) {
      if (stopped_ || (options_.stop != nullptr && options_.stop->load())) {
        return absl::CancelledError("stopped before the metadata arrived");
      }
      if (options_.timeout_ms > 0 && now_.ms - start.ms >= options_.timeout_ms) {
        return absl::DeadlineExceededError("no peer gave the metadata in time");
      }
      const Instant next = fetch_.NextTimeout();
      int64_t wait = std::clamp<int64_t>(next.ms - now_.ms, 0, 250);
      absl::StatusOr<int> r = ring_->RunOnce(static_cast<int>(wait));
      if (!r.ok()) return r.status();
      now_ = Now();
      if (!(now_ < fetch_.NextTimeout())) {
        fetch_.HandleTick(now_);
        Drain();
      }
      if (http_ != nullptr) TakeTrackerReplies();
      if (udp_ != nullptr) udp_->Tick(now_);
      TakeUdpReplies();
      if (now_.ms >= next_announce_.ms && fetch_.num_metadata_peers() == 0) Announce();
      if (dht_ != nullptr) {
        dht_->Tick(now_);
        if (now_.ms >= next_dht_lookup_.ms && fetch_.num_metadata_peers() == 0) DhtLookup();
      }
      if (now_.ms - last_progress.ms >= 1000 && options_.on_progress) {
        last_progress = now_;
        options_.on_progress(fetch_.num_peers(), fetch_.num_metadata_peers());
      }
    }
    return fetch_.info_bytes();
  }

 private:
  struct Conn {
    Fetcher* f = nullptr;
    PeerKey key = 0;
    int fd = -1;
    PeerAddress address;
    sockaddr_storage sa{};
    socklen_t sa_len = 0;
    __kernel_timespec connect_ts{};
    std::vector<uint8_t> rbuf;
    size_t rlen = 0;
    int ops = 0;
    bool connected = false;
    bool closing = false;
    bool sending = false;
    absl::Span<const uint8_t> send_span;
    Completion connect_c, recv_c, send_c;
    void OnConnect(int32_t res, uint32_t) { f->OnConnect(*this, res); }
    void OnRecv(int32_t res, uint32_t) { f->OnRecv(*this, res); }
    void OnSend(int32_t res, uint32_t) { f->OnSend(*this, res); }
  };

  void Log(const std::string& line, bool verbose = false) {
    if (verbose && !options_.verbose) return;
    if (options_.on_log) options_.on_log(line);
  }

  void OnSignal(int32_t res, uint32_t) {
    if (res <= 0) return;
    stopped_ = true;
    if (options_.stop_signal != nullptr)
      *options_.stop_signal = static_cast<int>(siginfo_.ssi_signo);
  }

  // --- trackers ---
  void Announce() {
    next_announce_ = Instant{now_.ms + kReannounceMs};
    engine::AnnounceParams params;
    params.info_hash = options_.info_hash;
    params.peer_id = self_id_;
    params.port = options_.listen_port;
    params.left = 1;  // unknown until the metadata is in; a leecher's 0 would get no seeds
    for (const std::string& url : options_.trackers) {
      if (engine::IsHttpTrackerUrl(url)) {
        AnnounceHttp(url, params);
      } else if (absl::StatusOr<engine::UdpTrackerEndpoint> udp = engine::ParseUdpTrackerUrl(url);
                 udp.ok()) {
        AnnounceUdp(url, *udp, params);
      }
    }
  }

  void AnnounceHttp(const std::string& url, const engine::AnnounceParams& params) {
    if (http_ == nullptr) {
      absl::StatusOr<std::unique_ptr<HttpFetcher>> h = HttpFetcher::Create();
      if (!h.ok()) {
        Log(absl::StrCat("HTTP trackers unavailable: ", h.status().message()));
        return;
      }
      http_ = std::move(*h);
    }
    absl::StatusOr<std::string> full = engine::BuildAnnounceUrl(url, params);
    if (!full.ok()) {
      Log(absl::StrCat("tracker ", url, ": ", full.status().message()));
      return;
    }
    http_->Get(next_request_id_++, *full, 15'000);
  }

  // BEP 15: a magnet's trackers are mostly udp:// ones. Two retransmissions (15 s + 30 s) before
  // giving up, then the next re-announce tries again.
  void AnnounceUdp(const std::string& url, const engine::UdpTrackerEndpoint& endpoint,
                   const engine::AnnounceParams& params) {
    if (udp_ == nullptr) {
      absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> u = UdpTrackerTransport::Create(
          ring_.get(),
          // May run inside Announce or Tick: the replies wait for TakeUdpReplies.
          [this](uint64_t id, absl::StatusOr<engine::AnnounceResponse> r) {
            udp_replies_.emplace_back(id, std::move(r));
          },
          absl::Uniform<uint64_t>(absl::BitGen()));
      if (!u.ok()) {
        Log(absl::StrCat("UDP trackers unavailable: ", u.status().message()));
        return;
      }
      udp_ = std::move(*u);
    }
    const uint64_t id = next_request_id_++;
    udp_urls_[id] = url;
    udp_->Announce(id, endpoint.host, endpoint.port, params, /*max_retransmits=*/2, now_);
  }

  void TakeUdpReplies() {
    std::vector<std::pair<uint64_t, absl::StatusOr<engine::AnnounceResponse>>> replies;
    replies.swap(udp_replies_);
    for (auto& [id, resp] : replies) {
      auto url = udp_urls_.find(id);
      const std::string name = url != udp_urls_.end() ? url->second : "udp tracker";
      if (url != udp_urls_.end()) udp_urls_.erase(url);
      if (!resp.ok() || !resp->failure_reason.empty()) {
        Log(absl::StrCat("tracker ", name, ": ",
                         resp.ok() ? resp->failure_reason : std::string(resp.status().message())),
            true);
        continue;
      }
      Log(absl::StrCat("tracker ", name, ": ", resp->peers.size(), " peers"), true);
      fetch_.AddPeerCandidates(resp->peers, now_);
      Drain();
    }
  }

  void TakeTrackerReplies() {
    std::vector<HttpResult> results;
    http_->TakeResults(&results);
    for (HttpResult& r : results) {
      if (!r.body.ok()) {
        Log(absl::StrCat("tracker: ", r.body.status().message()), true);
        continue;
      }
      absl::StatusOr<engine::AnnounceResponse> resp = engine::ParseAnnounceResponse(*r.body);
      if (!resp.ok() || !resp->failure_reason.empty()) {
        Log(absl::StrCat("tracker: ",
                         resp.ok() ? resp->failure_reason : std::string(resp.status().message())),
            true);
        continue;
      }
      Log(absl::StrCat("tracker: ", resp->peers.size(), " peers"), true);
      fetch_.AddPeerCandidates(resp->peers, now_);
      Drain();
    }
  }

  // --- DHT ---
  void StartDht() {
    if (!options_.dht.enabled) return;
    DhtDriver::Options o;
    o.port = options_.dht_port;
    o.bootstrap = options_.dht.bootstrap;
    o.state_file = options_.dht.state_file;
    o.on_log = [this](const std::string& line) { Log(line); };
    o.on_peers = [this](const engine::InfoHash& ih, const std::vector<PeerAddress>& peers) {
      if (ih != options_.info_hash) return;
      Log(absl::StrCat("dht: ", peers.size(), " peers"), true);
      fetch_.AddPeerCandidates(peers, now_);
      Drain();
    };
    o.on_lookup_done = [this](const engine::InfoHash& ih, int responded, int, bool) {
      if (ih != options_.info_hash) return;
      Log(absl::StrCat("dht: get_peers done: ", responded, " nodes answered"), true);
    };
    absl::StatusOr<std::unique_ptr<DhtDriver>> d =
        DhtDriver::Create(ring_.get(), std::move(o), now_);
    if (!d.ok()) {
      Log(absl::StrCat("dht: unavailable: ", d.status().message()));
      return;
    }
    dht_ = std::move(*d);
    DhtLookup();
  }

  // A lookup needs nodes: until bootstrap has found some, try again on the next loop turn (the
  // bootstrap node's answer is what wakes it).
  void DhtLookup() {
    const bool started =
        dht_->nodes() > 0 && dht_->GetPeers(options_.info_hash, options_.listen_port, now_);
    if (started) Log(absl::StrCat("dht: get_peers from ", dht_->nodes(), " nodes"), true);
    next_dht_lookup_ = Instant{now_.ms + (started ? kReannounceMs : 0)};
  }

  // --- sockets ---
  void Dial(PeerAddress address) {
    // IPv6 candidates come from x.pe ([::1]:PORT), --peer, trackers' peers6 and the IPv6 DHT.
    const int fd = socket(address.v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fetch_.HandleConnectFailed(address, now_);
      return;
    }
    auto c = std::make_unique<Conn>();
    c->f = this;
    c->key = next_key_++;
    c->fd = fd;
    c->address = address;
    c->connect_c = MakeCompletion<&Conn::OnConnect>(c.get());
    c->recv_c = MakeCompletion<&Conn::OnRecv>(c.get());
    c->send_c = MakeCompletion<&Conn::OnSend>(c.get());
    if (address.v6) {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&c->sa);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(address.port);
      std::memcpy(&sa->sin6_addr, address.ip6.data(), address.ip6.size());
      c->sa_len = sizeof(sockaddr_in6);
    } else {
      auto* sa = reinterpret_cast<sockaddr_in*>(&c->sa);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(address.port);
      sa->sin_addr.s_addr = htonl(address.ip);
      c->sa_len = sizeof(sockaddr_in);
    }
    c->connect_ts.tv_sec = kConnectTimeoutSec;
    ++c->ops;
    Conn* raw = c.get();
    conns_[raw->key] = std::move(c);
    ring_->ConnectWithTimeout(fd, reinterpret_cast<sockaddr*>(&raw->sa), raw->sa_len,
                              &raw->connect_ts, &raw->connect_c);
  }

  void OnConnect(Conn& c, int32_t res) {
    --c.ops;
    if (c.closing) return MaybeFree(c);
    if (res < 0) {
      Log(absl::StrCat("peer ", c.address.ToString(), ": connect failed: ", strerror(-res)), true);
      fetch_.HandleConnectFailed(c.address, now_);
      c.closing = true;
      MaybeFree(c);
      Drain();
      return;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Log(absl::StrCat("peer ", c.address.ToString(), ": connected"), true);
    c.connected = true;
    c.rbuf.resize(kRecvInitial);
    fetch_.HandlePeerConnected(c.key, c.address, now_);
    ArmRecv(c);
    Drain();
  }

  void ArmRecv(Conn& c) {
    if (c.rlen == c.rbuf.size()) {
      if (c.rbuf.size() >= kRecvMax) {
        // The engine consumes every whole message and refuses longer ones, so a full buffer
        // at the cap cannot happen with a well-behaved engine; close rather than spin.
        CloseConn(c, "receive buffer full");
        return;
      }
      c.rbuf.resize(std::min(kRecvMax, c.rbuf.size() * 2));
    }
    ++c.ops;
    ring_->Recv(c.fd, c.rbuf.data() + c.rlen, c.rbuf.size() - c.rlen, &c.recv_c);
  }

  void OnRecv(Conn& c, int32_t res) {
    --c.ops;
    if (c.closing) return MaybeFree(c);
    if (res <= 0) {
      Log(absl::StrCat("peer ", c.address.ToString(), ": closed (",
                       res == 0 ? "by peer" : strerror(-res), ")"),
          true);
      fetch_.HandlePeerClosed(c.key, now_);
      c.closing = true;
      MaybeFree(c);
      Drain();
      return;
    }
    c.rlen += static_cast<size_t>(res);
    const size_t used = fetch_.HandleBytes(c.key, absl::MakeConstSpan(c.rbuf.data(), c.rlen), now_);
    const PeerKey key = c.key;
    Drain();
    auto it = conns_.find(key);
    if (it == conns_.end() || it->second->closing) return;
    Conn& cc = *it->second;
    std::memmove(cc.rbuf.data(), cc.rbuf.data() + used, cc.rlen - used);
    cc.rlen -= used;
    ArmRecv(cc);
  }

  void Flush(Conn& c) {
    if (c.sending || c.closing || !c.connected) return;
    c.send_span = fetch_.NextSend(c.key);
    if (c.send_span.empty()) return;
    c.sending = true;
    ++c.ops;
    ring_->Send(c.fd, c.send_span.data(), c.send_span.size(), &c.send_c);
  }

  void OnSend(Conn& c, int32_t res) {
    --c.ops;
    c.sending = false;
    if (c.closing) return MaybeFree(c);
    if (res < 0) {
      fetch_.HandlePeerClosed(c.key, now_);
      c.closing = true;
      MaybeFree(c);
      Drain();
      return;
    }
    fetch_.HandleSent(c.key, static_cast<size_t>(res), now_);
    Flush(c);
  }

  void CloseConn(Conn& c, const std::string& why) {
    if (c.closing) return;
    if (!why.empty()) {
      Log(absl::StrCat("peer ", c.address.ToString(), ": closed (", why, ")"), true);
    }
    c.closing = true;
    ::shutdown(c.fd, SHUT_RDWR);  // completes its recv and send, so the ops drain
    MaybeFree(c);
  }

  void MaybeFree(Conn& c) {
    if (c.ops > 0) return;
    ::close(c.fd);
    conns_.erase(c.key);
  }

  void Drain() {
    std::vector<Action> actions;
    for (fetch_.TakeActions(&actions); !actions.empty(); fetch_.TakeActions(&actions)) {
      for (const Action& a : actions) {
        switch (a.type) {
          case Action::Type::kConnect:
            Dial(a.address);
            break;
          case Action::Type::kFlush:
            if (auto it = conns_.find(a.peer); it != conns_.end()) Flush(*it->second);
            break;
          case Action::Type::kClose:
            if (auto it = conns_.find(a.peer); it != conns_.end()) {
              CloseConn(*it->second,
                        a.message.empty() ? engine::CloseReasonName(a.reason) : a.message);
            }
            break;
          case Action::Type::kLog:
            Log(a.message);
            break;
          default:
            break;
        }
      }
    }
  }

  const MetadataFetchOptions& options_;
  std::unique_ptr<Ring> ring_;
  engine::MetadataFetch fetch_;
  engine::PeerId self_id_;
  Instant now_{};
  absl::flat_hash_map<PeerKey, std::unique_ptr<Conn>> conns_;
  PeerKey next_key_ = 1;
  int signal_fd_ = -1;
  signalfd_siginfo siginfo_{};
  Completion signal_c_{};
  bool stopped_ = false;
  std::unique_ptr<HttpFetcher> http_;
  std::unique_ptr<UdpTrackerTransport> udp_;
  std::vector<std::pair<uint64_t, absl::StatusOr<engine::AnnounceResponse>>> udp_replies_;
  absl::flat_hash_map<uint64_t, std::string> udp_urls_;  // request id → the tracker's URL
  uint64_t next_request_id_ = 1;
  Instant next_announce_{};
  std::unique_ptr<DhtDriver> dht_;
  Instant next_dht_lookup_{};
};

}  // namespace

absl::StatusOr<std::string> FetchMetadata(const MetadataFetchOptions& options) {
  absl::StatusOr<std::unique_ptr<Ring>> ring = Ring::Create(256);
  if (!ring.ok()) return ring.status();
  absl::BitGen gen;
  Fetcher f(options, std::move(*ring),
            engine::MakePeerId(absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen)));
  return f.Run();
}

}  // namespace torrenty::io
