#include "io/session/torrent_session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "engine/tracker/announcer.h"
#include "engine/base/text_escape.h"
#include "engine/torrent/torrent.h"
#include "engine/codec/wire.h"
#include "io/disk/disk_io.h"
#include "io/disk/file_store.h"
#include "io/disk/hash_pool.h"
#include "io/tracker/http_fetcher.h"
#include "io/disk/resume_writer.h"
#include "io/ring/ring.h"
#include "io/session/shared_piece_claims.h"
#include "io/session/shared_piece_memory.h"
#include "io/tracker/udp_tracker_transport.h"

namespace torrenty::io {
namespace {

using engine::Action;
using engine::Instant;
using engine::PeerAddress;
using engine::PeerKey;

constexpr int kTickMs = 250;
constexpr int kConnectTimeoutSec = 10;
constexpr int kAnnounceTimeoutMs = 15'000;
// After the last piece, wait at most this long for the `stopped` announce before exiting.
constexpr int64_t kStopGraceMs = 3'000;
// Memory kept for serving, over all shards. A piece up to kReadExtentMax is one entry, so a
// peer's requests for it are answered from one disk read; a larger piece is cached in extents of
// kReadExtentMax, so what one entry costs does not depend on the piece length a torrent chooses.
// Each shard keeps at least kReadCacheEntriesMin entries.
constexpr int64_t kReadCacheBytes = 32 << 20;
constexpr size_t kReadCacheEntriesMin = 4;
constexpr int64_t kReadExtentMax = 4 << 20;
constexpr size_t kRecvBufferMin = 256 << 10;
constexpr int64_t kResumeSaveMs = 5'000;
// Receive buffers start here and double (up to recv_buffer_size) while a peer keeps them full:
// 2000 idle peers then cost 2000 x 32 KiB instead of 2000 x 256 KiB.
constexpr size_t kRecvBufferInitial = 32 << 10;
// Incoming connections over all shards; more are refused at accept.
constexpr size_t kAcceptedConnectionsMax = 4096;
// The hash pool wakes its clients through a 64-bit mask.
constexpr int kShardsMax = 64;
// Dialled addresses remembered for the "no peer reachable" line.
constexpr size_t kOutcomesMax = 1 << 16;

Instant Now() {
  using namespace std::chrono;
  return Instant{duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count()};
}

// The client a peer id names, for verbose output: Azureus-style ids ("-qB4450-") as the two-letter
// code and version, aria2's "A2-1-36-0-" as aria2, anything else as nothing.
std::string ClientName(const engine::PeerId& id) {
  auto printable = [](uint8_t b) { return b >= 0x21 && b < 0x7F; };
  if (id[0] == '-' && id[7] == '-' && printable(id[1]) && printable(id[2])) {
    static constexpr std::pair<std::string_view, std::string_view> kKnown[] = {
        {"qB", "qBittorrent"}, {"TR", "Transmission"}, {"LT", "libtorrent"},
        {"lt", "rTorrent"},    {"DE", "Deluge"},       {"UT", "uTorrent"},
        {"TY", "Torrenty"},    {"AZ", "Vuze"},         {"BI", "BiglyBT"}};
    const std::string code{static_cast<char>(id[1]), static_cast<char>(id[2])};
    std::string name = code;
    for (const auto& [c, n] : kKnown)
      if (c == code) name = std::string(n);
    std::string version;
    for (int i = 3; i < 7; ++i) {
      if (!printable(id[i])) return name;
      absl::StrAppend(&version, version.empty() ? "" : ".",
                      std::string(1, static_cast<char>(id[i])));
    }
    return absl::StrCat(name, " ", version);
  }
  if (id[0] == 'A' && id[1] == '2' && id[2] == '-') return "aria2";
  return "";
}

engine::PeerId MakePeerId() {
  // Azureus-style client prefix, then random bytes (BEP 20).
  engine::PeerId id{};
  const char prefix[] = "-TY0001-";
  std::memcpy(id.data(), prefix, 8);
  absl::BitGen gen;
  for (size_t i = 8; i < id.size(); ++i) {
    id[i] = static_cast<uint8_t>(absl::Uniform<int>(gen, '0', '9' + 1));
  }
  return id;
}

sockaddr_in ToSockaddr(const PeerAddress& a) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(a.port);
  sa.sin_addr.s_addr = htonl(a.ip);
  return sa;
}

}  // namespace

// Tags for DiskIo operations: the high bit separates cache reads from piece writes.
constexpr uint64_t kReadTagBit = uint64_t{1} << 63;

// Control messages between shards. They carry per-piece and per-announce events, never blocks:
// the block path stays inside one shard.
struct ShardMessage {
  // kStop: coordinator -> shards. kRequestStop: TorrentSession::RequestStop -> coordinator, which
  // treats it like SIGINT/SIGTERM.
  // kPeerOutcome: shard -> coordinator, what became of a dialled peer (`peers[0]`, `piece` holds
  // the PeerOutcome), for the "no peer reachable" line.
  enum class Type { kPeers, kHave, kNeedPeers, kLog, kFatal, kStop, kRequestStop, kPeerOutcome };
  Type type = Type::kHave;
  uint32_t piece = 0;
  std::vector<PeerAddress> peers;
  std::string text;
};

// A shard's inbox: a vector swapped out under a short lock, plus an eventfd that the owning
// ring reads, so a post wakes the shard without it ever blocking on the lock while idle.
class Mailbox {
 public:
  Mailbox() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~Mailbox() {
    if (fd_ >= 0) ::close(fd_);
  }
  int fd() const { return fd_; }
  void Post(ShardMessage m) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(m));
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(fd_, &one, sizeof(one));
  }
  void Take(std::vector<ShardMessage>* out) {
    out->clear();
    std::lock_guard<std::mutex> lock(mu_);
    out->swap(queue_);
  }

 private:
  const int fd_;
  // std::mutex rather than absl::Mutex so ThreadSanitizer sees the synchronisation.
  std::mutex mu_;
  std::vector<ShardMessage> queue_;  // guarded by mu_
};

// What the shards of one torrent share: read-only after start-up except for the atomic claims.
struct TorrentSession::Shared {
  Shared(const engine::Metainfo& m, int64_t piece_memory_bytes)
      : meta(m), claims(m.num_pieces()), piece_memory(piece_memory_bytes) {}
  const engine::Metainfo& meta;
  SessionOptions options;
  engine::PeerId self_id = MakePeerId();
  std::unique_ptr<FileStore> store;
  std::unique_ptr<HashPool> hash_pool;
  SharedPieceClaims claims;
  SharedPieceMemory piece_memory;
  uint16_t port = 0;
  std::vector<std::unique_ptr<Impl>> shards;
};

// One shard: a thread with its own ring, connections, engine::Torrent and disk queue. Shard 0
// (the coordinator) also runs the trackers, signals, resume data and progress for the torrent.
struct TorrentSession::Impl {
  Shared& shared;
  const int index;
  const engine::Metainfo& meta;
  const SessionOptions& options;
  const engine::PeerId& self_id;
  FileStore* store;
  HashPool* hash_pool;
  int hash_client = 0;
  std::unique_ptr<Ring> ring;
  std::unique_ptr<DiskIo> disk;
  std::unique_ptr<HttpFetcher> http;
  std::unique_ptr<UdpTrackerTransport> udp;
  bool in_poll_announcer = false;
  std::unique_ptr<engine::Torrent> torrent;
  std::unique_ptr<engine::Announcer> announcer;
  // Saves which pieces are done (engine/resume.h) while a download runs; null when seeding.
  std::unique_ptr<ResumeWriter> resume;
  uint32_t resume_saved_count = UINT32_MAX;
  Instant last_resume_save{};
  uint16_t port = 0;
  int listen_fd = -1;
  Mailbox inbox;
  uint64_t inbox_evt = 0;
  Completion inbox_c;
  std::vector<ShardMessage> messages;
  // Published for the coordinator's progress and announces (relaxed: statistics only).
  std::atomic<int64_t> pub_downloaded{0}, pub_uploaded{0};
  std::atomic<uint32_t> pub_peers{0};
  std::atomic<bool> pub_done{false};
  int signal_fd = -1;
  size_t recv_buffer_size = kRecvBufferMin;

  // --- connections ---
  struct Conn {
    Impl* impl = nullptr;
    PeerKey key = 0;
    int fd = -1;
    PeerAddress address{};
    bool outgoing = false;
    bool connected = false;  // connect finished and engine knows the peer
    bool closing = false;
    bool engine_knows = false;
    bool handshaken = false;  // the engine accepted its handshake (for reporting)
    int ops = 0;  // operations in flight; the Conn is freed when this reaches 0 after closing
    sockaddr_in sa{};
    __kernel_timespec connect_ts{};
    std::unique_ptr<uint8_t[]> rbuf;
    size_t rcap = 0;  // starts small; grows while the peer keeps filling it
    size_t head = 0, tail = 0;
    bool recv_armed = false;
    bool send_armed = false;
    Completion recv_c, send_c, connect_c, close_c;

    void OnRecvThunk(int32_t res, uint32_t) { impl->OnRecv(*this, res); }
    void OnSendThunk(int32_t res, uint32_t) { impl->OnSend(*this, res); }
    void OnConnectThunk(int32_t res, uint32_t) { impl->OnConnect(*this, res); }
    void OnCloseThunk(int32_t res, uint32_t) { impl->OnClose(*this, res); }
  };
  absl::flat_hash_map<PeerKey, std::unique_ptr<Conn>> conns;
  PeerKey next_key = 1;

  // --- eventfd / signal / timer reads ---
  uint64_t hash_evt = 0, http_evt = 0;
  signalfd_siginfo sig_info{};
  int stop_signo = 0;
  Completion hash_c, http_c, sig_c, timer_c, accept_c, fsync_c;
  __kernel_timespec timer_ts{};
  std::vector<HashResult> hash_results;
  std::vector<HttpResult> http_results;
  std::vector<Action> actions;

  // --- disk ---
  std::deque<std::pair<uint32_t, absl::Span<const uint8_t>>> write_backlog;
  // One extent of a piece: bytes [extent * read_extent, + size) of it. It holds
  // engine::kBlockSize bytes past the extent's end, so a request that starts in the extent and
  // crosses into the next one is still answered from one buffer.
  struct CacheEntry {
    uint32_t piece = 0;
    uint32_t extent = 0;
    size_t size = 0;  // bytes loaded into data
    std::unique_ptr<uint8_t[]> data;
    bool loading = false;
    uint64_t last_used = 0;
    struct Waiter {
      PeerKey peer;
      uint32_t begin, length;
    };
    std::vector<Waiter> waiters;
  };
  std::vector<CacheEntry> cache;
  size_t cache_capacity = kReadCacheEntriesMin;
  int64_t read_extent = 0;       // min(piece length, kReadExtentMax)
  size_t cache_entry_bytes = 0;  // min(piece length, read_extent + kBlockSize)
  uint64_t cache_clock = 0;
  struct PendingRead {
    PeerKey peer;
    uint32_t piece, begin, length;
  };
  std::deque<PendingRead> read_backlog;

  // --- lifecycle ---
  bool stop_requested = false;
  bool stopping = false;
  Instant stop_deadline{};
  bool stop_announce_done = true;
  int fsyncs_pending = 0;
  bool completed_event = false;
  absl::Status fatal;
  Instant last_tick{}, start{};
  int64_t last_down = 0, last_up = 0;
  Instant last_rate{};
  double down_rate = 0, up_rate = 0;

  Impl(Shared& s, int shard_index)
      : shared(s),
        index(shard_index),
        meta(s.meta),
        options(s.options),
        self_id(s.self_id),
        store(s.store.get()),
        hash_pool(s.hash_pool.get()) {}
  ~Impl() {
    // The hash pool is gone by now (TorrentSession destroys it first: its threads may hold
    // spans into piece buffers). Then the ring, whose teardown cancels every operation that
    // still points into a Conn or cache entry.
    http.reset();
    ring.reset();
    for (auto& [key, c] : conns)
      if (c->fd >= 0) ::close(c->fd);
    if (listen_fd >= 0) ::close(listen_fd);
    if (signal_fd >= 0) ::close(signal_fd);
  }

  bool coordinator() const { return index == 0; }
  Impl& coordinator_shard() { return *shared.shards[0]; }

  // Every line may carry text from the network (tracker messages, peer errors): a newline in it
  // must not split the line, nor an escape sequence reach the terminal.
  void Log(const std::string& line, bool verbose = false) {
    if (!options.on_log || options.verbosity == SessionOptions::Verbosity::kQuiet) return;
    if (verbose && options.verbosity != SessionOptions::Verbosity::kVerbose) return;
    if (coordinator()) {
      options.on_log(engine::EscapeForTerminal(line));
    } else {
      ShardMessage m;
      m.type = ShardMessage::Type::kLog;
      m.text = line;
      coordinator_shard().inbox.Post(std::move(m));
    }
  }

  // --- why there are no peers ---
  // What last became of each dialled address. Refusals and failures are summed up in one line
  // when no peer is connected and every dialled one has failed.
  enum class PeerOutcome : uint32_t {
    kConnected,
    kFine,  // closed for a reason that is no failure (both seeds, duplicate connection)
    kRefused,
    kTimeout,
    kUnreachable,
    kBadHandshake,
    kClosedBeforeHandshake,
    kClosedAfterHandshake,
    kProtocolError,
    kBanned,
  };
  static const char* OutcomeName(PeerOutcome o) {
    switch (o) {
      case PeerOutcome::kConnected:
        return "connected";
      case PeerOutcome::kFine:
        return "fine";
      case PeerOutcome::kRefused:
        return "refused";
      case PeerOutcome::kTimeout:
        return "timed out";
      case PeerOutcome::kUnreachable:
        return "unreachable";
      case PeerOutcome::kBadHandshake:
        return "bad handshake";
      case PeerOutcome::kClosedBeforeHandshake:
        return "closed before handshake";
      case PeerOutcome::kClosedAfterHandshake:
        return "closed after handshake";
      case PeerOutcome::kProtocolError:
        return "protocol error";
      case PeerOutcome::kBanned:
        return "banned";
    }
    return "?";
  }
  absl::flat_hash_map<PeerAddress, PeerOutcome> outcomes;  // coordinator only
  std::string last_unreachable;                            // the line printed last

  void ReportOutcome(PeerAddress address, PeerOutcome outcome) {
    if (coordinator()) {
      RecordOutcome(address, outcome);
      return;
    }
    ShardMessage m;
    m.type = ShardMessage::Type::kPeerOutcome;
    m.peers.push_back(address);
    m.piece = static_cast<uint32_t>(outcome);
    coordinator_shard().inbox.Post(std::move(m));
  }

  void RecordOutcome(PeerAddress address, PeerOutcome outcome) {
    // Trackers choose how many addresses we dial over a long run: start over rather than grow.
    if (outcomes.size() >= kOutcomesMax && !outcomes.contains(address)) outcomes.clear();
    outcomes[address] = outcome;
  }

  // Once a second on the coordinator: one line when every dialled peer failed and none is
  // connected, printed again only when the counts change.
  void CheckReachable(uint32_t peers_connected) {
    if (peers_connected > 0 || outcomes.empty() || stopping) return;
    constexpr size_t kOutcomes = static_cast<size_t>(PeerOutcome::kBanned) + 1;
    size_t counts[kOutcomes] = {};
    for (const auto& [address, outcome] : outcomes) {
      if (outcome == PeerOutcome::kConnected || outcome == PeerOutcome::kFine) return;
      ++counts[static_cast<size_t>(outcome)];
    }
    std::string line = "no peer reachable:";
    const char* sep = " ";
    for (size_t i = 0; i < kOutcomes; ++i) {
      if (counts[i] == 0) continue;
      absl::StrAppend(&line, sep, counts[i], " ", OutcomeName(static_cast<PeerOutcome>(i)));
      sep = ", ";
    }
    if (line == last_unreachable) return;
    last_unreachable = line;
    Log(line);
  }

  void PostToOthers(const ShardMessage& m) {
    for (auto& shard : shared.shards) {
      if (shard.get() != this) shard->inbox.Post(m);
    }
  }

  // Peers are spread over shards by address, so each is dialled by exactly one shard.
  void DistributePeers(absl::Span<const PeerAddress> peers, Instant now) {
    const size_t n = shared.shards.size();
    std::vector<std::vector<PeerAddress>> per_shard(n);
    for (const PeerAddress& a : peers) {
      per_shard[absl::HashOf(a) % n].push_back(a);
    }
    for (size_t i = 0; i < n; ++i) {
      if (per_shard[i].empty()) continue;
      if (shared.shards[i].get() == this) {
        torrent->AddPeerCandidates(per_shard[i], now);
      } else {
        ShardMessage m;
        m.type = ShardMessage::Type::kPeers;
        m.peers = std::move(per_shard[i]);
        shared.shards[i]->inbox.Post(std::move(m));
      }
    }
  }

  // ---------------------------------------------------------------------------------------
  absl::Status Listen() {
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) return absl::ErrnoToStatus(errno, "socket");
    int one = 1;
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    // Every shard listens on the same port; the kernel spreads incoming connections over them.
    setsockopt(listen_fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    std::vector<uint16_t> candidates;
    if (!coordinator()) {
      candidates.push_back(shared.port);
    } else if (options.port_explicit) {
      candidates.push_back(options.port);
    } else {
      for (uint16_t p = 6881; p <= 6889; ++p) candidates.push_back(p);
      candidates.push_back(0);
    }
    for (uint16_t p : candidates) {
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(p);
      sa.sin_addr.s_addr = htonl(INADDR_ANY);
      if (bind(listen_fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
        if (listen(listen_fd, 128) != 0) return absl::ErrnoToStatus(errno, "listen");
        socklen_t len = sizeof(sa);
        getsockname(listen_fd, reinterpret_cast<sockaddr*>(&sa), &len);
        port = ntohs(sa.sin_port);
        return absl::OkStatus();
      }
      if (options.port_explicit || !coordinator()) {
        return absl::ErrnoToStatus(errno, absl::StrCat("cannot listen on port ", p));
      }
    }
    return absl::UnavailableError("no free listening port");
  }

  absl::Status Init(const engine::Bitfield& have) {
    absl::StatusOr<std::unique_ptr<Ring>> r = Ring::Create(4096);
    if (!r.ok()) return r.status();
    ring = std::move(*r);
    if (coordinator() && !have.all()) {
      resume = std::make_unique<ResumeWriter>(options.data_dir, store);
    }
    disk = std::make_unique<DiskIo>(
        ring.get(), store, [this](uint64_t tag, absl::Status st) { OnDiskDone(tag, st); }, 128);
    if (!coordinator()) {
      absl::StatusOr<int> client = hash_pool->AddClient();
      if (!client.ok()) return client.status();
      hash_client = *client;
    }
    if (inbox.fd() < 0) return absl::ErrnoToStatus(errno, "eventfd");
    if (absl::Status st = Listen(); !st.ok()) return st;
    if (coordinator()) shared.port = port;
    const int64_t shards = static_cast<int64_t>(shared.shards.size());

    engine::TorrentConfig cfg;
    cfg.self_id = self_id;
    cfg.listen_port = port;
    // Piece-assembly memory budget (default 32 MiB) over all shards, whatever the piece length:
    // a piece larger than the budget is fetched alone (engine/piece_memory.h).
    cfg.pieces_in_flight_max =
        engine::PiecesInFlightMax(options.piece_memory_bytes, meta.piece_length, shards);
    cfg.piece_memory = &shared.piece_memory;
    absl::BitGen gen;
    cfg.seed = absl::Uniform<uint64_t>(gen);
    torrent = std::make_unique<engine::Torrent>(meta, cfg, &shared.claims);
    torrent->SetHave(have);

    recv_buffer_size = std::max<size_t>(kRecvBufferMin,
                                        2 * size_t{engine::wire::MaxMessageLen(meta.num_pieces())});
    read_extent = std::min<int64_t>(meta.piece_length, kReadExtentMax);
    cache_entry_bytes =
        static_cast<size_t>(std::min<int64_t>(meta.piece_length, read_extent + engine::kBlockSize));
    cache_capacity = std::max<size_t>(
        kReadCacheEntriesMin,
        static_cast<size_t>(kReadCacheBytes / shards / static_cast<int64_t>(cache_entry_bytes)));
    inbox_c = MakeCompletion<&Impl::OnInbox>(this);
    hash_c = MakeCompletion<&Impl::OnHashEvent>(this);
    timer_c = MakeCompletion<&Impl::OnTimer>(this);
    accept_c = MakeCompletion<&Impl::OnAccept>(this);
    fsync_c = MakeCompletion<&Impl::OnFsync>(this);
    if (!coordinator()) return absl::OkStatus();

    engine::Announcer::Config acfg;
    acfg.info_hash = meta.info_hash;
    acfg.peer_id = self_id;
    acfg.port = port;
    announcer = std::make_unique<engine::Announcer>(acfg, meta.trackers, cfg.seed);
    if (announcer->has_http_trackers()) {
      absl::StatusOr<std::unique_ptr<HttpFetcher>> f = HttpFetcher::Create();
      if (!f.ok()) return f.status();
      http = std::move(*f);
    }
    if (announcer->has_udp_trackers()) {
      absl::StatusOr<std::unique_ptr<UdpTrackerTransport>> u = UdpTrackerTransport::Create(
          ring.get(),
          [this](uint64_t id, absl::StatusOr<engine::AnnounceResponse> r) {
            OnUdpResult(id, std::move(r));
          },
          cfg.seed ^ 0x9e3779b97f4a7c15ULL);
      if (!u.ok()) return u.status();
      udp = std::move(*u);
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (signal_fd < 0) return absl::ErrnoToStatus(errno, "signalfd");

    http_c = MakeCompletion<&Impl::OnHttpEvent>(this);
    sig_c = MakeCompletion<&Impl::OnSignal>(this);
    return absl::OkStatus();
  }

  // ---------------------------------------------------------------------------------------
  // The loop of one shard; the coordinator calls it after starting the other shards' threads.
  absl::Status Loop() {
    start = Now();
    last_rate = start;
    ring->Read(hash_pool->notify_fd(hash_client), &hash_evt, sizeof(hash_evt), 0, &hash_c);
    ring->Read(inbox.fd(), &inbox_evt, sizeof(inbox_evt), 0, &inbox_c);
    if (http) ring->Read(http->notify_fd(), &http_evt, sizeof(http_evt), 0, &http_c);
    if (coordinator()) ring->Read(signal_fd, &sig_info, sizeof(sig_info), 0, &sig_c);
    ring->Accept(listen_fd, &accept_c);
    ArmTimer();
    const Instant now = Now();
    if (coordinator()) {
      DistributePeers(options.peers, now);
      if (torrent->complete() && !options.seed_after_complete) {
        completed_event = true;  // nothing to download
        BeginStop(now);
      }
    }
    Tick(now);
    Drain();
    for (;;) {
      absl::StatusOr<int> n = ring->RunOnce(kTickMs);
      if (!n.ok()) {
        // A dead shard must not leave the others waiting for it.
        pub_done.store(true);
        if (!coordinator()) {
          ShardMessage m;
          m.type = ShardMessage::Type::kFatal;
          m.text = std::string(n.status().message());
          coordinator_shard().inbox.Post(std::move(m));
        }
        return n.status();
      }
      Drain();
      if (stopping && Finished()) break;
    }
    // Final totals for the coordinator's last report (the per-second publish may be stale).
    pub_downloaded.store(torrent->stats().downloaded_payload, std::memory_order_relaxed);
    pub_uploaded.store(torrent->stats().uploaded_payload, std::memory_order_relaxed);
    pub_done.store(true);
    return absl::OkStatus();
  }

  absl::Status Run() {
    std::vector<std::thread> threads;
    std::vector<absl::Status> results(shared.shards.size());
    for (size_t i = 1; i < shared.shards.size(); ++i) {
      threads.emplace_back([this, i, &results] { results[i] = shared.shards[i]->Loop(); });
    }
    absl::Status st = Loop();
    if (!st.ok()) {
      // The coordinator's ring failed before BeginStop could tell the others: tell them now, or
      // the joins below would wait forever.
      ShardMessage m;
      m.type = ShardMessage::Type::kStop;
      PostToOthers(m);
    }
    // Shards stop on the kStop the coordinator posted in BeginStop.
    for (std::thread& t : threads) t.join();
    for (absl::Status& r : results) {
      if (st.ok() && !r.ok()) st = r;
    }
    if (!st.ok()) return st;
    // Haves posted by shards just before they stopped.
    OnInbox(0, 0);
    if (torrent->complete() && !completed_event) {
      // The last pieces were finished by other shards as everything stopped: the loop is over,
      // so make them durable here.
      for (size_t i = 0; i < meta.files.size(); ++i) {
        const int fd = store->fd(static_cast<uint32_t>(i));
        if (fd >= 0 && fdatasync(fd) != 0 && fatal.ok())
          fatal = absl::ErrnoToStatus(errno, "fsync");
      }
    }
    Report(Now());
    if (resume) {
      // The loop has ended and every write has completed, so this snapshot is exact and the
      // next start can skip the recheck.
      resume->Save(torrent->have());
      // After a disk error the run has already failed with that error; a resume file that cannot
      // be written on the same full disk is expected (the old one stays valid) and not news.
      if (absl::Status st = resume->Flush(); !st.ok() && fatal.ok()) {
        Log(absl::StrCat("resume: ", st.message()));
      }
    }
    if (fatal.ok() && stop_requested && !torrent->complete()) {
      return absl::CancelledError(absl::StrCat(
          "stopped before the download completed (", torrent->have().count(), "/",
          meta.num_pieces(), " pieces verified; run the same command again to resume)"));
    }
    return fatal;
  }

  bool Finished() {
    if (!conns.empty() && Now() < stop_deadline) return false;
    if (coordinator()) {
      for (size_t i = 1; i < shared.shards.size(); ++i) {
        if (!shared.shards[i]->pub_done.load()) return false;
      }
    }
    if (disk->in_flight() > 0 || !write_backlog.empty() || fsyncs_pending > 0) return false;
    if (!stop_announce_done && Now() < stop_deadline) return false;
    return true;
  }

  void ArmTimer() {
    timer_ts.tv_sec = 0;
    timer_ts.tv_nsec = kTickMs * 1'000'000LL;
    ring->Timeout(&timer_ts, &timer_c);
  }

  void OnTimer(int32_t, uint32_t) {
    Tick(Now());
    Drain();
    ArmTimer();
  }

  void Tick(Instant now) {
    if (now.ms - last_tick.ms >= 1000) {
      last_tick = now;
      if (!stopping) torrent->HandleTick(now);
      const engine::TorrentStats& st = torrent->stats();
      pub_downloaded.store(st.downloaded_payload, std::memory_order_relaxed);
      pub_uploaded.store(st.uploaded_payload, std::memory_order_relaxed);
      pub_peers.store(st.peers_connected, std::memory_order_relaxed);
      if (coordinator()) {
        Report(now);
        MaybeSaveResume(now);
        uint32_t peers = st.peers_connected;
        for (size_t i = 1; i < shared.shards.size(); ++i) peers += shared.shards[i]->pub_peers;
        CheckReachable(peers);
      }
    }
    if (coordinator()) PollAnnouncer(now);
  }

  // At most every kResumeSaveMs, and only when pieces were added: a kill -9 then loses at most
  // that long of claimed progress, and the data itself is still found by the recheck.
  void MaybeSaveResume(Instant now) {
    if (!resume || stopping) return;
    if (now.ms - last_resume_save.ms < kResumeSaveMs) return;
    if (torrent->have().count() == resume_saved_count) return;
    last_resume_save = now;
    resume_saved_count = torrent->have().count();
    resume->Save(torrent->have());
  }

  void PollAnnouncer(Instant now) {
    if (!http && !udp) {
      stop_announce_done = true;
      return;
    }
    // UDP results may arrive synchronously from Tick/Announce; OnUdpResult then leaves polling
    // and draining to this loop.
    if (in_poll_announcer) return;
    in_poll_announcer = true;
    if (udp) udp->Tick(now);
    engine::TransferStats ts;
    ts.uploaded = SumUploaded();
    ts.downloaded = SumDownloaded();
    ts.left = torrent->bytes_left();
    while (std::optional<engine::PendingAnnounce> a = announcer->Poll(now, ts)) {
      if (stopping) stop_announce_done = false;
      if (a->transport == engine::PendingAnnounce::Transport::kUdp) {
        if (udp) {
          udp->Announce(a->id, a->udp_host, a->udp_port, a->params, a->udp_max_retransmits, now);
        } else {
          OnUdpResult(a->id, absl::InternalError("no UDP transport"));
        }
      } else if (http) {
        http->Get(a->id, a->url, kAnnounceTimeoutMs);
      } else {
        OnHttpResult(a->id, absl::InternalError("no HTTP fetcher"), now);
      }
    }
    in_poll_announcer = false;
  }

  int64_t SumDownloaded() const {
    int64_t sum = torrent->stats().downloaded_payload;
    for (size_t i = 1; i < shared.shards.size(); ++i) sum += shared.shards[i]->pub_downloaded;
    return sum;
  }
  int64_t SumUploaded() const {
    int64_t sum = torrent->stats().uploaded_payload;
    for (size_t i = 1; i < shared.shards.size(); ++i) sum += shared.shards[i]->pub_uploaded;
    return sum;
  }

  void Report(Instant now) {
    // The coordinator's torrent sees every shard's pieces (as remote haves); transfer counters
    // are summed from what the shards publish each second.
    const engine::TorrentStats& st = torrent->stats();
    const int64_t downloaded = SumDownloaded();
    const int64_t uploaded = SumUploaded();
    uint32_t peers = st.peers_connected;
    for (size_t i = 1; i < shared.shards.size(); ++i) peers += shared.shards[i]->pub_peers;
    const double dt = static_cast<double>(now.ms - last_rate.ms) / 1000.0;
    if (dt > 0.5) {
      down_rate = static_cast<double>(downloaded - last_down) / dt;
      up_rate = static_cast<double>(uploaded - last_up) / dt;
      last_down = downloaded;
      last_up = uploaded;
      last_rate = now;
    }
    if (!options.on_progress) return;
    SessionProgress p;
    p.pieces_have = st.pieces_have;
    p.pieces_total = meta.num_pieces();
    p.verified_bytes = st.verified_bytes;
    p.total_bytes = meta.total_length;
    p.downloaded_payload = downloaded;
    p.uploaded_payload = uploaded;
    p.download_rate = down_rate;
    p.upload_rate = up_rate;
    p.peers = peers;
    p.complete = torrent->complete();
    p.elapsed_s = static_cast<double>(now.ms - start.ms) / 1000.0;
    options.on_progress(p);
  }

  // ---------------------------------------------------------------------------------------
  // Engine actions

  void Drain() {
    for (;;) {
      torrent->TakeActions(&actions);
      if (actions.empty()) return;
      for (Action& a : actions) Execute(a);
    }
  }

  void Execute(Action& a) {
    const Instant now = Now();
    switch (a.type) {
      case Action::Type::kFlush:
        StartSend(a.peer);
        break;
      case Action::Type::kClose:
        if (a.reason != engine::CloseReason::kShutdown) {
          Log(absl::StrCat("closed peer ", a.address.ToString(), ": ",
                           engine::CloseReasonName(a.reason),
                           a.message.empty() ? "" : absl::StrCat(" (", a.message, ")")),
              /*verbose=*/a.reason != engine::CloseReason::kProtocolError &&
                  a.reason != engine::CloseReason::kBanned);
        }
        if (auto it = conns.find(a.peer); it != conns.end()) {
          if (it->second->outgoing) ReportOutcome(a.address, CloseOutcome(a.reason));
          it->second->engine_knows = false;
          CloseConn(*it->second);
        }
        break;
      case Action::Type::kConnect:
        Dial(a.address);
        break;
      case Action::Type::kHashPiece:
        hash_pool->Submit(hash_client, a.piece, a.data, meta.piece_hashes[a.piece]);
        break;
      case Action::Type::kWritePiece:
        write_backlog.emplace_back(a.piece, a.data);
        PumpWrites();
        break;
      case Action::Type::kReadBlock:
        ServeRead(PendingRead{a.peer, a.piece, a.begin, a.length});
        break;
      case Action::Type::kPieceDone: {
        // Publish before the have leaves, so the coordinator's `completed` announce counts
        // every byte of the last piece.
        pub_downloaded.store(torrent->stats().downloaded_payload, std::memory_order_relaxed);
        pub_uploaded.store(torrent->stats().uploaded_payload, std::memory_order_relaxed);
        ShardMessage m;
        m.type = ShardMessage::Type::kHave;
        m.piece = a.piece;
        PostToOthers(m);
        break;
      }
      case Action::Type::kComplete:
        // Every shard completes once all haves reached it; the coordinator acts for the torrent.
        if (coordinator()) OnComplete(now);
        break;
      case Action::Type::kNeedPeers:
        if (!coordinator()) {
          ShardMessage m;
          m.type = ShardMessage::Type::kNeedPeers;
          coordinator_shard().inbox.Post(std::move(m));
        } else if (http || udp) {
          announcer->NeedPeers(now);
        }
        break;
      case Action::Type::kLog:
        Log(a.message);
        break;
      case Action::Type::kFatal:
        if (!coordinator()) {
          ShardMessage m;
          m.type = ShardMessage::Type::kFatal;
          m.text = a.message;
          coordinator_shard().inbox.Post(std::move(m));
          break;
        }
        if (fatal.ok()) fatal = absl::InternalError(a.message);
        BeginStop(now);
        break;
    }
  }

  static PeerOutcome CloseOutcome(engine::CloseReason reason) {
    switch (reason) {
      case engine::CloseReason::kWrongInfoHash:
        return PeerOutcome::kBadHandshake;
      case engine::CloseReason::kProtocolError:
        return PeerOutcome::kProtocolError;
      case engine::CloseReason::kTimeout:
        return PeerOutcome::kTimeout;
      case engine::CloseReason::kBanned:
        return PeerOutcome::kBanned;
      case engine::CloseReason::kPeerClosed:
        return PeerOutcome::kClosedAfterHandshake;
      default:
        return PeerOutcome::kFine;
    }
  }

  void OnComplete(Instant now) {
    if (http || udp) announcer->Completed(now);
    PollAnnouncer(now);
    // Make the data durable before reporting success: exit 0 means the bytes are on disk.
    for (size_t i = 0; i < meta.files.size(); ++i) {
      const int fd = store->fd(static_cast<uint32_t>(i));
      if (fd < 0) continue;
      ++fsyncs_pending;
      ring->Fsync(fd, /*datasync=*/true, &fsync_c);
    }
    completed_event = true;
    if (!options.seed_after_complete) BeginStop(now);
  }

  void OnFsync(int32_t res, uint32_t) {
    --fsyncs_pending;
    if (res < 0 && fatal.ok()) fatal = absl::ErrnoToStatus(-res, "fsync");
  }

  void BeginStop(Instant now) {
    if (stopping) return;
    stopping = true;
    stop_deadline = Instant{now.ms + kStopGraceMs};
    torrent->Shutdown();
    if (coordinator()) {
      ShardMessage m;
      m.type = ShardMessage::Type::kStop;
      PostToOthers(m);
    }
    if (http || udp) {
      announcer->Stop(now);
      PollAnnouncer(now);
      // `stopped` waits for a `completed` still under way (within the grace period).
      if (announcer->stop_pending()) stop_announce_done = false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Sockets

  Conn* NewConn(int fd, PeerAddress address, bool outgoing) {
    auto c = std::make_unique<Conn>();
    c->impl = this;
    c->key = next_key++;
    c->fd = fd;
    c->address = address;
    c->outgoing = outgoing;
    c->recv_c = MakeCompletion<&Conn::OnRecvThunk>(c.get());
    c->send_c = MakeCompletion<&Conn::OnSendThunk>(c.get());
    c->connect_c = MakeCompletion<&Conn::OnConnectThunk>(c.get());
    c->close_c = MakeCompletion<&Conn::OnCloseThunk>(c.get());
    Conn* raw = c.get();
    conns[raw->key] = std::move(c);
    return raw;
  }

  void Dial(const PeerAddress& address) {
    const Instant now = Now();
    if (stopping) {
      torrent->HandleConnectFailed(address, now);
      return;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      torrent->HandleConnectFailed(address, now);
      return;
    }
    Conn* c = NewConn(fd, address, true);
    c->sa = ToSockaddr(address);
    c->connect_ts.tv_sec = kConnectTimeoutSec;
    ++c->ops;
    ring->ConnectWithTimeout(fd, reinterpret_cast<sockaddr*>(&c->sa), sizeof(c->sa), &c->connect_ts,
                             &c->connect_c);
  }

  void OnConnect(Conn& c, int32_t res) {
    --c.ops;
    const Instant now = Now();
    if (c.closing) {
      MaybeFree(c);
      return;
    }
    if (res < 0) {
      // The connect's linked timeout cancels it: -ECANCELED means it timed out.
      const PeerOutcome outcome = res == -ECONNREFUSED ? PeerOutcome::kRefused
                                  : res == -ECANCELED || res == -ETIMEDOUT || res == -ETIME
                                      ? PeerOutcome::kTimeout
                                      : PeerOutcome::kUnreachable;
      Log(absl::StrCat(
              "peer ", c.address.ToString(), ": connect failed: ",
              outcome == PeerOutcome::kUnreachable ? strerror(-res) : OutcomeName(outcome)),
          /*verbose=*/true);
      ReportOutcome(c.address, outcome);
      torrent->HandleConnectFailed(c.address, now);
      CloseConn(c);
      Drain();
      return;
    }
    Log(absl::StrCat("peer ", c.address.ToString(), ": connected (outgoing)"), /*verbose=*/true);
    ReportOutcome(c.address, PeerOutcome::kConnected);
    StartPeer(c, now);
  }

  void OnAccept(int32_t res, uint32_t) {
    if (res >= 0) {
      const int fd = res;
      sockaddr_in sa{};
      socklen_t len = sizeof(sa);
      getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len);
      PeerAddress address{ntohl(sa.sin_addr.s_addr), ntohs(sa.sin_port)};
      if (stopping || conns.size() >= kAcceptedConnectionsMax / shared.shards.size()) {
        ::close(fd);  // over the connection limit: refuse at once
      } else {
        Conn* c = NewConn(fd, address, false);
        Log(absl::StrCat("peer ", address.ToString(), ": connected (incoming)"), /*verbose=*/true);
        StartPeer(*c, Now());
      }
    } else if (res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
      Log(absl::StrCat("accept failed: ", strerror(-res)));
    }
    if (!stopping) ring->Accept(listen_fd, &accept_c);
    Drain();
  }

  void StartPeer(Conn& c, Instant now) {
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // Idle peers are the common case in a big swarm, so a connection starts with room for one
    // block message (or its bitfield) and grows only while it keeps the buffer full.
    c.rcap = std::min(
        recv_buffer_size,
        std::max(kRecvBufferInitial, size_t{engine::wire::MaxMessageLen(meta.num_pieces())} + 256));
    c.rbuf.reset(new uint8_t[c.rcap]);
    c.connected = true;
    c.engine_knows = true;
    torrent->HandlePeerConnected(c.key, c.address, c.outgoing, now);
    ArmRecv(c);
    Drain();
  }

  void ArmRecv(Conn& c) {
    if (c.closing || c.recv_armed) return;
    c.recv_armed = true;
    ++c.ops;
    ring->Recv(c.fd, c.rbuf.get() + c.tail, c.rcap - c.tail, &c.recv_c);
  }

  void OnRecv(Conn& c, int32_t res) {
    --c.ops;
    c.recv_armed = false;
    if (c.closing) {
      MaybeFree(c);
      return;
    }
    const Instant now = Now();
    if (res <= 0) {
      if (res == -EINTR || res == -EAGAIN) {
        ArmRecv(c);
        return;
      }
      PeerGone(c, res, now);
      return;
    }
    c.tail += static_cast<size_t>(res);
    const bool filled = c.tail == c.rcap;
    const size_t consumed = torrent->HandleBytes(
        c.key, absl::MakeConstSpan(c.rbuf.get() + c.head, c.tail - c.head), now);
    c.head += consumed;
    if (c.head == c.tail) c.head = c.tail = 0;
    if (!c.handshaken && torrent->IsHandshaken(c.key)) {
      c.handshaken = true;
      if (options.verbosity == SessionOptions::Verbosity::kVerbose) {
        const std::string client = ClientName(*torrent->PeerIdOf(c.key));
        Log(absl::StrCat("peer ", c.address.ToString(), ": handshake done",
                         client.empty() ? "" : absl::StrCat(", client ", client)),
            /*verbose=*/true);
      }
    }
    if (filled && c.rcap < recv_buffer_size) {
      GrowRecvBuffer(c);  // a busy peer: fewer, larger reads
    } else if (c.head > 0 && c.rcap - c.tail < c.rcap / 2) {
      // Keep room for at least one whole message; partial messages are rare and small.
      std::memmove(c.rbuf.get(), c.rbuf.get() + c.head, c.tail - c.head);
      c.tail -= c.head;
      c.head = 0;
    }
    Drain();
    if (!c.closing) ArmRecv(c);
  }

  void GrowRecvBuffer(Conn& c) {
    const size_t cap = std::min(recv_buffer_size, c.rcap * 2);
    std::unique_ptr<uint8_t[]> bigger(new uint8_t[cap]);
    std::memcpy(bigger.get(), c.rbuf.get() + c.head, c.tail - c.head);
    c.tail -= c.head;
    c.head = 0;
    c.rbuf = std::move(bigger);
    c.rcap = cap;
  }

  void StartSend(PeerKey key) {
    auto it = conns.find(key);
    if (it == conns.end()) return;
    Conn& c = *it->second;
    if (c.closing || c.send_armed || !c.connected) return;
    absl::Span<const uint8_t> out = torrent->NextSend(key);
    if (out.empty()) return;
    c.send_armed = true;
    ++c.ops;
    ring->Send(c.fd, out.data(), out.size(), &c.send_c);
  }

  void OnSend(Conn& c, int32_t res) {
    --c.ops;
    c.send_armed = false;
    if (c.closing) {
      MaybeFree(c);
      return;
    }
    const Instant now = Now();
    if (res < 0) {
      if (res == -EINTR || res == -EAGAIN) {
        StartSend(c.key);
        return;
      }
      PeerGone(c, res, now);
      return;
    }
    torrent->HandleSent(c.key, static_cast<size_t>(res), now);
    StartSend(c.key);
    Drain();
  }

  // The connection ended from the other side: `res` is 0 (closed) or a negative errno.
  void PeerGone(Conn& c, int32_t res, Instant now) {
    if (c.engine_knows) {
      const bool handshaken = c.handshaken || torrent->IsHandshaken(c.key);
      Log(absl::StrCat("closed peer ", c.address.ToString(), ": ",
                       res == 0 ? "closed by peer" : strerror(-res),
                       handshaken ? " after handshake" : " before handshake"),
          /*verbose=*/true);
      if (c.outgoing) {
        ReportOutcome(c.address, handshaken ? PeerOutcome::kClosedAfterHandshake
                                            : PeerOutcome::kClosedBeforeHandshake);
      }
      c.engine_knows = false;
      torrent->HandlePeerClosed(c.key, now);
    }
    CloseConn(c);
    Drain();
  }

  void CloseConn(Conn& c) {
    if (c.closing) return;
    c.closing = true;
    if (c.ops > 0) ring->CancelFd(c.fd, nullptr);
    MaybeFree(c);
  }

  void MaybeFree(Conn& c) {
    if (c.ops > 0) return;
    if (c.fd >= 0) {
      // The kernel holds no pointer into this Conn any more; closing through the ring keeps the
      // loop free of blocking syscalls.
      ++c.ops;
      const int fd = c.fd;
      c.fd = -1;
      ring->Close(fd, &c.close_c);
      return;
    }
    conns.erase(c.key);
  }

  void OnClose(Conn& c, int32_t) {
    --c.ops;
    MaybeFree(c);
  }

  // ---------------------------------------------------------------------------------------
  // Hashing, writing and reading

  void OnHashEvent(int32_t, uint32_t) {
    hash_pool->TakeResults(hash_client, &hash_results);
    const Instant now = Now();
    for (const HashResult& r : hash_results) {
      torrent->HandleHashResult(static_cast<uint32_t>(r.tag), r.ok, now);
      if (!r.ok) Log(absl::StrCat("piece ", r.tag, " failed its hash check; re-requesting"));
    }
    hash_results.clear();
    ring->Read(hash_pool->notify_fd(hash_client), &hash_evt, sizeof(hash_evt), 0, &hash_c);
    Drain();
  }

  void OnInbox(int32_t res, uint32_t) {
    inbox.Take(&messages);
    const Instant now = Now();
    for (ShardMessage& m : messages) {
      switch (m.type) {
        case ShardMessage::Type::kPeers:
          if (!stopping) torrent->AddPeerCandidates(m.peers, now);
          break;
        case ShardMessage::Type::kHave:
          torrent->HandleRemoteHave(m.piece, now);
          break;
        case ShardMessage::Type::kNeedPeers:
          if (http || udp) announcer->NeedPeers(now);
          break;
        case ShardMessage::Type::kLog:
          Log(m.text);
          break;
        case ShardMessage::Type::kPeerOutcome:
          if (!m.peers.empty()) RecordOutcome(m.peers[0], static_cast<PeerOutcome>(m.piece));
          break;
        case ShardMessage::Type::kFatal:
          if (fatal.ok()) fatal = absl::InternalError(m.text);
          BeginStop(now);
          break;
        case ShardMessage::Type::kStop:
          BeginStop(now);
          break;
        case ShardMessage::Type::kRequestStop:
          if (!stopping) Log("stopping on request");
          stop_requested = true;
          BeginStop(now);
          break;
      }
    }
    // res == 0 is the coordinator's last drain after the shards have joined: nothing to re-arm,
    // and no actions to run any more (the loop is over).
    if (res == 0) {
      torrent->TakeActions(&actions);
      return;
    }
    if (!(stopping && Finished())) {
      ring->Read(inbox.fd(), &inbox_evt, sizeof(inbox_evt), 0, &inbox_c);
    }
    Drain();
  }

  void PumpWrites() {
    while (!write_backlog.empty()) {
      auto [piece, data] = write_backlog.front();
      absl::Status st = disk->WritePiece(piece, data, piece);
      if (absl::IsResourceExhausted(st)) return;  // retried when an op completes
      write_backlog.pop_front();
      if (!st.ok()) torrent->HandlePieceWritten(piece, st, Now());
    }
  }

  void OnDiskDone(uint64_t tag, absl::Status st) {
    const Instant now = Now();
    if (tag & kReadTagBit) {
      OnCacheLoaded(static_cast<size_t>(tag & ~kReadTagBit), st, now);
    } else {
      torrent->HandlePieceWritten(static_cast<uint32_t>(tag), st, now);
    }
    PumpWrites();
    while (!read_backlog.empty() && disk->in_flight() < 100) {
      PendingRead r = read_backlog.front();
      read_backlog.pop_front();
      if (!ServeRead(r)) break;
    }
    Drain();
  }

  // Answers a peer's block request from the read cache, loading its extent if needed. Returns
  // false if the request had to wait in the backlog.
  bool ServeRead(const PendingRead& r) {
    const Instant now = Now();
    const uint32_t extent = static_cast<uint32_t>(r.begin / read_extent);
    for (size_t i = 0; i < cache.size(); ++i) {
      CacheEntry& e = cache[i];
      if (e.piece != r.piece || e.extent != extent || !e.data) continue;
      e.last_used = ++cache_clock;
      if (e.loading) {
        e.waiters.push_back({r.peer, r.begin, r.length});
      } else {
        AnswerFromEntry(e, r.peer, r.begin, r.length, absl::OkStatus(), now);
      }
      return true;
    }
    // Pick a slot: a new one while under capacity, else the least recently used idle one.
    size_t slot = cache.size();
    if (cache.size() >= cache_capacity) {
      slot = cache.size();
      for (size_t i = 0; i < cache.size(); ++i) {
        if (cache[i].loading) continue;
        if (slot == cache.size() || cache[i].last_used < cache[slot].last_used) slot = i;
      }
      if (slot == cache.size()) {
        read_backlog.push_back(r);
        return false;
      }
    } else {
      cache.emplace_back();
      cache.back().data.reset(new uint8_t[cache_entry_bytes]);
    }
    CacheEntry& e = cache[slot];
    const int64_t offset = int64_t{extent} * read_extent;
    e.piece = r.piece;
    e.extent = extent;
    e.size =
        static_cast<size_t>(std::min<int64_t>(meta.PieceSize(r.piece) - offset, cache_entry_bytes));
    e.loading = true;
    e.last_used = ++cache_clock;
    e.waiters.clear();
    e.waiters.push_back({r.peer, r.begin, r.length});
    absl::Status st =
        disk->ReadRange(r.piece, offset, absl::MakeSpan(e.data.get(), e.size), kReadTagBit | slot);
    if (absl::IsResourceExhausted(st)) {
      e.loading = false;
      e.piece = UINT32_MAX;
      e.waiters.clear();
      read_backlog.push_back(r);
      return false;
    }
    if (!st.ok()) OnCacheLoaded(slot, st, now);
    return true;
  }

  // The engine only asks for blocks of at most kBlockSize inside the piece, which always lie in
  // the entry of the extent they start in; the check keeps a broken caller from reading past it.
  void AnswerFromEntry(const CacheEntry& e, PeerKey peer, uint32_t begin, uint32_t length,
                       absl::Status st, Instant now) {
    absl::Span<const uint8_t> data;
    if (st.ok()) {
      const int64_t at = int64_t{begin} - int64_t{e.extent} * read_extent;
      if (at < 0 || at + int64_t{length} > static_cast<int64_t>(e.size)) {
        st = absl::InternalError(absl::StrCat("block [", begin, ", +", length, ") of piece ",
                                              e.piece, " is outside its cached extent"));
      } else {
        data = absl::MakeConstSpan(e.data.get() + at, length);
      }
    }
    torrent->HandleBlockRead(peer, e.piece, begin, data, st, now);
  }

  void OnCacheLoaded(size_t slot, const absl::Status& st, Instant now) {
    CacheEntry& e = cache[slot];
    e.loading = false;
    std::vector<CacheEntry::Waiter> waiters;
    waiters.swap(e.waiters);
    for (const auto& w : waiters) AnswerFromEntry(e, w.peer, w.begin, w.length, st, now);
    if (!st.ok()) e.piece = UINT32_MAX;
  }

  void OnHttpEvent(int32_t, uint32_t) {
    http->TakeResults(&http_results);
    const Instant now = Now();
    for (HttpResult& r : http_results) OnHttpResult(r.id, r.body, now);
    http_results.clear();
    ring->Read(http->notify_fd(), &http_evt, sizeof(http_evt), 0, &http_c);
    PollAnnouncer(now);
    Drain();
  }

  void OnHttpResult(uint64_t id, const absl::StatusOr<std::string>& body, Instant now) {
    OnAnnounceResponse(announcer->HandleResult(id, body, now), now);
  }

  // From UdpTrackerTransport: a completion (top level), or inside PollAnnouncer's Tick/Announce.
  void OnUdpResult(uint64_t id, absl::StatusOr<engine::AnnounceResponse> result) {
    const Instant now = Now();
    absl::StatusOr<engine::AnnounceResponse> resp = announcer->HandleUdpResult(id, result, now);
    if (absl::IsFailedPrecondition(resp.status())) return;  // stale: abandoned by Stop
    OnAnnounceResponse(std::move(resp), now);
    if (in_poll_announcer) return;
    PollAnnouncer(now);
    Drain();
  }

  void OnAnnounceResponse(absl::StatusOr<engine::AnnounceResponse> resp, Instant now) {
    if (stopping) {
      stop_announce_done = true;
      return;
    }
    if (!resp.ok()) {
      Log(std::string(resp.status().message()));  // "tracker URL: reason"
      return;
    }
    if (!resp->failure_reason.empty()) {
      Log(absl::StrCat("tracker failure: ", resp->failure_reason));
      return;
    }
    if (!resp->warning_message.empty())
      Log(absl::StrCat("tracker warning: ", resp->warning_message));
    Log(absl::StrCat(
            "tracker: ", resp->peers.size(), " peers, interval ", resp->interval, " s",
            resp->complete >= 0 ? absl::StrCat(", ", resp->complete, " seeders") : "",
            resp->incomplete >= 0 ? absl::StrCat(", ", resp->incomplete, " leechers") : ""),
        /*verbose=*/true);
    DistributePeers(resp->peers, now);
  }

  void OnSignal(int32_t res, uint32_t) {
    if (res > 0) {
      Log(absl::StrCat("stopping on ", strsignal(static_cast<int>(sig_info.ssi_signo))));
      stop_signo = static_cast<int>(sig_info.ssi_signo);
      stop_requested = true;
      BeginStop(Now());
      Drain();
    }
    if (res <= 0 || !stopping) ring->Read(signal_fd, &sig_info, sizeof(sig_info), 0, &sig_c);
  }
};

TorrentSession::TorrentSession(std::unique_ptr<Shared> shared) : shared_(std::move(shared)) {}

TorrentSession::~TorrentSession() {
  // Hash workers may still hold spans into the shards' piece buffers: stop them first.
  shared_->hash_pool.reset();
  shared_->shards.clear();
}

absl::StatusOr<std::unique_ptr<TorrentSession>> TorrentSession::Create(const engine::Metainfo& meta,
                                                                       const engine::Bitfield& have,
                                                                       SessionOptions options) {
  auto shared = std::make_unique<Shared>(meta, options.piece_memory_bytes);
  shared->options = std::move(options);
  int threads = shared->options.threads;
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  threads = std::clamp(threads, 1, kShardsMax);
  absl::StatusOr<std::unique_ptr<FileStore>> store = FileStore::Open(
      shared->options.data_dir, meta, have.all() ? OpenMode::kExisting : OpenMode::kCreate);
  if (!store.ok()) return store.status();
  shared->store = std::move(*store);
  if (shared->options.on_log) {
    for (const std::string& w : shared->store->warnings()) shared->options.on_log(w);
  }
  absl::StatusOr<std::unique_ptr<HashPool>> pool = HashPool::Create(shared->options.hash_threads);
  if (!pool.ok()) return pool.status();
  shared->hash_pool = std::move(*pool);
  for (int i = 0; i < threads; ++i) shared->shards.push_back(std::make_unique<Impl>(*shared, i));
  // The coordinator first: it picks the port the other shards then share.
  for (auto& shard : shared->shards) {
    if (absl::Status st = shard->Init(have); !st.ok()) return st;
  }
  return std::unique_ptr<TorrentSession>(new TorrentSession(std::move(shared)));
}

absl::Status TorrentSession::Run() { return shared_->shards[0]->Run(); }
uint16_t TorrentSession::port() const { return shared_->port; }
int TorrentSession::threads() const { return static_cast<int>(shared_->shards.size()); }
int TorrentSession::stop_signal() const { return shared_->shards[0]->stop_signo; }

void TorrentSession::RequestStop() {
  // shards is fixed after Create; the coordinator's inbox is thread-safe.
  ShardMessage m;
  m.type = ShardMessage::Type::kRequestStop;
  shared_->shards[0]->inbox.Post(std::move(m));
}

void TorrentSession::BlockStopSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
}

}  // namespace torrenty::io
