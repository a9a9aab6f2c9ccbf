#include "engine/torrent/torrent.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/sha1.h"

namespace torrenty::engine {
namespace {

// While no peer is connected and none is left to dial, the tracker is asked again this often.
constexpr int64_t kNeedPeersRepeatMs = 15'000;
// Endgame: at most this many peers are asked for the same block at once.
constexpr uint8_t kEndgameRequestersMax = 2;

}  // namespace

const char* CloseReasonName(CloseReason r) {
  switch (r) {
    case CloseReason::kNone:
      return "none";
    case CloseReason::kProtocolError:
      return "protocol error";
    case CloseReason::kWrongInfoHash:
      return "wrong info-hash";
    case CloseReason::kSelfConnection:
      return "connection to self";
    case CloseReason::kDuplicate:
      return "duplicate connection";
    case CloseReason::kTimeout:
      return "timeout";
    case CloseReason::kBothSeeds:
      return "both seeds";
    case CloseReason::kPeerClosed:
      return "peer closed";
    case CloseReason::kBanned:
      return "banned";
    case CloseReason::kShutdown:
      return "shutdown";
  }
  return "?";
}

struct Torrent::Peer {
  PeerKey key = 0;
  PeerAddress address{};
  bool outgoing = false;
  bool handshaken = false;
  PeerId id{};
  bool am_choking = true;
  bool am_interested = false;
  bool peer_choking = true;
  bool peer_interested = false;
  bool snubbed = false;
  Bitfield has;
  std::vector<BlockRequest> requests_out;  // blocks we asked this peer for
  std::deque<BlockRequest> requests_in;    // blocks this peer asked us for, not yet read
  uint32_t reads_in_flight = 0;
  // Double buffer: the kernel reads `sending` while new messages go to `pending`, so an
  // append can never move memory a send is using.
  std::vector<uint8_t> sending;
  size_t sending_offset = 0;
  std::vector<uint8_t> pending;
  Instant connected_at{};
  Instant last_received{};
  Instant last_sent{};
  Instant last_block{};
  Instant unchoked_at{};
  int64_t bytes_downloaded = 0;
  int64_t bytes_uploaded = 0;
  // Totals at the last choke round, to turn the totals into per-round rates.
  int64_t round_downloaded = 0;
  int64_t round_uploaded = 0;

  size_t send_queue_bytes() const { return sending.size() - sending_offset + pending.size(); }
};

struct Torrent::PieceInFlight {
  enum BlockState : uint8_t { kFree, kRequested, kReceived };
  uint32_t piece = 0;
  uint32_t size = 0;
  PieceBuffer buffer;
  std::vector<BlockState> state;
  uint32_t free_blocks = 0;         // blocks in kFree
  uint32_t first_free = 0;          // no kFree block below this index
  std::vector<uint8_t> requesters;  // how many peers hold a request for each block
  uint32_t received = 0;
  bool hashing = false;  // all blocks in; verification or write pending
  // False when another shard claimed the piece and we fetch it too (endgame): then we must not
  // release a claim that is not ours.
  bool owns_claim = true;
  absl::InlinedVector<PeerAddress, 4> contributors;
  std::vector<PeerAddress> block_from;  // who sent each received block
  // The piece failed its hash with several senders (smart ban): until it verifies, all of its
  // blocks come from one peer, `source`, so a further failure names the guilty one.
  bool single_source = false;
  PeerAddress source{};
  // Who gets to be the source while connected and not choking us: the peer that sent the most
  // blocks of the failed copies. A peer racing honest ones with a block here and there sent few,
  // and one that sent many must then send the whole piece and be judged by it.
  PeerAddress preferred{};
};

Torrent::Torrent(const Metainfo& meta, TorrentConfig config, PieceClaims* claims)
    : meta_(meta),
      config_(config),
      num_pieces_(meta.num_pieces()),
      max_message_len_(wire::MaxMessageLen(meta.num_pieces())),
      have_(meta.num_pieces()),
      picker_(meta.num_pieces(), config.seed),
      own_claims_(claims == nullptr ? std::make_unique<PieceClaims>(meta.num_pieces()) : nullptr),
      claims_(claims == nullptr ? own_claims_.get() : claims),
      buffer_size_((meta.piece_length + static_cast<int64_t>(PieceBufferDelete::kAlignment) - 1) &
                   ~static_cast<int64_t>(PieceBufferDelete::kAlignment - 1)),
      file_map_(meta),
      choker_(ChokerConfig{config.unchoke_slots > 0 ? config.unchoke_slots - 1 : 0,
                           config.choke_round_ms, config.optimistic_unchoke_interval_ms},
              config.seed) {
  for (const FileEntry& f : meta.files) has_pad_ |= f.pad && f.length > 0;
}

Torrent::~Torrent() {
  if (config_.piece_memory != nullptr) config_.piece_memory->Release(buffer_bytes_);
}

bool Torrent::IsHandshaken(PeerKey key) const {
  auto it = peers_.find(key);
  return it != peers_.end() && it->second->handshaken;
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
      claims_->MarkHave(i);
    }
  }
  stats_.pieces_have = have_.count();
  stats_.verified_bytes = meta_.total_length - bytes_left();
}

void Torrent::TakeActions(std::vector<Action>* out) {
  out->clear();
  out->swap(actions_);
}

Torrent::Peer* Torrent::FindPeer(PeerKey key) {
  auto it = peers_.find(key);
  return it == peers_.end() ? nullptr : it->second.get();
}

// ---------------------------------------------------------------------------------------------
// Connections

void Torrent::AddPeerCandidates(absl::Span<const PeerAddress> peers, Instant now) {
  bool swept = false;
  for (const PeerAddress& a : peers) {
    if (a.port == 0) continue;
    if (std::find(banned_.begin(), banned_.end(), a) != banned_.end()) continue;
    // Trackers hand back our own address too; dialling it would only end in kSelfConnection.
    if (a.port == config_.listen_port && (a.ip >> 24) == 127) continue;
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
    if (!inserted && !it->second.connected && it->second.failures > 0) {
      it->second.next_attempt = now;
    }
  }
  need_peers_at_ = Instant{INT64_MIN / 2};
  DialCandidates(now);
}

void Torrent::DialCandidates(Instant now) {
  if (complete() && peers_.size() >= config_.connections_max) return;
  for (auto& [addr, c] : candidates_) {
    if (peers_.size() + connecting_ >= config_.connections_max) break;
    if (c.connected || now < c.next_attempt) continue;
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
}

void Torrent::HandlePeerConnected(PeerKey key, PeerAddress address, bool outgoing, Instant now) {
  if (outgoing && connecting_ > 0) --connecting_;
  auto peer = std::make_unique<Peer>();
  Peer& p = *peer;
  p.key = key;
  p.address = address;
  p.outgoing = outgoing;
  p.has = Bitfield(num_pieces_);
  p.connected_at = now;
  p.last_received = now;
  p.last_sent = now;
  peers_[key] = std::move(peer);
  stats_.peers_connected = static_cast<uint32_t>(peers_.size());
  if (outgoing) candidates_[address].connected = true;

  // One torrent per listening socket, so both sides can send the handshake at once. The bitfield
  // waits for the remote handshake (HandleHandshake), as libtorrent's does: aria2c bans a peer
  // that dials it and sends anything past the handshake before aria2c has answered.
  wire::EncodeHandshake(meta_.info_hash, config_.self_id, AppendSend(p, wire::kHandshakeSize));
}

void Torrent::Close(Peer& peer, CloseReason reason, std::string message) {
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
  Peer* peer = FindPeer(key);
  if (peer == nullptr) return;
  ForgetPeer(*peer);
  DialCandidates(now);
}

void Torrent::ForgetPeer(Peer& peer) {
  const PeerKey key = peer.key;
  const PeerAddress address = peer.address;
  const bool outgoing = peer.outgoing;
  const Instant last_received = peer.last_received;
  if (peer.handshaken) picker_.RemovePeer(peer.has);
  ReleaseRequests(peer);
  DropSingleSource(peer);
  const bool was_unchoked = !peer.am_choking;
  peers_.erase(key);
  stats_.peers_connected = static_cast<uint32_t>(peers_.size());
  if (outgoing) {
    auto it = candidates_.find(address);
    if (it != candidates_.end()) {
      it->second.connected = false;
      // A clean disconnect is not a failure, but do not hammer the peer either. This used to
      // allow an immediate redial (next_attempt = 0), so a peer that keeps closing right after
      // the handshake (both seeds, duplicate connection) was redialled every tick forever. Back
      // off as for failed connects, from the last time we heard from the peer (the engine has
      // no clock of its own).
      it->second.failures = std::min(it->second.failures + 1, 8);
      it->second.next_attempt =
          Instant{last_received.ms + (config_.connect_retry_base_ms << (it->second.failures - 1))};
    }
  }
  if (was_unchoked) FillUnchokeSlots(Instant{0});
}

void Torrent::Shutdown() {
  std::vector<PeerKey> keys;
  for (auto& [key, peer] : peers_) keys.push_back(key);
  for (PeerKey key : keys) Close(*peers_[key], CloseReason::kShutdown);
  candidates_.clear();
}

// ---------------------------------------------------------------------------------------------
// Receiving

size_t Torrent::HandleBytes(PeerKey key, absl::Span<const uint8_t> bytes, Instant now) {
  Peer* peer = FindPeer(key);
  if (peer == nullptr) return bytes.size();
  peer->last_received = now;
  size_t consumed = 0;
  if (!peer->handshaken) {
    if (bytes.size() < wire::kHandshakeSize) return 0;
    if (!HandleHandshake(*peer, bytes.subspan(0, wire::kHandshakeSize), now)) return bytes.size();
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

bool Torrent::HandleHandshake(Peer& peer, absl::Span<const uint8_t> bytes, Instant /*now*/) {
  absl::StatusOr<wire::Handshake> hs = wire::ParseHandshake(bytes);
  if (!hs.ok()) {
    Close(peer, CloseReason::kProtocolError, std::string(hs.status().message()));
    return false;
  }
  if (hs->info_hash != meta_.info_hash) {
    Close(peer, CloseReason::kWrongInfoHash);
    return false;
  }
  if (hs->peer_id == config_.self_id) {
    Close(peer, CloseReason::kSelfConnection);
    return false;
  }
  for (auto& [key, other] : peers_) {
    if (other.get() == &peer || !other->handshaken || other->id != hs->peer_id) continue;
    // When two peers dial each other at once, each side used to close the connection whose
    // handshake completed second, which is a different connection on each side: both died,
    // both sides redialled, and the two never stayed connected. Both sides now keep the
    // connection dialled by the peer with the lower peer id (libtorrent does the same).
    const bool keep_new =
        peer.outgoing != other->outgoing && peer.outgoing == (config_.self_id < hs->peer_id);
    if (!keep_new) {
      Close(peer, CloseReason::kDuplicate);
      return false;
    }
    Close(*other, CloseReason::kDuplicate);  // invalidates the iteration
    break;
  }
  peer.id = hs->peer_id;
  peer.handshaken = true;
  picker_.AddPeer(peer.has);  // empty now; keeps AddPeer/RemovePeer balanced
  // Taken now rather than at connect, so pieces verified during the handshake are included
  // (haves go only to handshaken peers). With no pieces, BEP 3 allows leaving it out.
  if (have_.count() > 0) {
    wire::EncodeBitfield(have_.bytes(),
                         AppendSend(peer, wire::kBitfieldHeaderSize + have_.bytes().size()));
  }
  return true;
}

bool Torrent::HandleMessage(Peer& peer, const wire::Message& msg, Instant now) {
  using wire::MsgType;
  switch (msg.type) {
    case MsgType::kKeepAlive:
    case MsgType::kUnknown:
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
      peer.peer_interested = false;
      if (!peer.am_choking) {
        Choke(peer);
        FillUnchokeSlots(now);
      }
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
  }
  return true;
}

bool Torrent::HandleBitfield(Peer& peer, absl::Span<const uint8_t> bits) {
  picker_.RemovePeer(peer.has);
  if (!peer.has.AssignFromWire(bits)) {
    picker_.AddPeer(peer.has);
    Close(peer, CloseReason::kProtocolError, "bitfield of wrong length or with spare bits set");
    return false;
  }
  picker_.AddPeer(peer.has);
  if (peer.has.all() && complete()) {
    Close(peer, CloseReason::kBothSeeds);
    return false;
  }
  UpdateInterest(peer);
  return true;
}

bool Torrent::HandleHave(Peer& peer, uint32_t piece) {
  if (piece >= num_pieces_) {
    Close(peer, CloseReason::kProtocolError,
          absl::StrCat("have for piece ", piece, " out of range"));
    return false;
  }
  if (peer.has.Get(piece)) return true;
  peer.has.Set(piece);
  picker_.AddHave(piece);
  if (peer.has.all() && complete()) {
    Close(peer, CloseReason::kBothSeeds);
    return false;
  }
  if (!peer.am_interested && !have_.Get(piece)) UpdateInterest(peer);
  return true;
}

bool Torrent::HandleRequest(Peer& peer, const BlockRequest& r) {
  if (r.piece >= num_pieces_ || r.length == 0 || r.length > kBlockSize ||
      static_cast<uint64_t>(r.begin) + r.length > meta_.PieceSize(r.piece)) {
    Close(peer, CloseReason::kProtocolError, "request out of range");
    return false;
  }
  // BEP 3: requests from a choked peer are ignored; so are pieces we do not have (a peer may
  // have sent the request before it saw our choke).
  if (peer.am_choking || !have_.Get(r.piece)) return true;
  if (peer.requests_in.size() >= config_.peer_requests_queued_max) {
    Close(peer, CloseReason::kProtocolError, "too many queued requests");
    return false;
  }
  peer.requests_in.push_back(r);
  return true;
}

void Torrent::HandleCancel(Peer& peer, const BlockRequest& r) {
  auto it = std::find(peer.requests_in.begin(), peer.requests_in.end(), r);
  if (it != peer.requests_in.end()) peer.requests_in.erase(it);
}

void Torrent::HandlePeerChoked(Peer& peer) {
  peer.peer_choking = true;
  // BEP 3: a choke discards every outstanding request, so those blocks are free again.
  ReleaseRequests(peer);
  DropSingleSource(peer);
}

void Torrent::DropSingleSource(const Peer& peer) {
  // A piece fetched from this peer alone cannot be finished by others without mixing senders
  // again: what it sent is discarded and the next peer starts the piece over.
  for (uint32_t piece : in_flight_order_) {
    PieceInFlight& pf = *in_flight_[piece];
    if (!pf.single_source) continue;
    if (pf.preferred == peer.address) pf.preferred = PeerAddress{};
    if (pf.hashing || pf.source != peer.address) continue;
    stats_.wasted_bytes += static_cast<int64_t>(pf.received) * kBlockSize;
    ResetBlocks(pf);
  }
}

bool Torrent::HandlePiece(Peer& peer, uint32_t piece, uint32_t begin,
                          absl::Span<const uint8_t> block, Instant now) {
  if (piece >= num_pieces_ || block.empty() || block.size() > kBlockSize ||
      static_cast<uint64_t>(begin) + block.size() > meta_.PieceSize(piece)) {
    Close(peer, CloseReason::kProtocolError, "piece message out of range");
    return false;
  }
  peer.last_block = now;
  peer.snubbed = false;
  const BlockRequest r{piece, begin, static_cast<uint32_t>(block.size())};
  auto req = std::find(peer.requests_out.begin(), peer.requests_out.end(), r);
  const bool requested = req != peer.requests_out.end();
  if (requested) peer.requests_out.erase(req);

  auto it = in_flight_.find(piece);
  const bool block_aligned = begin % kBlockSize == 0;
  // Only a block this peer still owes us goes into a piece buffer. Accepting unrequested blocks
  // let a hostile peer write garbage into pieces being fetched from honest peers, so those pieces
  // failed their hash check and the honest peers were blamed (tests/e2e/test_malicious_peers.py,
  // bad_piece). A block sent just before a choke or snub released its request is wasted instead.
  if (!requested || it == in_flight_.end() || it->second->hashing || !block_aligned) {
    // Cancelled, duplicate from endgame, or never asked for: not an error, just waste.
    stats_.wasted_bytes += static_cast<int64_t>(block.size());
    return true;
  }
  PieceInFlight& pf = *it->second;
  const uint32_t b = begin / kBlockSize;
  const uint32_t expected_len = std::min<uint32_t>(kBlockSize, pf.size - begin);
  if (block.size() != expected_len) {
    Close(peer, CloseReason::kProtocolError, "block of wrong length");
    return false;
  }
  if (requested && pf.requesters[b] > 0) --pf.requesters[b];
  if (pf.state[b] == PieceInFlight::kReceived) {
    stats_.wasted_bytes += static_cast<int64_t>(block.size());
    return true;
  }
  if (pf.state[b] == PieceInFlight::kFree) {
    --pf.free_blocks;  // arrived without a live request (e.g. sent before a choke)
  }
  // The one copy on the download path: socket buffer -> piece buffer.
  std::memcpy(pf.buffer.get() + begin, block.data(), block.size());
  pf.state[b] = PieceInFlight::kReceived;
  pf.block_from[b] = peer.address;
  ++pf.received;
  peer.bytes_downloaded += static_cast<int64_t>(block.size());
  stats_.downloaded_payload += static_cast<int64_t>(block.size());
  if (std::find(pf.contributors.begin(), pf.contributors.end(), peer.address) ==
      pf.contributors.end()) {
    pf.contributors.push_back(peer.address);
  }
  // Endgame: other peers were asked for the same block; tell them not to bother.
  if (pf.requesters[b] > 0) {
    for (auto& [key, other] : peers_) {
      if (other.get() == &peer) continue;
      auto o = std::find(other->requests_out.begin(), other->requests_out.end(), r);
      if (o == other->requests_out.end()) continue;
      other->requests_out.erase(o);
      SendCancel(*other, r);
    }
    pf.requesters[b] = 0;
  }
  if (pf.received == pf.state.size()) {
    pf.hashing = true;
    Action a;
    a.type = Action::Type::kHashPiece;
    a.piece = piece;
    a.data = absl::MakeConstSpan(pf.buffer.get(), pf.size);
    Emit(std::move(a));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Requesting

bool Torrent::PeerHasWanted(const Peer& peer) const {
  const auto theirs = peer.has.bytes();
  const auto ours = have_.bytes();
  for (size_t i = 0; i < theirs.size(); ++i) {
    if (theirs[i] & ~ours[i]) return true;
  }
  return false;
}

void Torrent::UpdateInterest(Peer& peer) {
  const bool want = !complete() && PeerHasWanted(peer);
  if (want == peer.am_interested) return;
  peer.am_interested = want;
  SendSimple(peer, static_cast<uint8_t>(want ? wire::MsgType::kInterested
                                             : wire::MsgType::kNotInterested));
}

bool Torrent::TakeBuffer(PieceBuffer* out) {
  if (!free_buffers_.empty()) {
    *out = std::move(free_buffers_.back());
    free_buffers_.pop_back();
    return true;
  }
  if (config_.piece_memory != nullptr && !config_.piece_memory->TryReserve(buffer_size_)) {
    return false;
  }
  out->reset(static_cast<uint8_t*>(::operator new[](
      static_cast<size_t>(buffer_size_), std::align_val_t(PieceBufferDelete::kAlignment))));
  buffer_bytes_ += buffer_size_;
  return true;
}

void Torrent::FreeBuffers() {
  const int64_t bytes = static_cast<int64_t>(free_buffers_.size()) * buffer_size_;
  free_buffers_.clear();
  buffer_bytes_ -= bytes;
  if (config_.piece_memory != nullptr) config_.piece_memory->Release(bytes);
}

void Torrent::ResetBlocks(PieceInFlight& pf) {
  std::fill(pf.state.begin(), pf.state.end(), PieceInFlight::kFree);
  std::fill(pf.requesters.begin(), pf.requesters.end(), 0);
  std::fill(pf.block_from.begin(), pf.block_from.end(), PeerAddress{});
  pf.free_blocks = static_cast<uint32_t>(pf.state.size());
  pf.first_free = 0;
  pf.received = 0;
  pf.hashing = false;
  pf.contributors.clear();
  pf.source = PeerAddress{};
  if (!has_pad_) return;
  // Pad bytes are zeros by definition: write them into the buffer, and count blocks that lie
  // wholly in pad files (adjacent pad files merged) as received, so they are never requested.
  slices_.clear();
  file_map_.MapPiece(pf.piece, &slices_);
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!slices_[i].pad) continue;
    const int64_t from = slices_[i].range_offset;
    int64_t to = from + slices_[i].length;
    while (i + 1 < slices_.size() && slices_[i + 1].pad) to += slices_[++i].length;
    std::memset(pf.buffer.get() + from, 0, static_cast<size_t>(to - from));
    for (int64_t b = (from + kBlockSize - 1) / kBlockSize;
         b < static_cast<int64_t>(pf.state.size()); ++b) {
      const int64_t block_end = std::min<int64_t>((b + 1) * kBlockSize, pf.size);
      if (block_end > to) break;
      pf.state[b] = PieceInFlight::kReceived;
      --pf.free_blocks;
      ++pf.received;
    }
  }
}

Torrent::PieceInFlight* Torrent::StartPiece(uint32_t piece, bool owns_claim, PieceBuffer buffer) {
  auto pf = std::make_unique<PieceInFlight>();
  pf->piece = piece;
  pf->owns_claim = owns_claim;
  pf->size = meta_.PieceSize(piece);
  pf->buffer = std::move(buffer);
  const uint32_t blocks = (pf->size + kBlockSize - 1) / kBlockSize;
  pf->state.assign(blocks, PieceInFlight::kFree);
  pf->requesters.assign(blocks, 0);
  pf->block_from.assign(blocks, PeerAddress{});
  pf->single_source = failed_blocks_.contains(piece);
  if (pf->single_source) pf->preferred = TopSender(piece);
  ResetBlocks(*pf);
  picker_.SetInProgress(piece, true);
  PieceInFlight* raw = pf.get();
  in_flight_[piece] = std::move(pf);
  in_flight_order_.push_back(piece);
  if (raw->received == raw->state.size()) {  // nothing but pad: already complete
    raw->hashing = true;
    Action a;
    a.type = Action::Type::kHashPiece;
    a.piece = piece;
    a.data = absl::MakeConstSpan(raw->buffer.get(), raw->size);
    Emit(std::move(a));
  }
  return raw;
}

bool Torrent::MayFetchFrom(PieceInFlight& pf, const Peer& peer) const {
  if (!pf.single_source) return true;
  if (pf.source == PeerAddress{}) {
    return !peer.snubbed && (pf.preferred == PeerAddress{} || pf.preferred == peer.address);
  }
  return pf.source == peer.address;
}

PeerAddress Torrent::TopSender(uint32_t piece) const {
  auto f = failed_blocks_.find(piece);
  if (f == failed_blocks_.end()) return {};
  absl::flat_hash_map<PeerAddress, uint32_t> counts;
  PeerAddress top{};
  uint32_t most = 0;
  for (const FailedBlock& fb : f->second) {
    const uint32_t n = ++counts[fb.from];
    if (n > most) {
      most = n;
      top = fb.from;
    }
  }
  // Only a peer we are connected to can be waited for.
  for (const auto& [key, peer] : peers_) {
    if (peer->address == top && peer->handshaken && !peer->peer_choking && !peer->snubbed) {
      return top;
    }
  }
  return {};
}

bool Torrent::PickBlock(Peer& peer, BlockRequest* out) {
  auto take = [&](PieceInFlight& pf, uint32_t b) {
    if (pf.state[b] == PieceInFlight::kFree) {
      --pf.free_blocks;
      pf.first_free = b + 1;
    }
    pf.state[b] = PieceInFlight::kRequested;
    ++pf.requesters[b];
    if (pf.single_source) pf.source = peer.address;
    out->piece = pf.piece;
    out->begin = b * kBlockSize;
    out->length = std::min<uint32_t>(kBlockSize, pf.size - out->begin);
  };
  auto take_free = [&](PieceInFlight& pf) {
    if (pf.hashing || pf.free_blocks == 0 || !MayFetchFrom(pf, peer)) return false;
    for (uint32_t b = pf.first_free; b < pf.state.size(); ++b) {
      if (pf.state[b] == PieceInFlight::kFree) {
        take(pf, b);
        return true;
      }
    }
    return false;
  };
  // 1. Finish pieces already started, oldest first, so memory is freed early.
  for (uint32_t piece : in_flight_order_) {
    PieceInFlight& pf = *in_flight_[piece];
    if (peer.has.Get(piece) && take_free(pf)) return true;
  }
  // 2. Start the rarest piece this peer has, if the memory budget allows and no other shard of
  // this torrent has claimed it.
  while (in_flight_.size() < config_.pieces_in_flight_max) {
    std::optional<uint32_t> piece = picker_.Pick(peer.has);
    if (!piece.has_value()) break;
    if (!claims_->TryClaim(*piece)) {
      picker_.SetInProgress(*piece, true);  // another shard has it (or just finished it)
      claimed_elsewhere_.push_back(*piece);
      continue;
    }
    PieceBuffer buffer;
    if (!TakeBuffer(&buffer)) {
      claims_->Release(*piece);
      break;
    }
    if (take_free(*StartPiece(*piece, /*owns_claim=*/true, std::move(buffer)))) return true;
  }
  // 3. Endgame: nothing left to start, so ask this peer too for blocks others are slow on,
  // first whole pieces another shard is still fetching, then blocks of our own pieces.
  if (picker_.num_pickable() == 0) {
    if (StealPiece(peer, out)) return true;
    for (uint32_t piece : in_flight_order_) {
      PieceInFlight& pf = *in_flight_[piece];
      if (pf.hashing || !peer.has.Get(piece) || !MayFetchFrom(pf, peer)) continue;
      for (uint32_t b = 0; b < pf.state.size(); ++b) {
        if (pf.state[b] != PieceInFlight::kRequested || pf.requesters[b] >= kEndgameRequestersMax)
          continue;
        const BlockRequest r{piece, b * kBlockSize,
                             std::min<uint32_t>(kBlockSize, pf.size - b * kBlockSize)};
        if (std::find(peer.requests_out.begin(), peer.requests_out.end(), r) !=
            peer.requests_out.end())
          continue;
        take(pf, b);
        return true;
      }
    }
  }
  return false;
}

bool Torrent::StealPiece(Peer& peer, BlockRequest* out) {
  if (claimed_elsewhere_.empty() || in_flight_.size() >= config_.pieces_in_flight_max) {
    return false;
  }
  for (size_t i = 0; i < claimed_elsewhere_.size();) {
    const uint32_t piece = claimed_elsewhere_[i];
    const PieceClaims::State state = claims_->Get(piece);
    if (state == PieceClaims::State::kHave || have_.Get(piece)) {
      // Done elsewhere; its remote have is on the way.
      claimed_elsewhere_[i] = claimed_elsewhere_.back();
      claimed_elsewhere_.pop_back();
      continue;
    }
    if (!peer.has.Get(piece) || in_flight_.contains(piece)) {
      ++i;
      continue;
    }
    PieceBuffer buffer;
    if (!TakeBuffer(&buffer)) return false;
    // A piece the other shard gave up is ours to claim; otherwise fetch a duplicate and let the
    // first to verify it win.
    const bool owns = state == PieceClaims::State::kFree && claims_->TryClaim(piece);
    claimed_elsewhere_[i] = claimed_elsewhere_.back();
    claimed_elsewhere_.pop_back();
    PieceInFlight& pf = *StartPiece(piece, owns, std::move(buffer));
    if (pf.hashing || pf.free_blocks == 0 || !MayFetchFrom(pf, peer)) continue;
    for (uint32_t b = 0; b < pf.state.size(); ++b) {
      if (pf.state[b] != PieceInFlight::kFree) continue;
      --pf.free_blocks;
      pf.first_free = b + 1;
      pf.state[b] = PieceInFlight::kRequested;
      ++pf.requesters[b];
      if (pf.single_source) pf.source = peer.address;
      out->piece = piece;
      out->begin = b * kBlockSize;
      out->length = std::min<uint32_t>(kBlockSize, pf.size - out->begin);
      return true;
    }
  }
  return false;
}

void Torrent::FillRequests(Peer& peer) {
  if (!peer.handshaken || complete()) return;
  if (!peer.am_interested) {
    UpdateInterest(peer);
    if (!peer.am_interested) return;
  }
  if (peer.peer_choking) return;
  // A snubbed peer keeps one request so it can prove itself again.
  const size_t depth = peer.snubbed ? 1 : config_.requests_per_peer_max;
  while (peer.requests_out.size() < depth) {
    BlockRequest r;
    if (!PickBlock(peer, &r)) break;
    peer.requests_out.push_back(r);
    SendRequest(peer, r);
  }
  if (peer.requests_out.empty() && !PeerHasWanted(peer)) UpdateInterest(peer);
}

void Torrent::ReleaseRequest(Peer& /*peer*/, const BlockRequest& r) {
  auto it = in_flight_.find(r.piece);
  if (it == in_flight_.end()) return;
  PieceInFlight& pf = *it->second;
  const uint32_t b = r.begin / kBlockSize;
  if (b >= pf.state.size()) return;
  if (pf.requesters[b] > 0) --pf.requesters[b];
  if (pf.state[b] == PieceInFlight::kRequested && pf.requesters[b] == 0) {
    pf.state[b] = PieceInFlight::kFree;
    ++pf.free_blocks;
    pf.first_free = std::min(pf.first_free, b);
  }
}

void Torrent::ReleaseRequests(Peer& peer) {
  std::vector<uint32_t> touched;
  for (const BlockRequest& r : peer.requests_out) {
    ReleaseRequest(peer, r);
    if (touched.empty() || touched.back() != r.piece) touched.push_back(r.piece);
  }
  peer.requests_out.clear();
  for (uint32_t piece : touched) MaybeAbandonPiece(piece);
}

void Torrent::MaybeAbandonPiece(uint32_t piece) {
  // An untouched piece nobody is fetching holds a buffer for nothing; give the slot back so
  // another piece (perhaps one a remaining peer has) can use it.
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) return;
  PieceInFlight& pf = *it->second;
  if (pf.received != 0 || pf.hashing) return;
  for (uint8_t n : pf.requesters)
    if (n != 0) return;
  if (pf.owns_claim) {
    claims_->Release(piece);
    picker_.SetInProgress(piece, false);
  } else {
    claimed_elsewhere_.push_back(piece);  // still another shard's; stays stealable
  }
  DropInFlight(piece);
}

void Torrent::DropInFlight(uint32_t piece) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) return;
  for (auto& [key, peer] : peers_) {
    auto& reqs = peer->requests_out;
    for (auto r = reqs.begin(); r != reqs.end();) {
      if (r->piece != piece) {
        ++r;
        continue;
      }
      SendCancel(*peer, *r);
      r = reqs.erase(r);
    }
  }
  free_buffers_.push_back(std::move(it->second->buffer));
  in_flight_.erase(it);
  in_flight_order_.erase(std::find(in_flight_order_.begin(), in_flight_order_.end(), piece));
}

// ---------------------------------------------------------------------------------------------
// Verification and disk results

void Torrent::HandleHashResult(uint32_t piece, bool ok, Instant now) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) return;
  if (have_.Get(piece)) {  // another shard finished it while we were hashing our copy
    DropInFlight(piece);
    return;
  }
  PieceInFlight& pf = *it->second;
  auto block_digest = [&](uint32_t b) {
    const uint32_t begin = b * kBlockSize;
    return Sha1(absl::MakeConstSpan(pf.buffer.get() + begin,
                                    std::min<uint32_t>(kBlockSize, pf.size - begin)));
  };
  if (ok) {
    Action a;
    a.type = Action::Type::kWritePiece;
    a.piece = piece;
    a.data = absl::MakeConstSpan(pf.buffer.get(), pf.size);
    Emit(std::move(a));
    // Smart ban: whoever sent a block of an earlier, failed copy that differs from the good
    // data sent corrupt data.
    if (auto f = failed_blocks_.find(piece); f != failed_blocks_.end()) {
      std::vector<PeerAddress> to_ban;
      for (const FailedBlock& fb : f->second) {
        if (fb.digest != block_digest(fb.block) &&
            std::find(to_ban.begin(), to_ban.end(), fb.from) == to_ban.end()) {
          to_ban.push_back(fb.from);
        }
      }
      failed_blocks_.erase(f);
      Ban(to_ban);
    }
    return;
  }
  ++stats_.pieces_failed;
  stats_.wasted_bytes += pf.size;
  std::vector<PeerAddress> to_ban;
  if (pf.contributors.size() == 1) {
    to_ban.push_back(pf.contributors[0]);  // the only sender: certainly the one who lied
  } else if (!pf.contributors.empty()) {
    // Several peers sent blocks, so some of them may be innocent. Keep each block's digest and
    // judge the senders once the piece passes. Until then the piece is fetched from one peer at
    // a time: a peer that races honest ones with one corrupt block per piece otherwise made the
    // piece fail forever and was never judged. So a piece fails with several senders at most
    // once, and every later failure bans its only sender.
    std::vector<FailedBlock>& stash = failed_blocks_[piece];
    for (uint32_t b = 0; b < pf.state.size() && stash.size() < 1024; ++b) {
      if (pf.block_from[b] == PeerAddress{}) continue;  // pad: zeros we wrote ourselves
      stash.push_back(FailedBlock{b, pf.block_from[b], block_digest(b)});
    }
    pf.single_source = true;
  }
  if (pf.single_source) pf.preferred = TopSender(piece);
  // Start the piece over; its blocks go back to the picker.
  ResetBlocks(pf);
  for (auto& [key, peer] : peers_) {
    auto& reqs = peer->requests_out;
    reqs.erase(std::remove_if(reqs.begin(), reqs.end(),
                              [&](const BlockRequest& r) { return r.piece == piece; }),
               reqs.end());
  }
  Ban(to_ban);
  for (auto& [key, peer] : peers_) FillRequests(*peer);
  (void)now;
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

void Torrent::HandlePieceWritten(uint32_t piece, const absl::Status& status, Instant now) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) return;
  if (!status.ok()) {
    EmitFatal(piece, status);
    return;
  }
  DropInFlight(piece);
  if (have_.Get(piece)) return;  // a remote have for it arrived during our write
  claims_->MarkHave(piece);
  Action done;
  done.type = Action::Type::kPieceDone;
  done.piece = piece;
  Emit(std::move(done));
  AddHave(piece);
  (void)now;
}

void Torrent::HandleRemoteHave(uint32_t piece, Instant now) {
  if (piece >= num_pieces_ || have_.Get(piece)) return;
  auto it = in_flight_.find(piece);
  // A copy still being hashed or written owns its buffer until that result comes back.
  if (it != in_flight_.end() && !it->second->hashing) DropInFlight(piece);
  AddHave(piece);
  (void)now;
}

void Torrent::AddHave(uint32_t piece) {
  have_.Set(piece);
  picker_.SetWeHave(piece);
  stats_.pieces_have = have_.count();
  stats_.verified_bytes += meta_.PieceSize(piece);

  const bool finished = complete();
  std::vector<PeerKey> seeds;
  for (auto& [key, peer] : peers_) {
    if (!peer->handshaken) continue;
    if (!peer->has.Get(piece)) SendHave(*peer, piece);
    if (finished && peer->has.all()) {
      seeds.push_back(key);
      continue;
    }
    if (finished || peer->am_interested) UpdateInterest(*peer);
    FillRequests(*peer);
  }
  if (finished) {
    for (PeerKey key : seeds) Close(*peers_[key], CloseReason::kBothSeeds);
    // Buffers are only needed again if a recheck ever un-haves pieces.
    if (in_flight_.empty()) FreeBuffers();
    Action a;
    a.type = Action::Type::kComplete;
    Emit(std::move(a));
  }
}

// ---------------------------------------------------------------------------------------------
// Serving

void Torrent::ServeRequests(Peer& peer) {
  while (!peer.requests_in.empty() && peer.reads_in_flight < config_.reads_per_peer_max &&
         peer.send_queue_bytes() < config_.send_queue_bytes_max) {
    const BlockRequest r = peer.requests_in.front();
    peer.requests_in.pop_front();
    ++peer.reads_in_flight;
    Action a;
    a.type = Action::Type::kReadBlock;
    a.peer = peer.key;
    a.piece = r.piece;
    a.begin = r.begin;
    a.length = r.length;
    Emit(std::move(a));
  }
}

void Torrent::HandleBlockRead(PeerKey key, uint32_t piece, uint32_t begin,
                              absl::Span<const uint8_t> data, const absl::Status& status,
                              Instant now) {
  Peer* peer = FindPeer(key);
  if (!status.ok()) {
    EmitFatal(piece, status);
    return;
  }
  if (peer == nullptr) return;
  if (peer->reads_in_flight > 0) --peer->reads_in_flight;
  // Choked since the request was queued: BEP 3 says the request is dropped.
  if (!peer->am_choking) {
    uint8_t* out = AppendSend(*peer, wire::kPieceHeaderSize + data.size());
    wire::EncodePieceHeader(piece, begin, static_cast<uint32_t>(data.size()), out);
    std::memcpy(out + wire::kPieceHeaderSize, data.data(), data.size());
    peer->bytes_uploaded += static_cast<int64_t>(data.size());
    stats_.uploaded_payload += static_cast<int64_t>(data.size());
  }
  ServeRequests(*peer);
  (void)now;
}

void Torrent::Unchoke(Peer& peer, Instant now) {
  peer.am_choking = false;
  peer.unchoked_at = now;
  SendSimple(peer, static_cast<uint8_t>(wire::MsgType::kUnchoke));
}

void Torrent::Choke(Peer& peer) {
  peer.am_choking = true;
  peer.requests_in.clear();
  SendSimple(peer, static_cast<uint8_t>(wire::MsgType::kChoke));
}

void Torrent::FillUnchokeSlots(Instant now) {
  uint32_t unchoked = 0;
  for (auto& [key, peer] : peers_)
    if (!peer->am_choking) ++unchoked;
  if (unchoked >= config_.unchoke_slots) return;
  for (auto& [key, peer] : peers_) {
    if (unchoked >= config_.unchoke_slots) break;
    if (peer->handshaken && peer->peer_interested && peer->am_choking) {
      Unchoke(*peer, now);
      ++unchoked;
      // Between rounds a free slot goes to the first interested peer; say so, as the rounds do.
      Action a;
      a.type = Action::Type::kLog;
      a.message = absl::StrCat("choker: unchoked ", peer->address.ToString(), " (free slot, ",
                               unchoked, "/", config_.unchoke_slots, " in use)");
      Emit(std::move(a));
    }
  }
}

void Torrent::RunChoker(Instant now) {
  const double seconds = std::max(1.0, static_cast<double>(now.ms - last_choke_round_.ms) / 1000.0);
  last_choke_round_ = now;
  std::vector<ChokerPeer> candidates;
  for (auto& [key, peer] : peers_) {
    if (!peer->handshaken) continue;
    ChokerPeer c;
    c.key = key;
    c.interested = peer->peer_interested;
    c.snubbed = peer->snubbed;
    c.download_rate =
        static_cast<double>(peer->bytes_downloaded - peer->round_downloaded) / seconds;
    c.upload_rate = static_cast<double>(peer->bytes_uploaded - peer->round_uploaded) / seconds;
    peer->round_downloaded = peer->bytes_downloaded;
    peer->round_uploaded = peer->bytes_uploaded;
    candidates.push_back(c);
  }
  std::vector<PeerKey> unchoke = choker_.Run(candidates, complete(), now);
  std::sort(unchoke.begin(), unchoke.end());
  for (auto& [key, peer] : peers_) {
    if (!peer->handshaken) continue;
    const bool want = std::binary_search(unchoke.begin(), unchoke.end(), key);
    if (want && peer->am_choking) Unchoke(*peer, now);
    if (!want && !peer->am_choking) Choke(*peer);
  }
  if (unchoke != last_unchoked_) {
    last_unchoked_ = unchoke;
    std::string line = absl::StrCat("choker: ", complete() ? "seeding" : "leeching", ", unchoked");
    for (PeerKey key : unchoke) {
      const Peer& p = *peers_[key];
      absl::StrAppend(&line, " ", p.address.ToString(), key == choker_.optimistic() ? "*" : "");
    }
    absl::StrAppend(&line, " (", candidates.size(), " peers; * = optimistic)");
    Action a;
    a.type = Action::Type::kLog;
    a.message = std::move(line);
    Emit(std::move(a));
  }
}

// ---------------------------------------------------------------------------------------------
// Timers

void Torrent::HandleTick(Instant now) {
  std::vector<std::pair<PeerKey, CloseReason>> to_close;
  for (auto& [key, peer_ptr] : peers_) {
    Peer& peer = *peer_ptr;
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
      ReleaseRequests(peer);
      DropSingleSource(peer);
    }
    if (now.ms - peer.last_sent.ms > config_.keepalive_interval_ms) {
      wire::EncodeKeepAlive(AppendSend(peer, 4));
    }
  }
  for (auto& [key, reason] : to_close) {
    if (Peer* p = FindPeer(key)) Close(*p, reason);
  }
  // Another shard is short of piece memory: give back the buffers kept for reuse.
  if (config_.piece_memory != nullptr && config_.piece_memory->wanted()) FreeBuffers();
  if (choker_.Due(now)) RunChoker(now);
  FillUnchokeSlots(now);
  for (auto& [key, peer] : peers_) {
    FillRequests(*peer);
    ServeRequests(*peer);
  }
  DialCandidates(now);
  // Ask the tracker for more when nothing is connected and nothing is left to dial.
  // Asked again every kNeedPeersRepeatMs while still alone: the announcer honours the tracker's
  // min interval, and an answer with no (new) peers must not end the asking.
  if (!complete() && peers_.empty() && connecting_ == 0 &&
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

// ---------------------------------------------------------------------------------------------
// Sending

uint8_t* Torrent::AppendSend(Peer& peer, size_t n) {
  const bool was_idle = peer.send_queue_bytes() == 0;
  const size_t old = peer.pending.size();
  peer.pending.resize(old + n);
  if (was_idle) {
    Action a;
    a.type = Action::Type::kFlush;
    a.peer = peer.key;
    Emit(std::move(a));
  }
  return peer.pending.data() + old;
}

absl::Span<const uint8_t> Torrent::NextSend(PeerKey key) {
  Peer* peer = FindPeer(key);
  if (peer == nullptr) return {};
  if (peer->sending_offset < peer->sending.size()) {
    return absl::MakeConstSpan(peer->sending).subspan(peer->sending_offset);
  }
  if (peer->pending.empty()) return {};
  peer->sending.clear();
  peer->sending_offset = 0;
  peer->sending.swap(peer->pending);
  return absl::MakeConstSpan(peer->sending);
}

void Torrent::HandleSent(PeerKey key, size_t bytes, Instant now) {
  Peer* peer = FindPeer(key);
  if (peer == nullptr) return;
  peer->sending_offset = std::min(peer->sending.size(), peer->sending_offset + bytes);
  peer->last_sent = now;
  ServeRequests(*peer);
}

void Torrent::SendSimple(Peer& peer, uint8_t type) {
  wire::EncodeSimple(static_cast<wire::MsgType>(type), AppendSend(peer, 5));
}

void Torrent::SendHave(Peer& peer, uint32_t piece) { wire::EncodeHave(piece, AppendSend(peer, 9)); }

void Torrent::SendRequest(Peer& peer, const BlockRequest& r) {
  wire::EncodeRequest(r.piece, r.begin, r.length, AppendSend(peer, 17));
}

void Torrent::SendCancel(Peer& peer, const BlockRequest& r) {
  wire::EncodeCancel(r.piece, r.begin, r.length, AppendSend(peer, 17));
}

}  // namespace torrenty::engine
