#include "io/session/shard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <tuple>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "engine/base/peer_id.h"
#include "engine/codec/wire.h"
#include "io/session/shard_internal.h"

namespace torrenty::io {

using engine::Action;
using engine::Instant;
using engine::PeerAddress;
using engine::PeerKey;

Shard::Shard(int index, ShardEnv* env)
    : index_(index),
      env_(env),
      file_pool_(static_cast<size_t>(std::max(1, env->max_open_files / std::max(1, env->shards)))) {
  file_pool_.set_metrics(&metrics_.open_files, &metrics_.file_evictions);
}

Shard::~Shard() {
  // The session destroys the hash pool first (its workers may hold spans into piece buffers),
  // then the ring, whose teardown cancels every operation that still points into a Conn.
  instances_.clear();
  ring_.reset();
  for (auto& [key, c] : conns_)
    if (c->fd >= 0) ::close(c->fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

absl::Status Shard::Init() {
  absl::StatusOr<std::unique_ptr<Ring>> r = Ring::Create(4096);
  if (!r.ok()) return r.status();
  ring_ = std::move(*r);
  ring_->set_metrics(&metrics_.ring_submissions, &metrics_.ring_completions);
  if (inbox_.fd() < 0) return absl::ErrnoToStatus(errno, "eventfd");
  if (index_ > 0) {
    absl::StatusOr<int> client = env_->hash_pool->AddClient();
    if (!client.ok()) return client.status();
    hash_client_ = *client;
  }
  if (absl::Status st = Listen(); !st.ok()) return st;
  if (index_ == 0) env_->port = port_;
  accepted_max_ = kAcceptedConnectionsMax / static_cast<size_t>(env_->shards);
  const int64_t cache_bytes = env_->read_cache_bytes / env_->shards;
  cache_ = std::make_unique<ReadCache>(
      cache_bytes, kReadCacheEntriesMin,
      [this](TorrentId id, uint32_t piece, int64_t offset, absl::Span<uint8_t> buf, size_t slot) {
        auto it = instances_.find(id);
        if (it == instances_.end()) return absl::NotFoundError("torrent stopped");
        return it->second->disk->ReadRange(piece, offset, buf, kReadTagBit | slot);
      },
      [this](const BlockRead& r, absl::Span<const uint8_t> data, const absl::Status& st,
             uint64_t pin) {
        auto it = instances_.find(r.id);
        if (it == instances_.end()) {
          cache_->Release(pin);
          return;
        }
        it->second->engine->HandleBlockRead(r.peer, r.piece, r.begin, data, st, now_, pin);
      });
  inbox_c_ = MakeCompletion<&Shard::OnInbox>(this);
  web_c_ = MakeCompletion<&Shard::OnWebEvent>(this);
  hash_c_ = MakeCompletion<&Shard::OnHashEvent>(this);
  accept_c_ = MakeCompletion<&Shard::OnAccept>(this);
  return absl::OkStatus();
}

absl::Status Shard::Listen() {
  // BEP 7: one dual-stack socket (IPv6 with IPv4-mapped addresses) takes both families; a kernel
  // without IPv6 gets an IPv4 one. With --bind, only that address and its family.
  bool v6 = env_->bind_given ? env_->bind_address.v6 : true;
  listen_fd_ = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0 && v6 && !env_->bind_given && errno == EAFNOSUPPORT) {
    v6 = false;
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  }
  if (listen_fd_ < 0) return absl::ErrnoToStatus(errno, "socket");
  int one = 1;
  if (v6) {
    const int v6only = env_->bind_given ? 1 : 0;
    setsockopt(listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
  }
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // Every shard listens on the same port; the kernel spreads incoming connections over them.
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  std::vector<uint16_t> candidates;
  const bool picks = index_ == 0 && !env_->port_explicit;
  if (!picks) {
    candidates.push_back(env_->port);
  } else {
    for (uint16_t p = 6881; p <= 6889; ++p) candidates.push_back(p);
    candidates.push_back(0);
  }
  for (uint16_t p : candidates) {
    engine::PeerAddress local;  // the any-address of its family unless --bind names one
    if (env_->bind_given) local = env_->bind_address;
    local.v6 = v6;
    local.port = p;
    sockaddr_storage sa;
    socklen_t len = ToSockaddr(local, &sa);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&sa), len) == 0) {
      if (listen(listen_fd_, 128) != 0) return absl::ErrnoToStatus(errno, "listen");
      socklen_t len = sizeof(sa);
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&sa), &len);
      port_ = FromSockaddr(sa).port;
      return absl::OkStatus();
    }
    if (!picks) return absl::ErrnoToStatus(errno, absl::StrCat("cannot listen on port ", p));
  }
  return absl::UnavailableError("no free listening port");
}

// ---------------------------------------------------------------------------------------------
// Loop

absl::Status Shard::Loop() {
  now_ = Now();
  last_publish_ = now_;
  ring_->Read(env_->hash_pool->notify_fd(hash_client_), &hash_evt_, sizeof(hash_evt_), 0, &hash_c_);
  ring_->Read(inbox_.fd(), &inbox_evt_, sizeof(inbox_evt_), 0, &inbox_c_);
  ring_->Accept(listen_fd_, &accept_c_);
  absl::Status result;
  Instant deadline = kNoDeadline;
  for (;;) {
    // Sleep until the earliest deadline: an engine timer, a throttled peer's tokens, the
    // once-a-second publish while there are torrents; with none of these, until an event.
    const int wait_ms =
        deadline.ms == kNoDeadline.ms
            ? -1
            : static_cast<int>(std::clamp<int64_t>(deadline.ms - now_.ms, 0, kMaxSleepMs));
    wakes_.WakeAll();  // what this turn posted, before the ring may sleep
    absl::StatusOr<int> n = ring_->RunOnce(
        wait_ms, [](void* self) { static_cast<Shard*>(self)->now_ = Now(); }, this);
    if (!n.ok()) {
      result = n.status();
      break;
    }
    if (stopping_ && Finished(now_)) break;
    deadline = AfterTurn(now_);
  }
  for (auto& [id, st] : instances_) Publish(*st);
  CoordinatorMessage m;
  m.type = CoordinatorMessage::Type::kShardStopped;
  m.shard = index_;
  if (!result.ok()) {
    // A dead shard must not leave the session waiting for it.
    m.session_wide = true;
    m.text = std::string(result.message());
  }
  wakes_.Post(env_->coordinator, std::move(m));
  wakes_.WakeAll();
  return result;
}

bool Shard::Finished(Instant now) const {
  if (!conns_.empty() && now.ms < stop_deadline_.ms) return false;
  for (const auto& [id, st] : instances_) {
    if (st->disk->in_flight() > 0 || !st->write_backlog.empty()) return false;
  }
  return true;
}

// Once per loop turn: runs what is due and returns when the loop must wake next. Only torrents
// whose engine saw an event this turn (dirty) or whose timer is due are asked for their next
// timeout, so an idle torrent costs one comparison per turn.
Instant Shard::AfterTurn(Instant now) {
  if (!instances_.empty() && now.ms - last_publish_.ms >= kPublishMs) {
    last_publish_ = now;
    CountPeers();
    CountProtocol();
    for (auto& [id, st] : instances_) {
      Publish(*st);
      ReportPexPeers(*st);
    }
  }
  if (!throttled_.empty() && now.ms >= throttle_wake_.ms) RetryThrottled(now);
  if (reads_waiting_) {  // cache entries came free: reads that found none may start now
    reads_waiting_ = false;
    PumpReads();
    DrainAll();
  }
  due_.clear();
  for (auto& [id, st] : instances_) {
    if (stopping_ || st->draining) continue;
    if (st->next_timeout.ms <= now.ms) {
      due_.push_back(st.get());
    } else if (st->dirty) {
      st->dirty = false;
      st->next_timeout = st->engine->NextTimeout();
      if (st->next_timeout.ms <= now.ms) due_.push_back(st.get());
    }
  }
  for (auto& [id, st] : instances_) {
    if (st->web != nullptr && !stopping_ && !st->draining && st->web_poll_at.ms <= now.ms) {
      PollWebSeeds(*st);
    }
  }
  for (ShardTorrent* st : due_) {
    st->engine->HandleTick(now);
    Drain(*st);
    st->dirty = false;
    // The engine promises a later time right after a tick; the clamp keeps a broken promise
    // from spinning the loop.
    st->next_timeout = Instant{std::max(st->engine->NextTimeout().ms, now.ms + 1)};
  }
  Instant next = kNoDeadline;
  auto at = [&next](Instant t) { next.ms = std::min(next.ms, t.ms); };
  if (!instances_.empty()) at(Instant{last_publish_.ms + kPublishMs});
  for (auto& [id, st] : instances_) {
    if (!stopping_ && !st->draining) {
      at(st->next_timeout);
      if (st->web != nullptr) at(st->web_poll_at);
    }
  }
  if (!throttled_.empty()) at(throttle_wake_);
  if (stopping_) at(stop_deadline_);
  return next;
}

void Shard::Publish(ShardTorrent& st) {
  CountPayload(st);
  const engine::TorrentStats& s = st.engine->stats();
  ShardTorrentCounters& c = st.t->counters[static_cast<size_t>(index_)];
  c.downloaded.store(s.downloaded_payload, std::memory_order_relaxed);
  c.uploaded.store(s.uploaded_payload, std::memory_order_relaxed);
  c.peers.store(s.peers_connected, std::memory_order_relaxed);
}

void Shard::ReportPexPeers(ShardTorrent& st) {
  if (env_->shards < 2 || st.engine->pex_generation() == st.pex_generation_reported) return;
  st.pex_generation_reported = st.engine->pex_generation();
  std::vector<engine::pex::PexPeer> peers = st.engine->LocalPexPeers();
  const auto key = [](const engine::pex::PexPeer& p) {
    return std::tie(p.endpoint.v6, p.endpoint.ip, p.endpoint.port, p.flags);
  };
  std::sort(peers.begin(), peers.end(),
            [&key](const auto& a, const auto& b) { return key(a) < key(b); });
  if (peers == st.pex_reported) return;
  st.pex_reported = peers;
  CoordinatorMessage m;
  m.type = CoordinatorMessage::Type::kPexPeers;
  m.id = st.t->id;
  m.shard = index_;
  m.pex_peers = std::move(peers);
  wakes_.Post(env_->coordinator, std::move(m));
}

void Shard::CountPayload(ShardTorrent& st) {
  const engine::TorrentStats& s = st.engine->stats();
  metrics_.payload_received_bytes.Add(
      static_cast<uint64_t>(s.downloaded_payload - st.counted_down));
  metrics_.payload_sent_bytes.Add(static_cast<uint64_t>(s.uploaded_payload - st.counted_up));
  st.counted_down = s.downloaded_payload;
  st.counted_up = s.uploaded_payload;
  CountProtocol();
}

// Protocol bytes are what the sockets moved beyond payload. Sent payload is counted when the
// engine queues a block, before the socket takes it, so the difference only ever moves forward.
void Shard::CountProtocol() {
  const uint64_t rx =
      metrics_.payload_received_bytes.Read() + metrics_.protocol_received_bytes.Read();
  if (wire_received_ > rx) metrics_.protocol_received_bytes.Add(wire_received_ - rx);
  const uint64_t tx = metrics_.payload_sent_bytes.Read() + metrics_.protocol_sent_bytes.Read();
  if (wire_sent_ > tx) metrics_.protocol_sent_bytes.Add(wire_sent_ - tx);
}

void Shard::CountPeers() {
  std::array<int64_t, metrics::kPeerStateCount> n{};
  for (const auto& [key, c] : conns_) {
    if (c->closing) continue;
    metrics::PeerState state = metrics::PeerState::kHandshaking;
    if (!c->connected) {
      state = metrics::PeerState::kConnecting;
    } else if (c->st != nullptr && c->st->engine->IsHandshaken(key)) {
      state =
          c->st->engine->IsActive(key) ? metrics::PeerState::kActive : metrics::PeerState::kIdle;
    }
    ++n[static_cast<size_t>(state)];
  }
  for (int i = 0; i < metrics::kPeerStateCount; ++i) metrics_.peers[i].Set(n[i]);
}

void Shard::OnInbox(int32_t, uint32_t) {
  inbox_.Take(&messages_);
  const Instant now = now_;
  for (ShardMessage& m : messages_) {
    switch (m.type) {
      case ShardMessage::Type::kActivate:
        known_[m.torrent->id] = m.torrent;
        by_hash_[m.torrent->meta->info_hash] = m.torrent;
        if (!stopping_) MaybeStartWebSeeds(m.torrent);
        break;
      case ShardMessage::Type::kDeactivate:
        Deactivate(m.id);
        break;
      case ShardMessage::Type::kPeers: {
        if (stopping_) break;
        auto it = known_.find(m.id);
        if (it == known_.end()) break;
        ShardTorrent* st = Instance(it->second);
        st->engine->AddPeerCandidates(m.peers, now);
        break;
      }
      case ShardMessage::Type::kPexPeers: {
        if (stopping_) break;
        auto it = instances_.find(m.id);
        if (it != instances_.end()) {
          it->second->engine->SetOtherShardsPexPeers(std::move(m.pex_peers));
          it->second->dirty = true;
        } else if (known_.contains(m.id)) {
          // No connection of it here yet: kept for the first one, which gets a ut_pex at once.
          pex_waiting_[m.id] = std::move(m.pex_peers);
        }
        break;
      }
      case ShardMessage::Type::kHave:
        if (auto it = instances_.find(m.id); it != instances_.end()) {
          it->second->engine->HandleRemoteHave(m.piece, now);
        }
        break;
      case ShardMessage::Type::kStop:
        BeginStop();
        break;
      case ShardMessage::Type::kRateShares: {
        limiter_.Apply(m.shares, now);
        // Parked peers may fit the new shares (or a lifted limit) at once.
        if (!throttled_.empty()) throttle_wake_ = now;
        CoordinatorMessage reply;
        reply.type = CoordinatorMessage::Type::kRateUsage;
        reply.shard = index_;
        reply.usage = limiter_.TakeUsage();
        wakes_.Post(env_->coordinator, std::move(reply));
        break;
      }
    }
  }
  if (!stopping_ || !Finished(now)) {
    ring_->Read(inbox_.fd(), &inbox_evt_, sizeof(inbox_evt_), 0, &inbox_c_);
  }
  DrainAll();
}

void Shard::BeginStop() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = Instant{now_.ms + kStopGraceMs};
  for (auto& [id, st] : instances_) {
    st->engine->Shutdown();
    Drain(*st);
  }
  // Dials under way and connections still waiting for a handshake are no engine's peers.
  for (auto& [key, c] : conns_) CloseConn(*c);
}

// ---------------------------------------------------------------------------------------------
// Torrents

Shard::ShardTorrent* Shard::Instance(SessionTorrent* t) {
  auto it = instances_.find(t->id);
  if (it != instances_.end()) return it->second.get();
  auto st = std::make_unique<ShardTorrent>();
  st->t = t;
  const engine::Metainfo& meta = *t->meta;
  engine::TorrentConfig cfg = t->engine_config;
  absl::BitGen gen;
  cfg.seed = absl::Uniform<uint64_t>(gen);
  st->engine = std::make_unique<engine::Torrent>(meta, cfg, &t->claims);
  // The claims table is the torrent's have-set as every shard wrote it.
  engine::Bitfield have(meta.num_pieces());
  for (uint32_t p = 0; p < meta.num_pieces(); ++p) {
    if (t->claims.Get(p) == engine::PieceClaims::State::kHave) have.Set(p);
  }
  st->engine->SetHave(have);
  if (t->wanted.size() > 0) st->engine->SetWanted(t->wanted);
  if (auto w = pex_waiting_.find(t->id); w != pex_waiting_.end()) {
    st->engine->SetOtherShardsPexPeers(std::move(w->second));
    pex_waiting_.erase(w);
  }
  ShardTorrent* raw = st.get();
  st->disk = std::make_unique<DiskIo>(
      ring_.get(), t->store.get(),
      [this, raw](uint64_t tag, absl::Status s, engine::PieceBuffer buffer) {
        OnDiskDone(*raw, tag, std::move(s), std::move(buffer));
      },
      128);
  st->disk->set_metrics(&metrics_.disk_queue_depth, &metrics_.disk_latency);
  st->disk->set_file_pool(&file_pool_);
  st->recv_buffer_max =
      std::max<size_t>(kRecvBufferMin, 2 * size_t{engine::wire::MaxMessageLen(meta.num_pieces())});
  instances_[t->id] = std::move(st);
  return raw;
}

void Shard::Deactivate(TorrentId id) {
  auto k = known_.find(id);
  if (k != known_.end()) {
    by_hash_.erase(k->second->meta->info_hash);
    known_.erase(k);
  }
  pex_waiting_.erase(id);
  auto it = instances_.find(id);
  if (it == instances_.end()) {
    CoordinatorMessage m;
    m.type = CoordinatorMessage::Type::kDeactivated;
    m.id = id;
    m.shard = index_;
    wakes_.Post(env_->coordinator, std::move(m));
    return;
  }
  ShardTorrent& st = *it->second;
  st.draining = true;
  st.engine->Shutdown();
  Drain(st);
  // Dials still under way are not peers of the engine yet.
  for (auto& [key, c] : conns_) {
    if (c->st == &st) CloseConn(*c);
  }
  std::erase_if(read_backlog_, [id](const BlockRead& r) { return r.id == id; });
  MaybeRelease(st);
}

// A deactivated torrent goes once nothing refers to its engine, disk queue or piece buffers.
void Shard::MaybeRelease(ShardTorrent& st) {
  if (!st.draining || st.conns > 0 || st.hashes_pending > 0 || st.disk->in_flight() > 0 ||
      !st.write_backlog.empty()) {
    return;
  }
  const TorrentId id = st.t->id;
  Publish(st);
  cache_->Forget(id);
  instances_.erase(id);
  CoordinatorMessage m;
  m.type = CoordinatorMessage::Type::kDeactivated;
  m.id = id;
  m.shard = index_;
  wakes_.Post(env_->coordinator, std::move(m));
}

void Shard::DrainAll() {
  for (auto& [id, st] : instances_) Drain(*st);
}

void Shard::Drain(ShardTorrent& st) {
  st.dirty = true;
  for (;;) {
    st.engine->TakeActions(&actions_);
    if (actions_.empty()) return;
    std::vector<Action> batch;
    batch.swap(actions_);
    for (Action& a : batch) Execute(st, a);
    batch.clear();
    if (actions_.empty()) actions_.swap(batch);
  }
}

void Shard::Log(TorrentId id, std::string line, bool verbose) {
  if (verbose && !env_->log_verbose) return;
  CoordinatorMessage m;
  m.type = CoordinatorMessage::Type::kLog;
  m.id = id;
  m.session_wide = verbose;  // marks the line as verbose-only
  m.text = std::move(line);
  wakes_.Post(env_->coordinator, std::move(m));
}

void Shard::ReportOutcome(TorrentId id, PeerAddress address, PeerOutcome outcome) {
  CoordinatorMessage m;
  m.type = CoordinatorMessage::Type::kPeerOutcome;
  m.id = id;
  m.address = address;
  m.outcome = outcome;
  wakes_.Post(env_->coordinator, std::move(m));
}

void Shard::Execute(ShardTorrent& st, Action& a) {
  const TorrentId id = st.t->id;
  switch (a.type) {
    case Action::Type::kFlush:
      StartSend(st, a.peer);
      break;
    case Action::Type::kClose:
      if (a.reason != engine::CloseReason::kShutdown) {
        Log(id,
            absl::StrCat("closed peer ", a.address.ToString(), ": ",
                         engine::CloseReasonName(a.reason),
                         a.message.empty() ? "" : absl::StrCat(" (", a.message, ")")),
            /*verbose=*/a.reason != engine::CloseReason::kProtocolError &&
                a.reason != engine::CloseReason::kBanned);
      }
      if (auto it = conns_.find(a.peer); it != conns_.end()) {
        if (it->second->outgoing) ReportOutcome(id, a.address, CloseOutcome(a.reason));
        it->second->engine_knows = false;
        CloseConn(*it->second);
      }
      break;
    case Action::Type::kConnect:
      Dial(st, a.address);
      break;
    case Action::Type::kHashPiece:
      if (a.verdict != Action::Verdict::kUnknown) {
        // Hashed block by block as it arrived (engine/torrent/piece_assembly.cc): only the
        // outcome is left to deliver. The engine is not inside a call here, so it may take it
        // at once; its follow-up actions come out of this Drain.
        const bool ok = a.verdict == Action::Verdict::kMatched;
        (ok ? metrics_.pieces_verified : metrics_.pieces_failed).Add();
        st.engine->HandleHashResult(a.piece, ok, std::move(a.buffer), now_);
        if (!ok) Log(id, absl::StrCat("piece ", a.piece, " failed its hash check; re-requesting"));
        break;
      }
      ++st.hashes_pending;
      metrics_.hash_queue_depth.Add(1);
      env_->hash_pool->Submit(hash_client_, HashTag(id, a.piece), std::move(a.buffer),
                              st.t->meta->piece_hashes[a.piece], std::move(a.hasher), a.begin);
      break;
    case Action::Type::kHashChunk:
      // Counted as pending like a piece: the torrent (and so the buffer the chunk lies in) is not
      // released before the chunk's result is back.
      ++st.hashes_pending;
      metrics_.hash_queue_depth.Add(1);
      env_->hash_pool->SubmitChunk(hash_client_, HashTag(id, a.piece), std::move(a.hasher),
                                   a.chunk);
      break;
    case Action::Type::kWritePiece:
      st.write_backlog.emplace_back(a.piece, std::move(a.buffer));
      PumpWrites(st);
      break;
    case Action::Type::kReadBlock:
      if (!read_backlog_.empty() ||
          !cache_->Serve(BlockRead{id, a.peer, a.piece, a.begin, a.length},
                         st.t->meta->piece_length, st.t->meta->PieceSize(a.piece))) {
        read_backlog_.push_back(BlockRead{id, a.peer, a.piece, a.begin, a.length});
      }
      break;
    case Action::Type::kPieceDone: {
      // Publish before the have leaves, so the coordinator's `completed` announce counts every
      // byte of the last piece.
      Publish(st);
      for (int i = 0; i < env_->shards; ++i) {
        if (i == index_) continue;
        ShardMessage m;
        m.type = ShardMessage::Type::kHave;
        m.id = id;
        m.piece = a.piece;
        wakes_.Post(env_->inboxes[static_cast<size_t>(i)], std::move(m));
      }
      CoordinatorMessage m;
      m.type = CoordinatorMessage::Type::kHave;
      m.id = id;
      m.piece = a.piece;
      wakes_.Post(env_->coordinator, std::move(m));
      break;
    }
    case Action::Type::kComplete:
      break;  // the coordinator sees every have and completes the torrent
    case Action::Type::kNeedPeers: {
      CoordinatorMessage m;
      m.type = CoordinatorMessage::Type::kNeedPeers;
      m.id = id;
      wakes_.Post(env_->coordinator, std::move(m));
      break;
    }
    case Action::Type::kLog:
      Log(id, a.message, a.verbose);
      break;
    case Action::Type::kReleaseBlock:
      ReleaseBlock(a.peer, a.pin);
      break;
    case Action::Type::kWebPieceHashed:
      if (st.web != nullptr) {
        st.web->HandlePieceHashed(a.piece, a.length != 0, now_);
        WebSeedLogs(st);
        st.web_poll_at = now_;
      }
      break;
    case Action::Type::kFatal: {
      CoordinatorMessage m;
      m.type = CoordinatorMessage::Type::kFatal;
      m.id = id;
      m.text = a.message;
      wakes_.Post(env_->coordinator, std::move(m));
      break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Hashing, writing and reading

void Shard::OnHashEvent(int32_t, uint32_t) {
  env_->hash_pool->TakeResults(hash_client_, &hash_results_);
  const Instant now = now_;
  for (HashResult& r : hash_results_) {
    metrics_.hash_queue_depth.Add(-1);
    if (!r.chunk) (r.ok ? metrics_.pieces_verified : metrics_.pieces_failed).Add();
    auto it = instances_.find(static_cast<TorrentId>(r.tag >> 32));
    if (it == instances_.end()) continue;
    ShardTorrent& st = *it->second;
    const uint32_t piece = static_cast<uint32_t>(r.tag);
    --st.hashes_pending;
    if (r.chunk) {
      st.engine->HandleHashChunk(piece, std::move(r.state), now);
      Drain(st);
      MaybeRelease(st);
      continue;
    }
    st.engine->HandleHashResult(piece, r.ok, std::move(r.buffer), now);
    if (!r.ok)
      Log(st.t->id, absl::StrCat("piece ", piece, " failed its hash check; re-requesting"));
    Drain(st);
    MaybeRelease(st);
  }
  hash_results_.clear();
  ring_->Read(env_->hash_pool->notify_fd(hash_client_), &hash_evt_, sizeof(hash_evt_), 0, &hash_c_);
}

void Shard::PumpWrites(ShardTorrent& st) {
  while (!st.write_backlog.empty()) {
    auto& [piece, buffer] = st.write_backlog.front();
    absl::Status s = st.disk->WritePiece(piece, &buffer, piece);
    if (absl::IsResourceExhausted(s)) return;  // retried when an op completes
    const uint32_t written = piece;
    engine::PieceBuffer unwritten = std::move(buffer);  // still ours only if the write failed
    st.write_backlog.pop_front();
    if (!s.ok()) st.engine->HandlePieceWritten(written, s, std::move(unwritten), now_);
  }
}

void Shard::OnDiskDone(ShardTorrent& st, uint64_t tag, absl::Status status,
                       engine::PieceBuffer buffer) {
  if (tag & kReadTagBit) {
    cache_->Loaded(static_cast<size_t>(tag & ~kReadTagBit), status);
  } else {
    st.engine->HandlePieceWritten(static_cast<uint32_t>(tag), status, std::move(buffer), now_);
  }
  PumpWrites(st);
  PumpReads();
  DrainAll();
  MaybeRelease(st);
}

void Shard::PumpReads() {
  size_t in_flight = 0;
  for (const auto& [id, st] : instances_) in_flight += st->disk->in_flight();
  while (!read_backlog_.empty() && in_flight < kDiskReadsMax) {
    const BlockRead r = read_backlog_.front();
    auto it = instances_.find(r.id);
    if (it == instances_.end()) {
      read_backlog_.pop_front();
      continue;
    }
    const engine::Metainfo& meta = *it->second->t->meta;
    if (!cache_->Serve(r, meta.piece_length, meta.PieceSize(r.piece))) break;
    read_backlog_.pop_front();
    ++in_flight;
  }
}

}  // namespace torrenty::io
