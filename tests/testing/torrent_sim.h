// A deterministic in-memory swarm for engine::Torrent (in the spirit of quinn-proto's `Pair` and
// TigerBeetle's simulator): N Torrents, one per simulated client, joined by in-memory pipes, with
// virtual time, in-memory "disks" and a seeded RNG that decides how bytes are split on the way.
//
// The simulator plays io/session/torrent_session.cc's part of the call protocol: after every
// Handle*() it drains TakeActions() and executes the actions. kFlush marks the connection end as
// sending; each step moves up to `upload_per_step` bytes from NextSend() into the pipe and reports
// them with HandleSent(). Each step delivers bytes in transit to the other side's HandleBytes(),
// keeping what it did not consume. Hashing, writes and block reads are queued and completed on
// the next step (in a random order), as a thread pool and io_uring would. kClose tears the pipe
// down and tells the other side with HandlePeerClosed() (the closer has already forgotten it).
//
// "Raw" ends let a test speak the wire protocol by hand to one Torrent. Every byte a Torrent
// sends is parsed by a tap, so tests can look at the messages each side sent and when.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/base/sha1.h"
#include "engine/base/types.h"
#include "engine/codec/wire.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/torrent.h"
#include "gtest/gtest.h"

namespace torrenty::testing {

// Random payload bytes.
inline std::vector<uint8_t> RandomBytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> out(n);
  for (uint8_t& b : out) b = static_cast<uint8_t>(rng());
  return out;
}

// A single-file Metainfo for `payload`, filled in by hand (no bencoding involved).
inline engine::Metainfo MakeMetainfo(absl::Span<const uint8_t> payload, int64_t piece_length) {
  engine::Metainfo m;
  m.name = "sim.bin";
  m.piece_length = piece_length;
  m.total_length = static_cast<int64_t>(payload.size());
  for (size_t off = 0; off < payload.size(); off += static_cast<size_t>(piece_length)) {
    const size_t len = std::min(payload.size() - off, static_cast<size_t>(piece_length));
    m.piece_hashes.push_back(engine::Sha1(payload.subspan(off, len)));
  }
  // Any 20 bytes will do; derive them from the content so different payloads differ.
  m.info_hash = engine::Sha1(payload.subspan(0, std::min<size_t>(payload.size(), 4096)));
  engine::FileEntry f;
  f.length = m.total_length;
  m.files.push_back(f);
  return m;
}

// A multi-file Metainfo for `payload`; `files` are (length, pad) in order and must add up to the
// payload's size. Pad files' bytes in `payload` should be zeros, as BEP 47 says.
inline engine::Metainfo MakeMetainfoWithFiles(absl::Span<const uint8_t> payload,
                                              int64_t piece_length,
                                              const std::vector<std::pair<int64_t, bool>>& files) {
  engine::Metainfo m = MakeMetainfo(payload, piece_length);
  m.files.clear();
  int n = 0;
  int64_t offset = 0;
  for (auto [length, pad] : files) {
    engine::FileEntry f;
    f.path = {pad ? ".pad" : "f", std::to_string(n++)};
    f.length = length;
    f.offset = offset;
    f.pad = pad;
    offset += length;
    m.files.push_back(f);
  }
  return m;
}

inline engine::PeerId MakeSimPeerId(uint32_t n) {
  engine::PeerId id{};
  const char prefix[] = "-TYSIM0-";
  std::memcpy(id.data(), prefix, 8);
  for (int i = 0; i < 4; ++i) id[8 + i] = static_cast<uint8_t>(n >> (8 * i));
  return id;
}

// One message seen on the wire.
struct WireEvent {
  engine::wire::MsgType type = engine::wire::MsgType::kKeepAlive;
  uint32_t index = 0;
  uint32_t begin = 0;
  uint32_t length = 0;
  int64_t time_ms = 0;
  uint64_t batch = 0;  // which NextSend() chunk carried the message's last byte
};

// Parses a byte stream (handshake first) into WireEvents.
class WireTap {
 public:
  void Feed(absl::Span<const uint8_t> bytes, int64_t time_ms, uint64_t batch) {
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    size_t off = 0;
    if (!saw_handshake_) {
      if (buf_.size() < engine::wire::kHandshakeSize) return;
      saw_handshake_ = true;
      off = engine::wire::kHandshakeSize;
    }
    for (;;) {
      engine::wire::Message msg;
      absl::StatusOr<size_t> n = engine::wire::ParseMessage(
          absl::MakeConstSpan(buf_).subspan(off), std::numeric_limits<uint32_t>::max(), &msg);
      if (!n.ok()) {
        ADD_FAILURE() << "tap: unparsable stream: " << n.status();
        buf_.clear();
        return;
      }
      if (*n == 0) break;
      off += *n;
      WireEvent e;
      e.type = msg.type;
      e.index = msg.index;
      e.begin = msg.begin;
      e.length = msg.length;
      e.time_ms = time_ms;
      e.batch = batch;
      events_.push_back(e);
    }
    buf_.erase(buf_.begin(), buf_.begin() + static_cast<ptrdiff_t>(off));
  }
  const std::vector<WireEvent>& events() const { return events_; }
  size_t Count(engine::wire::MsgType type) const {
    return static_cast<size_t>(std::count_if(events_.begin(), events_.end(),
                                             [&](const WireEvent& e) { return e.type == type; }));
  }

 private:
  bool saw_handshake_ = false;
  std::vector<uint8_t> buf_;
  std::vector<WireEvent> events_;
};

class Swarm {
 public:
  static constexpr int kRaw = -1;

  struct Options {
    uint64_t seed = 1;
    int64_t start_ms = 5'000'000;  // like a steady clock: not zero
    int64_t step_ms = 100;
    int64_t tick_ms = 1000;
    // Random partial sends and random split points on delivery.
    bool random_splits = false;
    // Tick each client only once its NextTimeout() has come (instead of every tick_ms), as a
    // driver that sleeps until the next deadline does.
    bool tick_on_deadline = false;
  };

  struct CloseRecord {
    int64_t time_ms = 0;
    engine::PeerKey key = 0;
    engine::PeerAddress address{};
    engine::CloseReason reason = engine::CloseReason::kNone;
    int pipe = -1;
    std::string message;
  };

  struct Client {
    int index = 0;
    engine::PeerAddress address{};
    std::unique_ptr<engine::Torrent> torrent;
    engine::TorrentConfig config;  // as given to AddClient
    std::vector<uint8_t> disk;
    std::vector<int> writes;    // kWritePiece actions per piece
    int hashed_on_arrival = 0;  // kHashPiece actions that carried a verdict
    int hash_chunks = 0;        // kHashChunk actions
    std::vector<CloseRecord> closes;
    std::vector<std::pair<int64_t, engine::PeerAddress>> dials;
    std::vector<std::string> fatals;
    int need_peers = 0;
    std::vector<std::string> logs;                             // kLog lines (choker decisions)
    std::vector<std::pair<uint32_t, bool>> web_pieces_hashed;  // kWebPieceHashed
    std::vector<int64_t> tick_times;                           // when HandleTick ran
    bool completed = false;
    int64_t completed_at = -1;
    bool online = true;    // accepts connections
    bool corrupt = false;  // flips a byte in every block it serves
    // When set, decides for each block read whether it is served, served corrupted or dropped
    // (never answered: give such a client a large reads_per_peer_max).
    enum class Serve { kServe, kCorrupt, kDrop };
    std::function<Serve(uint32_t piece, uint32_t begin)> serve_policy;
    size_t upload_per_step = std::numeric_limits<size_t>::max();  // per connection
    engine::PeerKey next_key = 100;
    uint16_t next_ephemeral = 40000;
    // Shards of one process: they share the piece claims, and each one's kPieceDone reaches the
    // others as HandleRemoteHave (io/ passes it as a message between shard threads).
    std::shared_ptr<engine::LocalPieceClaims> claims;
    std::vector<int> shard_group;  // every client of the group, this one included
  };

  struct End {
    int client = kRaw;
    engine::PeerKey key = 0;
    bool flushing = false;
    std::vector<uint8_t> recv;  // delivered but not consumed yet (raw: everything received)
    WireTap tap;                // what this end sent
  };

  struct Pipe {
    End end[2];
    std::vector<uint8_t> transit[2];  // transit[i]: sent by end i, not yet delivered
    bool open = true;
  };

  Swarm(const engine::Metainfo& meta, absl::Span<const uint8_t> payload, Options options)
      : meta_(meta),
        payload_(payload.begin(), payload.end()),
        options_(options),
        rng_(options.seed),
        now_(options.start_ms) {}

  // Adds a client; a seed starts with every piece on its disk.
  int AddClient(bool seed, engine::TorrentConfig config = {}) {
    engine::Bitfield have(meta_.num_pieces());
    if (seed) have.SetAll();
    return AddClientWith(have, config);
  }

  // Adds a client that starts with the pieces in `have` on its disk.
  int AddClientWith(const engine::Bitfield& have, engine::TorrentConfig config = {}) {
    std::unique_ptr<Client> c = NewClient();
    c->config = config;
    c->torrent = std::make_unique<engine::Torrent>(meta_, ClientConfig(c->index, config));
    c->writes.assign(meta_.num_pieces(), 0);
    c->disk.assign(payload_.size(), 0);
    for (uint32_t i = 0; i < meta_.num_pieces(); ++i) {
      if (!have.Get(i)) continue;
      const size_t off = static_cast<size_t>(i) * meta_.piece_length;
      std::copy(payload_.begin() + off, payload_.begin() + off + meta_.PieceSize(i),
                c->disk.begin() + off);
    }
    if (have.count() > 0) c->torrent->SetHave(have);
    clients_.push_back(std::move(c));
    return static_cast<int>(clients_.size()) - 1;
  }

  // A second shard of `primary`'s process: same torrent state shared through PieceClaims, its
  // own connections. Returns the new client.
  int AddShard(int primary, engine::TorrentConfig config = {}) {
    Client& p = *clients_[primary];
    if (!p.claims) {
      p.claims = std::make_shared<engine::LocalPieceClaims>(meta_.num_pieces());
      // Re-create the primary on the shared table (it has no connections yet).
      p.torrent =
          std::make_unique<engine::Torrent>(meta_, ClientConfig(primary, p.config), p.claims.get());
      p.shard_group = {primary};
    }
    std::unique_ptr<Client> c = NewClient();
    c->claims = p.claims;
    c->torrent =
        std::make_unique<engine::Torrent>(meta_, ClientConfig(c->index, config), c->claims.get());
    c->writes.assign(meta_.num_pieces(), 0);
    c->disk.assign(payload_.size(), 0);
    clients_.push_back(std::move(c));
    const int index = static_cast<int>(clients_.size()) - 1;
    p.shard_group.push_back(index);
    for (int member : p.shard_group) clients_[member]->shard_group = p.shard_group;
    return index;
  }

  // `from` learns `to`'s address (as from a tracker) and dials it.
  void Introduce(int from, int to) {
    const engine::PeerAddress a = clients_[to]->address;
    clients_[from]->torrent->AddPeerCandidates(absl::MakeConstSpan(&a, 1), now());
    DrainAll();
  }

  // A hand-driven peer dials client `to`. Returns the pipe id; end 1 is the raw side.
  int AttachRaw(int to, engine::PeerAddress from) {
    Client& t = *clients_[to];
    Pipe p;
    p.end[0].client = to;
    p.end[0].key = t.next_key++;
    p.end[1].client = kRaw;
    pipes_.push_back(std::move(p));
    const int id = static_cast<int>(pipes_.size()) - 1;
    by_key_[{to, pipes_[id].end[0].key}] = id;
    t.torrent->HandlePeerConnected(pipes_[id].end[0].key, from, /*outgoing=*/false, now());
    DrainAll();
    return id;
  }

  // Queues bytes from the raw end of `pipe`; they are delivered on the next step.
  void RawSend(int pipe, absl::Span<const uint8_t> bytes) {
    Pipe& p = pipes_[pipe];
    if (!p.open) return;
    p.transit[1].insert(p.transit[1].end(), bytes.begin(), bytes.end());
  }

  // The client's process goes away: every pipe of it is closed and the other ends are told.
  // With `offline`, connection attempts to it fail from now on.
  void Crash(int client, bool offline) {
    clients_[client]->online = !offline;
    for (size_t i = 0; i < pipes_.size(); ++i) {
      Pipe& p = pipes_[i];
      if (!p.open) continue;
      for (int s = 0; s < 2; ++s) {
        if (p.end[s].client != client) continue;
        ClosePipe(static_cast<int>(i), s, /*tell_self=*/true);
      }
    }
    DrainAll();
  }

  // One step of virtual time: sends, deliveries, disk completions, then timers.
  void Step() { StepTo(now_ + options_.step_ms); }

  // Step() to virtual time `t` (not before now).
  void StepTo(int64_t t) {
    now_ = std::max(now_, t);
    for (int id : Order(pipes_.size())) {
      for (int s = 0; s < 2; ++s) Pump(id, s);
    }
    for (int id : Order(pipes_.size())) {
      for (int s = 0; s < 2; ++s) Deliver(id, s);
    }
    for (int c : Order(clients_.size())) CompleteDiskOps(c);
    // Remote haves arrive one step late, like a message between shard threads.
    std::vector<std::pair<int, uint32_t>> haves;
    haves.swap(pending_remote_haves_);
    for (auto [shard, piece] : haves) {
      clients_[shard]->torrent->HandleRemoteHave(piece, now());
      DrainAll();
    }
    if (options_.tick_on_deadline) {
      for (int c : Order(clients_.size())) {
        engine::Torrent& t = *clients_[c]->torrent;
        if (now() < t.NextTimeout()) continue;
        Tick(c);
      }
    } else if ((now_ - options_.start_ms) % options_.tick_ms == 0) {
      for (int c : Order(clients_.size())) Tick(c);
    }
  }

  // Nothing moves: no bytes queued or in transit, no disk operation or remote have pending.
  bool Quiet() const {
    if (!pending_remote_haves_.empty()) return false;
    for (const auto& [client, ops] : disk_ops_)
      if (!ops.empty()) return false;
    for (const Pipe& p : pipes_) {
      if (!p.open) continue;
      for (int s = 0; s < 2; ++s) {
        if (!p.transit[s].empty() || (p.end[s].client != kRaw && p.end[s].flushing)) return false;
      }
    }
    return true;
  }

  // Like RunUntil (with options.tick_on_deadline), but while the swarm is Quiet() virtual time
  // jumps straight to the earliest NextTimeout() of any client, as a sleeping driver would.
  bool RunOnDeadlines(const std::function<bool()>& done, int64_t max_ms) {
    if (!options_.tick_on_deadline) ADD_FAILURE() << "RunOnDeadlines needs tick_on_deadline";
    const int64_t deadline = now_ + max_ms;
    int ticks_at_same_instant = 0;
    while (!done()) {
      if (now_ >= deadline) return false;
      if (Quiet()) {
        int64_t next = std::numeric_limits<int64_t>::max();
        for (const auto& c : clients_) next = std::min(next, c->torrent->NextTimeout().ms);
        if (next > deadline) {
          now_ = deadline;
          return done();
        }
        // A torrent that stays due at one instant would make a sleeping driver spin.
        if (next <= now_ && ++ticks_at_same_instant > 100) {
          ADD_FAILURE() << "NextTimeout() stays at " << next << ": a driver would spin";
          return false;
        }
        if (next > now_) ticks_at_same_instant = 0;
        StepTo(next);
        continue;
      }
      Step();
    }
    return true;
  }

  // Steps until `done` holds or `max_ms` of virtual time has passed; returns done().
  bool RunUntil(const std::function<bool()>& done, int64_t max_ms) {
    const int64_t deadline = now_ + max_ms;
    while (!done()) {
      if (now_ >= deadline) return false;
      Step();
    }
    return true;
  }

  bool AllComplete(const std::vector<int>& clients) const {
    for (int c : clients)
      if (!clients_[c]->completed) return false;
    return true;
  }

  engine::Instant now() const { return engine::Instant{now_}; }
  int64_t elapsed_ms() const { return now_ - options_.start_ms; }
  Client& client(int i) { return *clients_[i]; }
  engine::Torrent& torrent(int i) { return *clients_[i]->torrent; }
  Pipe& pipe(int id) { return pipes_[id]; }
  size_t num_pipes() const { return pipes_.size(); }
  const std::vector<uint8_t>& payload() const { return payload_; }

  // Open or closed pipes between clients a and b, with the side of `a`.
  std::vector<std::pair<int, int>> PipesBetween(int a, int b) const {
    std::vector<std::pair<int, int>> out;
    for (size_t i = 0; i < pipes_.size(); ++i) {
      for (int s = 0; s < 2; ++s) {
        if (pipes_[i].end[s].client == a && pipes_[i].end[1 - s].client == b) {
          out.emplace_back(static_cast<int>(i), s);
        }
      }
    }
    return out;
  }

  // Every message client `from` sent to client `to`, over all pipes between them.
  std::vector<WireEvent> Sent(int from, int to) const {
    std::vector<WireEvent> out;
    for (auto [id, s] : PipesBetween(from, to)) {
      const auto& ev = pipes_[id].end[s].tap.events();
      out.insert(out.end(), ev.begin(), ev.end());
    }
    std::stable_sort(out.begin(), out.end(),
                     [](const WireEvent& a, const WireEvent& b) { return a.time_ms < b.time_ms; });
    return out;
  }

  void Tick(int c) {
    engine::Torrent& t = *clients_[c]->torrent;
    t.HandleTick(now());
    clients_[c]->tick_times.push_back(now_);
    // A tick leaves nothing due at once (later inputs may make something due), or a driver
    // sleeping until NextTimeout() would spin.
    if (options_.tick_on_deadline && t.NextTimeout() <= now()) {
      ADD_FAILURE() << "client " << c << ": NextTimeout() " << t.NextTimeout().ms
                    << " not after the tick at " << now_;
    }
    DrainAll();
  }

  // Executes every pending action of every client until there are none.
  void DrainAll() {
    bool any = true;
    while (any) {
      any = false;
      for (auto& c : clients_) {
        std::vector<engine::Action> actions;
        c->torrent->TakeActions(&actions);
        if (actions.empty()) continue;
        any = true;
        for (engine::Action& a : actions) Execute(c->index, a);
      }
    }
  }

 private:
  struct DiskOp {
    engine::Action::Type type = engine::Action::Type::kFlush;
    engine::PeerKey peer = 0;
    uint32_t piece = 0, begin = 0, length = 0;
    engine::PieceBuffer buffer;  // hash and write: the engine's buffer, handed back on completion
    engine::Action::Verdict verdict = engine::Action::Verdict::kUnknown;  // kHashPiece
    // kHashPiece after chunks, kHashChunk: the running SHA-1 state (of `begin` bytes).
    engine::Sha1Hasher hasher;
    // kHashChunk: the engine's bytes, and a copy taken when the job was queued, to check that
    // the engine left them alone while they were "on the pool".
    absl::Span<const uint8_t> chunk;
    std::vector<uint8_t> chunk_copy;
  };
  static DiskOp MakeOp(engine::Action& a) {
    DiskOp op;
    op.type = a.type;
    op.peer = a.peer;
    op.piece = a.piece;
    op.begin = a.begin;
    op.length = a.length;
    op.buffer = std::move(a.buffer);
    op.verdict = a.verdict;
    op.hasher = std::move(a.hasher);
    return op;
  }

  // A client numbered after the existing ones, with its address; not yet in clients_.
  std::unique_ptr<Client> NewClient() const {
    auto c = std::make_unique<Client>();
    c->index = static_cast<int>(clients_.size());
    c->address = engine::PeerAddress{0x0A000001u + static_cast<uint32_t>(c->index), 6881};
    return c;
  }

  // `config` with the peer id, listen port and RNG seed of client `index`.
  engine::TorrentConfig ClientConfig(int index, engine::TorrentConfig config) const {
    config.self_id = MakeSimPeerId(static_cast<uint32_t>(index));
    config.listen_port = 6881;
    config.seed = options_.seed * 1000 + static_cast<uint64_t>(index);
    return config;
  }

  std::vector<int> Order(size_t n) {
    std::vector<int> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = static_cast<int>(i);
    std::shuffle(order.begin(), order.end(), rng_);
    return order;
  }

  size_t RandomLen(size_t max) {
    if (!options_.random_splits || max <= 1) return max;
    return 1 + static_cast<size_t>(rng_() % max);
  }

  int FindPipe(int client, engine::PeerKey key) const {
    auto it = by_key_.find({client, key});
    return it == by_key_.end() ? -1 : it->second;
  }

  int FindClient(engine::PeerAddress a) const {
    for (const auto& c : clients_)
      if (c->address == a) return c->index;
    return -1;
  }

  // Moves bytes end `s` has queued into the pipe.
  void Pump(int id, int s) {
    End& e = pipes_[id].end[s];
    if (!pipes_[id].open || e.client == kRaw || !e.flushing) return;
    Client& c = *clients_[e.client];
    size_t budget = c.upload_per_step;
    while (budget > 0 && pipes_[id].open) {
      absl::Span<const uint8_t> out = c.torrent->NextSend(e.key);
      if (out.empty()) {
        e.flushing = false;
        break;
      }
      const size_t n = RandomLen(std::min(out.size(), budget));
      pipes_[id].transit[s].insert(pipes_[id].transit[s].end(), out.begin(), out.begin() + n);
      e.tap.Feed(out.subspan(0, n), now_, ++batch_);
      budget -= n;
      c.torrent->HandleSent(e.key, n, now());
      DrainAll();
      if (options_.random_splits && n < out.size()) break;  // a short send: retry next step
    }
  }

  // Delivers bytes in transit from end `s` to the other end.
  void Deliver(int id, int s) {
    Pipe& p = pipes_[id];
    if (!p.open || p.transit[s].empty()) return;
    const size_t n = RandomLen(p.transit[s].size());
    End& dst = p.end[1 - s];
    dst.recv.insert(dst.recv.end(), p.transit[s].begin(), p.transit[s].begin() + n);
    p.transit[s].erase(p.transit[s].begin(), p.transit[s].begin() + static_cast<ptrdiff_t>(n));
    if (dst.client == kRaw) return;
    Client& c = *clients_[dst.client];
    const size_t consumed = c.torrent->HandleBytes(dst.key, dst.recv, now());
    if (consumed > dst.recv.size()) {
      ADD_FAILURE() << "HandleBytes consumed more than it was given";
    }
    pipes_[id].end[1 - s].recv.erase(
        pipes_[id].end[1 - s].recv.begin(),
        pipes_[id].end[1 - s].recv.begin() +
            static_cast<ptrdiff_t>(std::min(consumed, pipes_[id].end[1 - s].recv.size())));
    DrainAll();
  }

  // Closes a pipe from side `s`. The other end's Torrent is told; side s's Torrent only if
  // `tell_self` (a kClose means it already forgot the peer).
  void ClosePipe(int id, int s, bool tell_self) {
    Pipe& p = pipes_[id];
    if (!p.open) return;
    p.open = false;
    p.transit[0].clear();
    p.transit[1].clear();
    for (int i = 0; i < 2; ++i) {
      if (p.end[i].client == kRaw) continue;
      by_key_.erase({p.end[i].client, p.end[i].key});
      if (i == s && !tell_self) continue;
      clients_[p.end[i].client]->torrent->HandlePeerClosed(p.end[i].key, now());
    }
  }

  void Execute(int ci, engine::Action& a) {
    using T = engine::Action::Type;
    Client& c = *clients_[ci];
    switch (a.type) {
      case T::kFlush: {
        // The pipe may be gone already: the other side closed it before this was drained.
        const int id = FindPipe(ci, a.peer);
        if (id < 0) return;
        Pipe& p = pipes_[id];
        for (int s = 0; s < 2; ++s)
          if (p.end[s].client == ci && p.end[s].key == a.peer) p.end[s].flushing = true;
        break;
      }
      case T::kClose: {
        const int id = FindPipe(ci, a.peer);
        c.closes.push_back(CloseRecord{now_, a.peer, a.address, a.reason, id, a.message});
        if (id < 0) return;  // closed from the other side in the meantime
        if (c.torrent->IsConnected(a.peer)) {
          ADD_FAILURE() << "client " << ci << ": kClose but the engine still knows the peer";
        }
        const int side = pipes_[id].end[0].client == ci && pipes_[id].end[0].key == a.peer ? 0 : 1;
        ClosePipe(id, side, /*tell_self=*/false);
        break;
      }
      case T::kConnect: {
        c.dials.emplace_back(now_, a.address);
        const int ti = FindClient(a.address);
        if (ti < 0 || ti == ci || !clients_[ti]->online) {
          c.torrent->HandleConnectFailed(a.address, now());
          return;
        }
        Client& t = *clients_[ti];
        Pipe p;
        p.end[0].client = ci;
        p.end[0].key = c.next_key++;
        p.end[1].client = ti;
        p.end[1].key = t.next_key++;
        pipes_.push_back(std::move(p));
        const int id = static_cast<int>(pipes_.size()) - 1;
        by_key_[{ci, pipes_[id].end[0].key}] = id;
        by_key_[{ti, pipes_[id].end[1].key}] = id;
        c.torrent->HandlePeerConnected(pipes_[id].end[0].key, t.address, /*outgoing=*/true, now());
        t.torrent->HandlePeerConnected(pipes_[id].end[1].key,
                                       engine::PeerAddress{c.address.ip, c.next_ephemeral++},
                                       /*outgoing=*/false, now());
        break;
      }
      case T::kHashPiece:
      case T::kWritePiece:
      case T::kReadBlock:
        disk_ops_[ci].push_back(MakeOp(a));
        break;
      case T::kHashChunk: {
        ++c.hash_chunks;
        DiskOp op = MakeOp(a);
        op.chunk = a.chunk;
        op.chunk_copy.assign(a.chunk.begin(), a.chunk.end());
        disk_ops_[ci].push_back(std::move(op));
        break;
      }
      case T::kPieceDone:
        for (int other : c.shard_group) {
          if (other != ci) pending_remote_haves_.emplace_back(other, a.piece);
        }
        break;
      case T::kComplete:
        if (c.completed) ADD_FAILURE() << "client " << ci << ": kComplete twice";
        c.completed = true;
        c.completed_at = now_;
        break;
      case T::kNeedPeers:
        ++c.need_peers;
        break;
      case T::kLog:
        c.logs.push_back(a.message);
        break;
      case T::kWebPieceHashed:
        c.web_pieces_hashed.emplace_back(a.piece, a.length != 0);
        break;
      case T::kFatal:
        c.fatals.push_back(a.message);
        ADD_FAILURE() << "client " << ci << ": kFatal: " << a.message;
        break;
      case T::kReleaseBlock:
        ADD_FAILURE() << "client " << ci << ": kReleaseBlock, but the simulation lends nothing";
        break;
    }
  }

  void CompleteDiskOps(int ci) {
    Client& c = *clients_[ci];
    std::vector<DiskOp> ops;
    ops.swap(disk_ops_[ci]);
    std::shuffle(ops.begin(), ops.end(), rng_);
    for (DiskOp& op : ops) {
      const absl::Span<const uint8_t> data = op.buffer.bytes();
      const size_t piece_off = static_cast<size_t>(op.piece) * meta_.piece_length;
      switch (op.type) {
        case engine::Action::Type::kHashPiece: {
          if (data.size() != meta_.PieceSize(op.piece)) {
            ADD_FAILURE() << "hash of piece " << op.piece << " with " << data.size() << " bytes";
          }
          bool ok = engine::Sha1(data) == meta_.piece_hashes[op.piece];
          if (op.begin > 0) {  // continue the state the chunks built, as the hash pool does
            if (op.begin > data.size()) ADD_FAILURE() << "resume past the end of the piece";
            op.hasher.Update(data.subspan(std::min<size_t>(op.begin, data.size())));
            const bool chained = op.hasher.Finish() == meta_.piece_hashes[op.piece];
            if (chained != ok) {
              ADD_FAILURE() << "client " << ci << " piece " << op.piece
                            << ": chunked hash disagrees with the buffer";
            }
            ok = chained;
          }
          // A verdict from hashing the blocks as they arrived must be the whole buffer's.
          if (op.verdict != engine::Action::Verdict::kUnknown) {
            ++c.hashed_on_arrival;
            if ((op.verdict == engine::Action::Verdict::kMatched) != ok) {
              ADD_FAILURE() << "client " << ci << " piece " << op.piece
                            << ": hash on arrival disagrees with the buffer";
            }
            ok = op.verdict == engine::Action::Verdict::kMatched;  // as io/session/shard.cc does
          }
          c.torrent->HandleHashResult(op.piece, ok, std::move(op.buffer), now());
          break;
        }
        case engine::Action::Type::kHashChunk: {
          if (!std::equal(op.chunk.begin(), op.chunk.end(), op.chunk_copy.begin(),
                          op.chunk_copy.end())) {
            ADD_FAILURE() << "client " << ci << " piece " << op.piece
                          << ": chunk bytes changed while being hashed";
          }
          op.hasher.Update(op.chunk);
          c.torrent->HandleHashChunk(op.piece, std::move(op.hasher), now());
          break;
        }
        case engine::Action::Type::kWritePiece: {
          if (++c.writes[op.piece] > 1) {
            ADD_FAILURE() << "client " << ci << " wrote piece " << op.piece << " twice";
          }
          if (data.size() != meta_.PieceSize(op.piece) ||
              engine::Sha1(data) != meta_.piece_hashes[op.piece]) {
            ADD_FAILURE() << "client " << ci << " writes unverified data for piece " << op.piece;
          }
          std::copy(data.begin(), data.end(), c.disk.begin() + piece_off);
          c.torrent->HandlePieceWritten(op.piece, absl::OkStatus(), std::move(op.buffer), now());
          break;
        }
        case engine::Action::Type::kReadBlock: {
          if (!c.torrent->have().Get(op.piece) ||
              static_cast<uint64_t>(op.begin) + op.length > meta_.PieceSize(op.piece)) {
            ADD_FAILURE() << "client " << ci << " reads a block it cannot serve: piece " << op.piece
                          << " begin " << op.begin << " length " << op.length;
            break;
          }
          std::vector<uint8_t> block(c.disk.begin() + piece_off + op.begin,
                                     c.disk.begin() + piece_off + op.begin + op.length);
          if (c.corrupt) block[rng_() % block.size()] ^= 0x5A;
          if (c.serve_policy) {
            const Client::Serve serve = c.serve_policy(op.piece, op.begin);
            if (serve == Client::Serve::kDrop) break;
            if (serve == Client::Serve::kCorrupt) block[rng_() % block.size()] ^= 0x5A;
          }
          c.torrent->HandleBlockRead(op.peer, op.piece, op.begin, block, absl::OkStatus(), now());
          break;
        }
        default:
          break;
      }
      DrainAll();
    }
  }

  const engine::Metainfo& meta_;
  std::vector<uint8_t> payload_;
  Options options_;
  std::mt19937_64 rng_;
  int64_t now_;
  uint64_t batch_ = 0;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::pair<int, uint32_t>> pending_remote_haves_;  // (shard, piece), next step
  std::deque<Pipe> pipes_;  // a deque: references stay valid as pipes are added
  std::map<std::pair<int, engine::PeerKey>, int> by_key_;
  std::map<int, std::vector<DiskOp>> disk_ops_;
};

}  // namespace torrenty::testing
