#include "engine/torrent/torrent.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/codec/extension.h"

namespace torrenty::engine {
namespace {

// While no peer is connected and none is left to dial, the tracker is asked again this often.
constexpr int64_t kNeedPeersRepeatMs = 15'000;
// State without a deadline of its own that HandleTick acts on (see NextTimeout) is looked at
// this long after the last tick, as often as a driver ticking at a fixed 1 s rate would.
constexpr int64_t kPollMs = 1'000;

}  // namespace

Torrent::Torrent(const Metainfo& meta, TorrentConfig config, PieceClaims* claims)
    : meta_(meta),
      config_(config),
      num_pieces_(meta.num_pieces()),
      max_message_len_(wire::MaxMessageLen(meta.num_pieces())),
      have_(meta.num_pieces()),
      wanted_(meta.num_pieces()),
      wanted_left_(meta.num_pieces()),
      picker_(meta.num_pieces(), config.seed, PiecesPerExtent(meta.piece_length, meta.num_pieces())),
      assembly_(meta, config_, claims, picker_, have_, peers_, stats_, actions_),
      choker_(ChokerConfig{config.unchoke_slots > 0 ? config.unchoke_slots - 1 : 0,
                           config.choke_round_ms, config.optimistic_unchoke_interval_ms},
              config.seed),
      allowed_fast_mask_(meta.num_pieces()) {
  wanted_.SetAll();
  if (config_.super_seed) {
    super_seed_ = std::make_unique<SuperSeed>(num_pieces_, config_.super_seed_counts, config_.seed);
  }
}

Torrent::~Torrent() = default;

bool Torrent::IsHandshaken(PeerKey key) const {
  auto it = peers_.find(key);
  return it != peers_.end() && it->second->handshaken;
}

bool Torrent::IsActive(PeerKey key) const {
  auto it = peers_.find(key);
  if (it == peers_.end() || !it->second->handshaken) return false;
  const PeerSession& p = *it->second;
  return (p.am_interested && !p.peer_choking) || (p.peer_interested && !p.am_choking);
}

std::optional<PeerId> Torrent::PeerIdOf(PeerKey key) const {
  auto it = peers_.find(key);
  if (it == peers_.end() || !it->second->handshaken) return std::nullopt;
  return it->second->id;
}

bool Torrent::IsBanned(PeerAddress address) const {
  return std::find(banned_.begin(), banned_.end(), address) != banned_.end();
}

int64_t Torrent::bytes_left() const {
  int64_t left = meta_.total_length;
  // Sum sizes of had pieces; the last piece may be short.
  if (have_.count() == 0) return left;
  left -= static_cast<int64_t>(have_.count()) * meta_.piece_length;
  if (num_pieces_ > 0 && have_.Get(num_pieces_ - 1)) {
    left += meta_.piece_length - meta_.PieceSize(num_pieces_ - 1);
  }
  return left;
}

void Torrent::SetHave(const Bitfield& have) {
  for (uint32_t i = 0; i < num_pieces_; ++i) {
    if (have.Get(i)) {
      have_.Set(i);
      picker_.SetWeHave(i);
      assembly_.MarkHave(i);
    }
  }
  stats_.pieces_have = have_.count();
  stats_.verified_bytes = meta_.total_length - bytes_left();
  RecountWanted();
}

void Torrent::SetWanted(const Bitfield& wanted) {
  for (uint32_t i = 0; i < num_pieces_; ++i) {
    const bool w = wanted.Get(i);
    if (w) {
      wanted_.Set(i);
    } else {
      wanted_.Clear(i);
    }
    picker_.SetWanted(i, w);
  }
  RecountWanted();
}

void Torrent::RecountWanted() {
  wanted_left_ = 0;
  for (uint32_t i = 0; i < num_pieces_; ++i) {
    if (wanted_.Get(i) && !have_.Get(i)) ++wanted_left_;
  }
}

void Torrent::TakeActions(std::vector<Action>* out) {
  out->clear();
  out->swap(actions_);
}

PeerSession* Torrent::FindPeer(PeerKey key) {
  auto it = peers_.find(key);
  return it == peers_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------------------------
// Connections

void Torrent::AddPeerCandidates(absl::Span<const PeerAddress> peers, Instant now, bool from_pex) {
  bool swept = false;
  for (const PeerAddress& a : peers) {
    if (a.port == 0) continue;
    if (std::find(banned_.begin(), banned_.end(), a) != banned_.end()) continue;
    // Trackers hand back our own address too; dialling it would only end in kSelfConnection.
    if (a.port == config_.listen_port && a.IsLoopback()) continue;
    // Bounded (kMaxPeerCandidates): make room by forgetting peers that failed, else drop the new
    // address. At most one sweep per call, so the cost stays linear per announce.
    if (candidates_.size() >= kMaxPeerCandidates && !candidates_.contains(a)) {
      for (auto c = candidates_.begin(); !swept && c != candidates_.end();) {
        if (!c->second.connected && c->second.failures > 0) {
          candidates_.erase(c++);
        } else {
          ++c;
        }
      }
      swept = true;
      if (candidates_.size() >= kMaxPeerCandidates) continue;
    }
    auto [it, inserted] = candidates_.try_emplace(a);
    // A peer the tracker still lists is worth trying again soon even after failures.
    if (!inserted && !from_pex && !it->second.connected && it->second.failures > 0) {
      it->second.next_attempt = now;
    }
  }
  need_peers_at_ = Instant{INT64_MIN / 2};
  DialCandidates(now);
}

void Torrent::DialCandidates(Instant now) {
  next_dial_at_ = kNoTimeout;
  dial_pending_ = false;
  for (auto& [addr, c] : candidates_) {
    if (c.connected) continue;
    if (now < c.next_attempt) {
      next_dial_at_ = std::min(next_dial_at_, c.next_attempt);
      continue;
    }
    if (peers_.size() + connecting_ >= config_.connections_max) {
      dial_pending_ = true;
      break;
    }
    c.connected = true;  // counts as taken until the connect result arrives
    ++connecting_;
    Action a;
    a.type = Action::Type::kConnect;
    a.address = addr;
    Emit(std::move(a));
  }
}

void Torrent::HandleConnectFailed(PeerAddress address, Instant now) {
  if (connecting_ > 0) --connecting_;
  auto it = candidates_.find(address);
  if (it == candidates_.end()) return;
  Candidate& c = it->second;
  c.connected = false;
  c.failures = std::min(c.failures + 1, 8);
  // Exponential backoff: 10 s, 20 s, 40 s ... capped by the failure count.
  c.next_attempt = Instant{now.ms + (config_.connect_retry_base_ms << (c.failures - 1))};
  next_dial_at_ = std::min(next_dial_at_, c.next_attempt);
}

void Torrent::HandlePeerConnected(PeerKey key, PeerAddress address, bool outgoing, Instant now) {
  if (outgoing && connecting_ > 0) --connecting_;
  auto peer = std::make_unique<PeerSession>(key, address, outgoing, num_pieces_, now, &actions_);
  peer->request_depth = engine::RequestDepth({.initial = config_.requests_per_peer_initial,
                                      .min = std::min<uint32_t>(4, config_.requests_per_peer_max),
                                      .max = config_.requests_per_peer_max,
                                      .queue_ms = config_.request_queue_ms});
  PeerSession& p = *peer;
  peers_[key] = std::move(peer);
  stats_.peers_connected = static_cast<uint32_t>(peers_.size());
  if (outgoing) candidates_[address].connected = true;

  // One torrent per listening socket, so both sides can send the handshake at once. The bitfield
  // waits for the remote handshake (HandleHandshake), as libtorrent's does: aria2c bans a peer
  // that dials it and sends anything past the handshake before aria2c has answered.
  p.SendHandshake(meta_.info_hash, config_.self_id);
}

void Torrent::Close(PeerSession& peer, CloseReason reason, std::string message) {
  if (reason == CloseReason::kProtocolError) ++stats_.peers_closed_for_protocol_errors;
  Action a;
  a.type = Action::Type::kClose;
  a.peer = peer.key;
  a.address = peer.address;
  a.reason = reason;
  a.message = std::move(message);
  Emit(std::move(a));
  ForgetPeer(peer);
}

void Torrent::HandlePeerClosed(PeerKey key, Instant now) {
  PeerSession* peer = FindPeer(key);
  if (peer == nullptr) return;
  ForgetPeer(*peer);
  DialCandidates(now);
}

void Torrent::ForgetPeer(PeerSession& peer) {
  const PeerKey key = peer.key;
  const PeerAddress address = peer.address;
  const bool outgoing = peer.outgoing;
  const Instant last_received = peer.last_received;
  if (peer.handshaken) picker_.RemovePeer(peer.has);
  if (peer.handshaken) ++pex_generation_;
  pex_.erase(key);
  if (super_seed_ != nullptr) super_seed_->RemovePeer(key);
  assembly_.ReleaseRequests(peer);
  assembly_.DropSingleSource(peer);
  const bool was_unchoked = !peer.am_choking;
  peer.ReleaseBlocks();
  peers_.erase(key);
  stats_.peers_connected = static_cast<uint32_t>(peers_.size());
  if (outgoing) {
    auto it = candidates_.find(address);
    if (it != candidates_.end()) {
      it->second.connected = false;
      // A clean disconnect is not a failure, but a peer that keeps closing right after the
      // handshake (both seeds, duplicate connection) would otherwise be redialled every tick.
      // Back off as for failed connects, from the last time we heard from the peer (the engine
      // has no clock of its own).
      it->second.failures = std::min(it->second.failures + 1, 8);
      it->second.next_attempt =
          Instant{last_received.ms + (config_.connect_retry_base_ms << (it->second.failures - 1))};
      next_dial_at_ = std::min(next_dial_at_, it->second.next_attempt);
    }
  }
  if (was_unchoked) FillUnchokeSlots(Instant{0});
}

void Torrent::Shutdown() {
  std::vector<PeerKey> keys;
  for (auto& [key, peer] : peers_) keys.push_back(key);
  for (PeerKey key : keys) Close(*peers_[key], CloseReason::kShutdown);
  candidates_.clear();
  next_dial_at_ = kNoTimeout;
  dial_pending_ = false;
}

// ---------------------------------------------------------------------------------------------
// Receiving

size_t Torrent::HandleBytes(PeerKey key, absl::Span<const uint8_t> bytes, Instant now) {
  PeerSession* peer = FindPeer(key);
  if (peer == nullptr) return bytes.size();
  peer->last_received = now;
  size_t consumed = 0;
  if (!peer->handshaken) {
    if (bytes.size() < wire::kHandshakeSize) return 0;
    if (!HandleHandshake(*peer, bytes.subspan(0, wire::kHandshakeSize))) return bytes.size();
    consumed = wire::kHandshakeSize;
  }
  while (consumed < bytes.size()) {
    wire::Message msg;
    absl::StatusOr<size_t> n = wire::ParseMessage(bytes.subspan(consumed), max_message_len_, &msg);
    if (!n.ok()) {
      Close(*peer, CloseReason::kProtocolError, std::string(n.status().message()));
      return bytes.size();
    }
    if (*n == 0) break;
    consumed += *n;
    if (!HandleMessage(*peer, msg, now)) return bytes.size();  // peer was closed
  }
  FillRequests(*peer);
  ServeRequests(*peer);
  return consumed;
}

bool Torrent::HandleHandshake(PeerSession& peer, absl::Span<const uint8_t> bytes) {
  std::string error;
  if (CloseReason r = peer.CheckHandshake(bytes, meta_.info_hash, config_.self_id, &error);
      r != CloseReason::kNone) {
    Close(peer, r, std::move(error));
    return false;
  }
  for (auto& [key, other] : peers_) {
    if (other.get() == &peer || !other->handshaken || other->id != peer.id) continue;
    // When two peers dial each other at once, closing the connection whose handshake completed
    // second closes a different connection on each side, and the two never stay connected.
    // Both sides keep the connection dialled by the peer with the lower peer id (as libtorrent).
    const bool keep_new =
        peer.outgoing != other->outgoing && peer.outgoing == (config_.self_id < peer.id);
    if (!keep_new) {
      Close(peer, CloseReason::kDuplicate);
      return false;
    }
    Close(*other, CloseReason::kDuplicate);  // invalidates the iteration
    break;
  }
  peer.handshaken = true;
  ++pex_generation_;
  picker_.AddPeer(peer.has);  // empty now; keeps AddPeer/RemovePeer balanced
  if (peer.extensions) SendExtHandshake(peer);
  // Taken now rather than at connect, so pieces verified during the handshake are included
  // (haves go only to handshaken peers). With no pieces, BEP 3 allows leaving it out; BEP 6
  // replaces it with have all / have none, one of which a Fast peer must send first.
  if (SuperSeedStart(peer)) {
    // BEP 16: the peer learns our pieces one at a time.
  } else if (peer.fast && (complete() || have_.none())) {
    peer.SendSimple(complete() ? wire::MsgType::kHaveAll : wire::MsgType::kHaveNone);
    LogPeer(peer, complete() ? "sent have_all" : "sent have_none");
  } else if (have_.count() > 0) {
    peer.SendBitfield(have_);
  }
  return true;
}

bool Torrent::HandleMessage(PeerSession& peer, const wire::Message& msg, Instant now) {
  using wire::MsgType;
  switch (msg.type) {
    case MsgType::kUnknown:
      if (msg.raw_id == ext::kExtendedMsgId && peer.extensions) {
        return HandleExtended(peer, msg.payload, now);
      }
      return true;
    case MsgType::kKeepAlive:
    case MsgType::kPort:  // DHT is not supported; the port is ignored.
      return true;
    case MsgType::kChoke:
      HandlePeerChoked(peer);
      return true;
    case MsgType::kUnchoke:
      peer.peer_choking = false;
      peer.last_block = now;  // the snub clock starts when requests can be served
      return true;
    case MsgType::kInterested:
      peer.peer_interested = true;
      FillUnchokeSlots(now);
      return true;
    case MsgType::kNotInterested:
      // Requests it still queued are dropped with a choke. Without any, it stays unchoked: once
      // interested again (in a fleet, at the next piece it lacks, often within a second) it
      // requests at once instead of waiting a round trip for an unchoke. Its slot is free for an
      // interested peer meanwhile (FillUnchokeSlots), and the next choker round chokes it.
      peer.peer_interested = false;
      if (!peer.am_choking && !peer.requests_in.empty()) Choke(peer);
      FillUnchokeSlots(now);
      return true;
    case MsgType::kHave:
      return HandleHave(peer, msg.index);
    case MsgType::kBitfield:
      return HandleBitfield(peer, msg.payload);
    case MsgType::kRequest:
      return HandleRequest(peer, BlockRequest{msg.index, msg.begin, msg.length});
    case MsgType::kPiece:
      return HandlePiece(peer, msg.index, msg.begin, msg.payload, now);
    case MsgType::kCancel:
      HandleCancel(peer, BlockRequest{msg.index, msg.begin, msg.length});
      return true;
    case MsgType::kSuggest:
    case MsgType::kHaveAll:
    case MsgType::kHaveNone:
    case MsgType::kRejectRequest:
    case MsgType::kAllowedFast: {
      const std::string_view name = MsgTypeName(msg.type);
      const absl::string_view type_name(name.data(), name.size());
      if (!peer.fast) {
        Close(peer, CloseReason::kProtocolError,
              absl::StrCat(type_name, " without the Fast extension"));
        return false;
      }
      if (msg.type == MsgType::kHaveAll || msg.type == MsgType::kHaveNone) {
        return HandleHaveAllNone(peer, msg.type == MsgType::kHaveAll);
      }
      if (msg.type == MsgType::kRejectRequest) {
        return HandleReject(peer, BlockRequest{msg.index, msg.begin, msg.length});
      }
      if (msg.index >= num_pieces_) {
        Close(peer, CloseReason::kProtocolError,
              absl::StrCat(type_name, " for piece ", msg.index, " out of range"));
        return false;
      }
      // A suggestion is only a hint; the picker's rarest-first order serves the swarm better.
      return msg.type == MsgType::kSuggest || HandleAllowedFast(peer, msg.index, now);
    }
  }
  return true;
}

bool Torrent::HandleBitfield(PeerSession& peer, absl::Span<const uint8_t> bits) {
  picker_.RemovePeer(peer.has);
  if (!peer.has.AssignFromWire(bits)) {
    picker_.AddPeer(peer.has);
    Close(peer, CloseReason::kProtocolError, "bitfield of wrong length or with spare bits set");
    return false;
  }
  picker_.AddPeer(peer.has);
  SuperSeedSeen(peer, std::nullopt);
  assembly_.NotePeerHas(peer.has);
  if (peer.has.all() && complete()) {
    Close(peer, CloseReason::kBothSeeds);
    return false;
  }
  UpdateInterest(peer);
  MaybeSendAllowedFast(peer);
  return true;
}

void Torrent::LogPeer(const PeerSession& peer, std::string_view what) {
  Action a;
  a.type = Action::Type::kLog;
  a.verbose = true;
  a.message = absl::StrCat("peer ", peer.address.ToString(), ": ",
                           absl::string_view(what.data(), what.size()));
  Emit(std::move(a));
}

bool Torrent::HandleHave(PeerSession& peer, uint32_t piece) {
  if (piece >= num_pieces_) {
    Close(peer, CloseReason::kProtocolError,
          absl::StrCat("have for piece ", piece, " out of range"));
    return false;
  }
  if (peer.has.Get(piece)) return true;
  peer.has.Set(piece);
  picker_.AddHave(piece);
  SuperSeedSeen(peer, piece);
  assembly_.NotePeerHas(piece);
  if (peer.has.all() && complete()) {
    Close(peer, CloseReason::kBothSeeds);
    return false;
  }
  if (!peer.am_interested && !have_.Get(piece) && wanted_.Get(piece)) UpdateInterest(peer);
  return true;
}

bool Torrent::HandleRequest(PeerSession& peer, const BlockRequest& r) {
  if (r.piece >= num_pieces_ || r.length == 0 || r.length > kBlockSize ||
      static_cast<uint64_t>(r.begin) + r.length > meta_.PieceSize(r.piece)) {
    Close(peer, CloseReason::kProtocolError, "request out of range");
    return false;
  }
  // BEP 3: requests from a choked peer are ignored; so are pieces we do not have (a peer may
  // have sent the request before it saw our choke). BEP 6 says so with a reject, and lets the
  // allowed-fast pieces through.
  // BEP 16: a super-seeded peer is served only the pieces it was shown.
  if ((peer.am_choking && !AllowedFastOut(peer, r.piece)) || !have_.Get(r.piece) ||
      (SuperSeeded(peer) && !super_seed_->Shown(peer.key, r.piece))) {
    Reject(peer, r);
    return true;
  }
  if (peer.requests_in.size() >= config_.peer_requests_queued_max) {
    Close(peer, CloseReason::kProtocolError, "too many queued requests");
    return false;
  }
  peer.requests_in.push_back(r);
  return true;
}

void Torrent::HandleCancel(PeerSession& peer, const BlockRequest& r) {
  auto it = std::find(peer.requests_in.begin(), peer.requests_in.end(), r);
  if (it == peer.requests_in.end()) return;
  peer.requests_in.erase(it);
  // BEP 6: a cancelled request is answered with the block or a reject.
  Reject(peer, r);
}

void Torrent::HandlePeerChoked(PeerSession& peer) {
  peer.peer_choking = true;
  // BEP 3: a choke discards every outstanding request, so those blocks are free again. A Fast
  // peer still serves its allowed-fast pieces (and rejects the rest), so those requests stay.
  std::vector<BlockRequest> kept;
  if (peer.fast && !peer.allowed_fast_in.empty()) {
    for (auto r = peer.requests_out.begin(); r != peer.requests_out.end();) {
      if (std::find(peer.allowed_fast_in.begin(), peer.allowed_fast_in.end(), r->piece) ==
          peer.allowed_fast_in.end()) {
        ++r;
        continue;
      }
      kept.push_back(*r);
      r = peer.requests_out.erase(r);
    }
  }
  assembly_.ReleaseRequests(peer);
  peer.requests_out = std::move(kept);
  assembly_.DropSingleSource(peer);
}

bool Torrent::HandlePiece(PeerSession& peer, uint32_t piece, uint32_t begin,
                          absl::Span<const uint8_t> block, Instant now) {
  if (piece >= num_pieces_ || block.empty() || block.size() > kBlockSize ||
      static_cast<uint64_t>(begin) + block.size() > meta_.PieceSize(piece)) {
    Close(peer, CloseReason::kProtocolError, "piece message out of range");
    return false;
  }
  peer.last_block = now;
  peer.snubbed = false;
  const BlockRequest r{piece, begin, static_cast<uint32_t>(block.size())};
  const bool requested = peer.TakeRequestOut(r);
  // Unasked blocks say nothing of how fast the peer answers (and must not buy it more requests).
  if (requested) peer.request_depth.OnBlock(r.length, now);
  if (assembly_.AcceptBlock(peer, r, requested, block) ==
      PieceAssembly::BlockResult::kWrongLength) {
    Close(peer, CloseReason::kProtocolError, "block of wrong length");
    return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Requesting

bool Torrent::PeerHasWanted(const PeerSession& peer) const {
  const auto theirs = peer.has.bytes();
  const auto ours = have_.bytes();
  const auto wanted = wanted_.bytes();
  for (size_t i = 0; i < theirs.size(); ++i) {
    if (theirs[i] & wanted[i] & ~ours[i]) return true;
  }
  return false;
}

void Torrent::UpdateInterest(PeerSession& peer) {
  const bool want = !done() && PeerHasWanted(peer);
  if (want == peer.am_interested) return;
  peer.am_interested = want;
  peer.SendSimple(want ? wire::MsgType::kInterested : wire::MsgType::kNotInterested);
}

size_t Torrent::RequestDepth(const PeerSession& peer) const {
  // A snubbed peer keeps one request so it can prove itself again.
  return peer.snubbed ? 1 : peer.request_depth.depth();
}

void Torrent::FillRequests(PeerSession& peer) {
  if (!peer.handshaken || done()) return;
  if (!peer.am_interested) {
    UpdateInterest(peer);
    if (!peer.am_interested) return;
  }
  const size_t depth = RequestDepth(peer);
  if (peer.peer_choking) {
    // BEP 6: while choked, only the pieces it allows fast, picked as if it had no others.
    if (peer.allowed_fast_in.empty()) return;
    for (uint32_t piece : peer.allowed_fast_in) {
      if (peer.has.Get(piece)) allowed_fast_mask_.Set(piece);
    }
    std::swap(peer.has, allowed_fast_mask_);
    while (peer.requests_out.size() < depth) {
      BlockRequest r;
      if (!assembly_.PickBlock(peer, &r)) break;
      peer.requests_out.push_back(r);
      peer.SendRequest(r);
    }
    std::swap(peer.has, allowed_fast_mask_);
    for (uint32_t piece : peer.allowed_fast_in) allowed_fast_mask_.Clear(piece);
    return;
  }
  while (peer.requests_out.size() < depth) {
    BlockRequest r;
    if (!assembly_.PickBlock(peer, &r)) break;
    peer.requests_out.push_back(r);
    peer.SendRequest(r);
  }
  if (peer.requests_out.empty() && !PeerHasWanted(peer)) UpdateInterest(peer);
}

// ---------------------------------------------------------------------------------------------
// Verification and disk results

void Torrent::HandleHashResult(uint32_t piece, bool ok, PieceBuffer buffer, Instant /*now*/) {
  std::vector<PeerAddress> to_ban;
  const bool web = assembly_.IsWebPiece(piece);
  const bool restarted = assembly_.HandleHashResult(piece, ok, std::move(buffer), &to_ban);
  if (web) {
    Action a;
    a.type = Action::Type::kWebPieceHashed;
    a.piece = piece;
    a.length = ok ? 1 : 0;
    Emit(std::move(a));
  }
  Ban(to_ban);
  if (restarted) {
    for (auto& [key, peer] : peers_) FillRequests(*peer);
  }
}

void Torrent::HandleHashChunk(uint32_t piece, Sha1Hasher state, Instant /*now*/) {
  assembly_.HandleHashChunk(piece, std::move(state));
}

void Torrent::Ban(const std::vector<PeerAddress>& addresses) {
  for (const PeerAddress& a : addresses) {
    if (std::find(banned_.begin(), banned_.end(), a) == banned_.end()) banned_.push_back(a);
    candidates_.erase(a);
    std::vector<PeerKey> keys;
    for (auto& [key, peer] : peers_)
      if (peer->address == a) keys.push_back(key);
    for (PeerKey key : keys) Close(*peers_[key], CloseReason::kBanned, "sent a corrupt piece");
  }
}

void Torrent::EmitFatal(uint32_t piece, const absl::Status& status) {
  Action a;
  a.type = Action::Type::kFatal;
  a.piece = piece;
  a.message = std::string(status.message());
  Emit(std::move(a));
}

void Torrent::HandlePieceWritten(uint32_t piece, const absl::Status& status, PieceBuffer buffer,
                                 Instant /*now*/) {
  if (!assembly_.HandlePieceWritten(piece, status.ok(), std::move(buffer))) return;
  if (!status.ok()) {
    EmitFatal(piece, status);
    return;
  }
  if (have_.Get(piece)) return;  // a remote have for it arrived during our write
  assembly_.MarkHave(piece);
  Action done;
  done.type = Action::Type::kPieceDone;
  done.piece = piece;
  Emit(std::move(done));
  AddHave(piece);
}

void Torrent::HandleRemoteHave(uint32_t piece, Instant /*now*/) {
  if (piece >= num_pieces_ || have_.Get(piece)) return;
  assembly_.HandleRemoteHave(piece);
  AddHave(piece);
}

void Torrent::AddHave(uint32_t piece) {
  have_.Set(piece);
  picker_.SetWeHave(piece);
  stats_.pieces_have = have_.count();
  stats_.verified_bytes += meta_.PieceSize(piece);

  // `finished`: the wanted set just became done; `seeding`: every piece is had.
  const bool finished = wanted_.Get(piece) && --wanted_left_ == 0;
  const bool seeding = complete();
  std::vector<PeerKey> seeds;
  for (auto& [key, peer] : peers_) {
    if (!peer->handshaken) continue;
    if (!peer->has.Get(piece)) peer->SendHave(piece);
    if (seeding && peer->has.all()) {
      seeds.push_back(key);
      continue;
    }
    if (finished || peer->am_interested) UpdateInterest(*peer);
    FillRequests(*peer);
  }
  for (PeerKey key : seeds) Close(*peers_[key], CloseReason::kBothSeeds);
  if (finished) {
    // Buffers are only needed again if a recheck ever un-haves pieces.
    if (assembly_.empty()) assembly_.FreeBuffers();
    Action a;
    a.type = Action::Type::kComplete;
    Emit(std::move(a));
  }
}

// ---------------------------------------------------------------------------------------------
// Timers

void Torrent::HandleTick(Instant now) {
  last_tick_ = now;
  std::vector<std::pair<PeerKey, CloseReason>> to_close;
  for (auto& [key, peer_ptr] : peers_) {
    PeerSession& peer = *peer_ptr;
    if (!peer.handshaken) {
      if (now.ms - peer.connected_at.ms > config_.handshake_timeout_ms)
        to_close.emplace_back(key, CloseReason::kTimeout);
      continue;
    }
    if (now.ms - peer.last_received.ms > config_.idle_timeout_ms) {
      to_close.emplace_back(key, CloseReason::kTimeout);
      continue;
    }
    if (!peer.requests_out.empty() && !peer.snubbed &&
        now.ms - peer.last_block.ms > config_.snub_timeout_ms) {
      peer.snubbed = true;
      assembly_.ReleaseRequests(peer);
      assembly_.DropSingleSource(peer);
    }
    if (now.ms - peer.last_sent.ms > config_.keepalive_interval_ms) {
      peer.SendKeepAlive();
      // Counts as sent now, so a send still under way does not queue another at the next tick.
      peer.last_sent = now;
    }
  }
  for (auto& [key, reason] : to_close) {
    if (PeerSession* p = FindPeer(key)) Close(*p, reason);
  }
  // Another shard is short of piece memory: give back the buffers kept for reuse.
  assembly_.FreeBuffersIfWanted();
  SuperSeedTick(now);
  if (choker_.Due(now)) RunChoker(now);
  FillUnchokeSlots(now);
  for (auto& [key, peer] : peers_) {
    FillRequests(*peer);
    ServeRequests(*peer);
  }
  SendPex(now);
  DialCandidates(now);
  // Ask the tracker for more when nothing is connected and nothing is left to dial.
  // Asked again every kNeedPeersRepeatMs while still alone: the announcer honours the tracker's
  // min interval, and an answer with no (new) peers must not end the asking.
  if (!done() && peers_.empty() && connecting_ == 0 &&
      now.ms - need_peers_at_.ms >= kNeedPeersRepeatMs) {
    bool any_ready = false;
    for (auto& [addr, c] : candidates_)
      if (!c.connected && c.next_attempt <= now) any_ready = true;
    if (!any_ready) {
      need_peers_at_ = now;
      Action a;
      a.type = Action::Type::kNeedPeers;
      Emit(std::move(a));
    }
  }
}

Instant Torrent::NextTimeout() const {
  int64_t next = kNoTimeout.ms;
  auto at = [&next](int64_t ms) { next = std::min(next, ms); };
  // HandleTick acts when a timeout is exceeded (`now - since > timeout`): 1 ms past it.
  auto after = [&at](Instant since, int64_t timeout_ms) { at(since.ms + timeout_ms + 1); };
  const int64_t poll = last_tick_.ms + kPollMs;
  bool any_handshaken = false;
  for (const auto& [key, peer_ptr] : peers_) {
    const PeerSession& peer = *peer_ptr;
    if (!peer.handshaken) {
      after(peer.connected_at, config_.handshake_timeout_ms);
      continue;
    }
    any_handshaken = true;
    after(peer.last_received, config_.idle_timeout_ms);
    after(peer.last_sent, config_.keepalive_interval_ms);
    if (!peer.requests_out.empty() && !peer.snubbed) {
      after(peer.last_block, config_.snub_timeout_ms);
    }
    // A peer that would serve more requests than it holds waits for blocks to come free, which
    // the tick's FillRequests hands out: a choke or snub elsewhere, a claim another shard gave
    // up, piece memory another shard gave back.
    if (!complete() && peer.am_interested && !peer.peer_choking &&
        peer.requests_out.size() < RequestDepth(peer)) {
      at(poll);
    }
  }
  // The choker only has work with peers; the first one to arrive finds the round due at once.
  if (any_handshaken) at(choker_.NextDue().ms);
  if (assembly_.HoldsSharedIdleBuffers() || SuperSeedWaiting()) at(poll);
  at(NextPexDue().ms);
  if (peers_.size() + connecting_ < config_.connections_max) {
    if (dial_pending_) at(last_tick_.ms + 1);
    at(next_dial_at_.ms);
  }
  // Not while a due candidate waits for a slot: the tick would dial it rather than ask.
  if (!complete() && peers_.empty() && connecting_ == 0 && !dial_pending_) {
    at(need_peers_at_.ms + kNeedPeersRepeatMs);
  }
  return Instant{next};
}

// ---------------------------------------------------------------------------------------------
// Sending

absl::Span<const uint8_t> Torrent::NextSend(PeerKey key) {
  PeerSession* peer = FindPeer(key);
  return peer == nullptr ? absl::Span<const uint8_t>() : peer->NextSend();
}

size_t Torrent::NextSendParts(PeerKey key, absl::Span<absl::Span<const uint8_t>> out) {
  PeerSession* peer = FindPeer(key);
  return peer == nullptr ? 0 : peer->NextSendParts(out);
}

void Torrent::HandleSent(PeerKey key, size_t bytes, Instant now) {
  PeerSession* peer = FindPeer(key);
  if (peer == nullptr) return;
  peer->HandleSent(bytes, now);
  ServeRequests(*peer);
}

}  // namespace torrenty::engine
