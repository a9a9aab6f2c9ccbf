#include "engine/torrent/metadata_fetch.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "engine/base/sha1.h"
#include "engine/codec/bencode.h"
#include "engine/codec/extension.h"
#include "engine/codec/wire.h"
#include "engine/torrent/extensions.h"

namespace torrenty::engine {
namespace {

// Peers send a bitfield before anything else; 256 KiB covers two million pieces. Extended
// messages are bounded again by their codec.
constexpr uint32_t kMaxMessageLen = 256 << 10;
// Requests a peer may leave unanswered before it is closed, so a silent peer cannot hold the
// working size (or pieces) forever.
constexpr int kMaxTimeouts = 3;
constexpr uint8_t kOurUtMetadataId =
    kExtensions[static_cast<size_t>(Extension::kUtMetadata)].local_id;

}  // namespace

struct MetadataFetch::Peer {
  PeerKey key = 0;
  PeerAddress address{};
  bool handshaken = false;
  bool ext_done = false;
  uint8_t ut_metadata = 0;  // the peer's id for ut_metadata; 0: does not offer it
  int64_t size = -1;        // the metadata_size it advertised
  uint32_t in_flight = 0;
  int timeouts = 0;
  Instant connected_at{};
  Instant blocked_until{};
  std::vector<uint8_t> sending, pending;
  size_t sending_offset = 0;
};

MetadataFetch::MetadataFetch(MetadataFetchConfig config) : config_(config) {}
MetadataFetch::~MetadataFetch() = default;

size_t MetadataFetch::num_metadata_peers() const {
  size_t n = 0;
  for (const auto& [key, p] : peers_) n += p->ut_metadata != 0 && p->size > 0;
  return n;
}

bool MetadataFetch::IsBanned(PeerAddress a) const {
  return std::find(banned_.begin(), banned_.end(), a) != banned_.end();
}

void MetadataFetch::TakeActions(std::vector<Action>* out) {
  out->clear();
  out->swap(actions_);
}

void MetadataFetch::Log(std::string message) {
  Action a;
  a.type = Action::Type::kLog;
  a.message = std::move(message);
  Emit(std::move(a));
}

// ---------------------------------------------------------------------------------------------
// Connections

void MetadataFetch::AddPeerCandidates(absl::Span<const PeerAddress> peers, Instant now) {
  for (const PeerAddress& a : peers) {
    if (a.port == 0 || IsBanned(a)) continue;
    if (a.port == config_.listen_port && (a.ip >> 24) == 127) continue;
    auto [it, inserted] = candidates_.try_emplace(a);
    if (!inserted && !it->second.connected) it->second.next_attempt = now;
  }
  Dial(now);
}

void MetadataFetch::Dial(Instant now) {
  next_dial_at_ = kNoTimeout;
  if (done_) return;
  for (auto& [addr, c] : candidates_) {
    if (c.connected || IsBanned(addr)) continue;
    if (now < c.next_attempt) {
      next_dial_at_ = std::min(next_dial_at_, c.next_attempt);
      continue;
    }
    if (peers_.size() + connecting_ >= config_.connections_max) break;
    c.connected = true;
    ++connecting_;
    Action a;
    a.type = Action::Type::kConnect;
    a.address = addr;
    Emit(std::move(a));
  }
}

void MetadataFetch::HandleConnectFailed(PeerAddress address, Instant now) {
  if (connecting_ > 0) --connecting_;
  auto it = candidates_.find(address);
  if (it == candidates_.end()) return;
  it->second.connected = false;
  it->second.failures = std::min(it->second.failures + 1, 6);
  it->second.next_attempt =
      Instant{now.ms + (config_.connect_retry_base_ms << (it->second.failures - 1))};
  next_dial_at_ = std::min(next_dial_at_, it->second.next_attempt);
}

void MetadataFetch::HandlePeerConnected(PeerKey key, PeerAddress address, Instant now) {
  if (connecting_ > 0) --connecting_;
  auto peer = std::make_unique<Peer>();
  Peer& p = *peer;
  p.key = key;
  p.address = address;
  p.connected_at = now;
  peers_[key] = std::move(peer);
  candidates_[address].connected = true;
  std::array<uint8_t, 8> reserved{};
  reserved[ext::kReservedByte] |= ext::kReservedBit;
  uint8_t hs[wire::kHandshakeSize];
  wire::EncodeHandshake(config_.info_hash, config_.self_id, reserved, hs);
  Append(p, hs);
}

void MetadataFetch::Close(Peer& p, CloseReason reason, std::string message) {
  Action a;
  a.type = Action::Type::kClose;
  a.peer = p.key;
  a.address = p.address;
  a.reason = reason;
  a.message = std::move(message);
  Emit(std::move(a));
  Forget(p.key, p.connected_at);
}

void MetadataFetch::Drop(Peer& p, std::string why) {
  banned_.push_back(p.address);
  Log(absl::StrCat("peer ", p.address.ToString(), ": ", why, "; dropped"));
  Close(p, CloseReason::kBanned, why);
}

void MetadataFetch::HandlePeerClosed(PeerKey key, Instant now) {
  if (!peers_.contains(key)) return;
  Forget(key, now);
  FillRequests(now);
  Dial(now);
}

void MetadataFetch::Forget(PeerKey key, Instant now) {
  auto it = peers_.find(key);
  if (it == peers_.end()) return;
  for (Piece& piece : pieces_) {
    if (piece.requested_from == key) {
      piece.requested_from = 0;
      --in_flight_;
    }
  }
  if (single_peer_ == key) single_peer_ = 0;
  const int64_t its_size = it->second->size;
  auto c = candidates_.find(it->second->address);
  if (c != candidates_.end()) {
    c->second.connected = false;
    c->second.failures = std::min(c->second.failures + 1, 6);
    c->second.next_attempt =
        Instant{now.ms + (config_.connect_retry_base_ms << (c->second.failures - 1))};
    next_dial_at_ = std::min(next_dial_at_, c->second.next_attempt);
  }
  peers_.erase(it);
  // The working size came from peers that are all gone: the others may well be right.
  if (!done_ && size_ > 0 && its_size == size_) {
    bool any = false;
    for (const auto& [k, p] : peers_) any = any || (p->ut_metadata != 0 && p->size == size_);
    if (!any) Reset();
  }
}

// ---------------------------------------------------------------------------------------------
// Sending

void MetadataFetch::Append(Peer& p, absl::Span<const uint8_t> bytes) {
  const bool was_idle = p.pending.empty() && p.sending_offset >= p.sending.size();
  p.pending.insert(p.pending.end(), bytes.begin(), bytes.end());
  if (was_idle) {
    Action a;
    a.type = Action::Type::kFlush;
    a.peer = p.key;
    Emit(std::move(a));
  }
}

void MetadataFetch::SendExtended(Peer& p, uint8_t id, const std::string& payload) {
  uint8_t header[ext::kHeaderSize];
  ext::EncodeHeader(id, payload.size(), header);
  Append(p, header);
  Append(p, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
}

absl::Span<const uint8_t> MetadataFetch::NextSend(PeerKey key) {
  auto it = peers_.find(key);
  if (it == peers_.end()) return {};
  Peer& p = *it->second;
  if (p.sending_offset < p.sending.size()) {
    return absl::MakeConstSpan(p.sending).subspan(p.sending_offset);
  }
  if (p.pending.empty()) return {};
  p.sending.clear();
  p.sending_offset = 0;
  p.sending.swap(p.pending);
  return absl::MakeConstSpan(p.sending);
}

void MetadataFetch::HandleSent(PeerKey key, size_t bytes, Instant) {
  auto it = peers_.find(key);
  if (it == peers_.end()) return;
  Peer& p = *it->second;
  p.sending_offset = std::min(p.sending.size(), p.sending_offset + bytes);
}

// ---------------------------------------------------------------------------------------------
// Receiving

size_t MetadataFetch::HandleBytes(PeerKey key, absl::Span<const uint8_t> bytes, Instant now) {
  auto it = peers_.find(key);
  if (it == peers_.end()) return bytes.size();
  Peer* p = it->second.get();
  size_t consumed = 0;
  if (!p->handshaken) {
    if (bytes.size() < wire::kHandshakeSize) return 0;
    absl::StatusOr<wire::Handshake> hs = wire::ParseHandshake(bytes);
    if (!hs.ok()) {
      Close(*p, CloseReason::kProtocolError, std::string(hs.status().message()));
      return bytes.size();
    }
    if (hs->info_hash != config_.info_hash) {
      Close(*p, CloseReason::kWrongInfoHash, "");
      return bytes.size();
    }
    if (hs->peer_id == config_.self_id) {
      Close(*p, CloseReason::kSelfConnection, "");
      return bytes.size();
    }
    if ((hs->reserved[ext::kReservedByte] & ext::kReservedBit) == 0) {
      Close(*p, CloseReason::kProtocolError,
            "no extension protocol (BEP 10), so no metadata from it");
      return bytes.size();
    }
    p->handshaken = true;
    consumed = wire::kHandshakeSize;
    ext::Handshake ours;
    ours.m.emplace_back("ut_metadata", kOurUtMetadataId);
    ours.client = "Torrenty";
    ours.listen_port = config_.listen_port;
    SendExtended(*p, ext::kHandshakeId, ext::EncodeHandshake(ours));
  }
  while (consumed < bytes.size()) {
    wire::Message msg;
    absl::StatusOr<size_t> n = wire::ParseMessage(bytes.subspan(consumed), kMaxMessageLen, &msg);
    if (!n.ok()) {
      Close(*p, CloseReason::kProtocolError, std::string(n.status().message()));
      return bytes.size();
    }
    if (*n == 0) break;
    const absl::Span<const uint8_t> body = bytes.subspan(consumed + 4, *n - 4);
    consumed += *n;
    if (msg.type == wire::MsgType::kUnknown && msg.raw_id == ext::kExtendedMsgId) {
      if (!HandleMessage(*p, body.subspan(1), now)) return bytes.size();
    }
  }
  FillRequests(now);
  return consumed;
}

bool MetadataFetch::HandleMessage(Peer& p, absl::Span<const uint8_t> msg, Instant now) {
  if (msg.empty()) {
    Close(p, CloseReason::kProtocolError, "empty extended message");
    return false;
  }
  if (msg[0] == ext::kHandshakeId) return HandleExtHandshake(p, msg.subspan(1), now);
  if (msg[0] == kOurUtMetadataId) return HandleMetadata(p, msg.subspan(1), now);
  return true;  // an extension we did not offer in this phase
}

bool MetadataFetch::HandleExtHandshake(Peer& p, absl::Span<const uint8_t> payload, Instant) {
  absl::StatusOr<ext::Handshake> hs = ext::ParseHandshake(payload);
  if (!hs.ok()) {
    Drop(p, std::string(hs.status().message()));
    return false;
  }
  p.ext_done = true;
  // BEP 10 allows a later handshake to update an earlier one; only what it names changes.
  if (hs->IdOf("ut_metadata") != 0 || !hs->m.empty()) p.ut_metadata = hs->IdOf("ut_metadata");
  if (hs->metadata_size > 0) p.size = hs->metadata_size;
  if (size_ < 0) ChooseSize();
  return true;
}

bool MetadataFetch::HandleMetadata(Peer& p, absl::Span<const uint8_t> payload, Instant now) {
  absl::StatusOr<ext::MetadataMessage> msg = ext::ParseMetadataMessage(payload);
  if (!msg.ok()) {
    Drop(p, std::string(msg.status().message()));
    return false;
  }
  switch (msg->type) {
    case ext::MetadataType::kRequest: {
      if (p.ut_metadata == 0) return true;
      SendExtended(p, p.ut_metadata, ext::EncodeMetadataReject(msg->piece));
      return true;
    }
    case ext::MetadataType::kReject: {
      if (msg->piece < pieces_.size() && pieces_[msg->piece].requested_from == p.key) {
        pieces_[msg->piece].requested_from = 0;
        --in_flight_;
        --p.in_flight;
        p.blocked_until = Instant{now.ms + config_.reject_backoff_ms};
      }
      return true;
    }
    case ext::MetadataType::kData:
      break;
  }
  if (msg->total_size != p.size || msg->total_size != size_) {
    Drop(p, absl::StrCat("lies about the metadata size: its handshake said ", p.size,
                         " bytes, its data says ", msg->total_size));
    return false;
  }
  if (msg->piece >= pieces_.size()) return true;
  Piece& piece = pieces_[msg->piece];
  if (piece.requested_from != p.key) return true;  // not asked of it (any more): ignore
  // Implied by the size check above; kept so the copy below can never leave buffer_.
  if (msg->data.size() != ext::MetadataPieceLength(size_, msg->piece)) {
    Drop(p, "sent a metadata piece of the wrong length");
    return false;
  }
  std::memcpy(buffer_.data() + size_t{msg->piece} * ext::kMetadataPieceSize, msg->data.data(),
              msg->data.size());
  piece.have = true;
  piece.requested_from = 0;
  piece.source = p.address;
  --in_flight_;
  --p.in_flight;
  if (std::all_of(pieces_.begin(), pieces_.end(), [](const Piece& x) { return x.have; })) {
    // Finish closes every peer when the metadata verifies, and drops a lone liar (this one,
    // perhaps) when it does not: the caller may go on reading only if `p` still exists.
    const PeerKey key = p.key;
    Finish(now);
    return peers_.contains(key);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The fetch

void MetadataFetch::ChooseSize() {
  // The size most peers agree on: one liar cannot outvote the rest of the swarm.
  absl::flat_hash_map<int64_t, int> votes;
  int best = 0;
  for (const auto& [key, p] : peers_) {
    if (p->ut_metadata == 0 || p->size <= 0) continue;
    const int v = ++votes[p->size];
    if (v > best) {
      best = v;
      size_ = p->size;
    }
  }
  if (size_ < 0) return;
  buffer_.assign(static_cast<size_t>(size_), '\0');
  pieces_.assign(ext::MetadataPieceCount(size_), Piece{});
  in_flight_ = 0;
}

void MetadataFetch::Reset() {
  size_ = -1;
  buffer_.clear();
  pieces_.clear();
  in_flight_ = 0;
  for (auto& [key, p] : peers_) p->in_flight = 0;
  ChooseSize();
}

void MetadataFetch::FillRequests(Instant now) {
  if (done_ || size_ < 0) return;
  if (single_source_ && single_peer_ == 0) {
    for (const auto& [key, p] : peers_) {
      if (p->ut_metadata != 0 && p->size == size_ && !(now < p->blocked_until)) {
        single_peer_ = key;
        break;
      }
    }
  }
  for (uint32_t i = 0; i < pieces_.size() && in_flight_ < config_.requests_max; ++i) {
    Piece& piece = pieces_[i];
    if (piece.have || piece.requested_from != 0) continue;
    Peer* best = nullptr;
    for (auto& [key, p] : peers_) {
      if (p->ut_metadata == 0 || p->size != size_ || now < p->blocked_until) continue;
      if (p->in_flight >= config_.requests_per_peer_max) continue;
      if (single_source_ && key != single_peer_) continue;
      if (best == nullptr || p->in_flight < best->in_flight) best = p.get();
    }
    if (best == nullptr) return;
    piece.requested_from = best->key;
    piece.requested_at = now;
    ++best->in_flight;
    ++in_flight_;
    SendExtended(*best, best->ut_metadata, ext::EncodeMetadataRequest(i));
  }
}

void MetadataFetch::Finish(Instant now) {
  const Sha1Digest got =
      Sha1(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(buffer_.data()), buffer_.size()));
  if (got == config_.info_hash) {
    done_ = true;
    info_ = std::move(buffer_);
    std::vector<PeerAddress> sources;
    for (const Piece& p : pieces_) {
      if (std::find(sources.begin(), sources.end(), p.source) == sources.end()) {
        sources.push_back(p.source);
      }
    }
    Log(absl::StrCat("metadata: ", info_.size(), " bytes from ", sources.size(),
                     sources.size() == 1 ? " peer" : " peers", ", SHA-1 matches the info-hash"));
    std::vector<PeerKey> keys;
    for (const auto& [key, p] : peers_) keys.push_back(key);
    for (PeerKey key : keys) Close(*peers_[key], CloseReason::kShutdown, "");
    candidates_.clear();
    next_dial_at_ = kNoTimeout;
    return;
  }
  std::vector<PeerAddress> sources;
  for (const Piece& p : pieces_) {
    if (std::find(sources.begin(), sources.end(), p.source) == sources.end()) {
      sources.push_back(p.source);
    }
  }
  if (sources.size() == 1) {
    const PeerAddress liar = sources[0];
    bool connected = false;
    for (auto& [key, p] : peers_) {
      if (p->address == liar) {
        Drop(*p, "sent metadata that does not hash to the info-hash");
        connected = true;
        break;
      }
    }
    if (!connected) {
      banned_.push_back(liar);
      Log(absl::StrCat("peer ", liar.ToString(),
                       ": sent metadata that does not hash to the info-hash; dropped"));
    }
    single_source_ = false;
  } else {
    Log(absl::StrCat("metadata from ", sources.size(),
                     " peers does not hash to the info-hash; fetching it again from one peer at a "
                     "time"));
    single_source_ = true;
    single_peer_ = 0;
  }
  Reset();
  FillRequests(now);
}

void MetadataFetch::HandleTick(Instant now) {
  if (done_) return;
  std::vector<PeerKey> late;
  for (auto& [key, p] : peers_) {
    if (!p->ext_done && now.ms >= p->connected_at.ms + config_.handshake_timeout_ms) {
      late.push_back(key);
    }
  }
  for (PeerKey key : late) {
    Close(*peers_[key], CloseReason::kTimeout, "no extension handshake");
  }
  for (auto& [key, p] : peers_) {
    if (p->blocked_until.ms != 0 && p->blocked_until <= now) p->blocked_until = Instant{0};
  }
  std::vector<PeerKey> silent;
  for (Piece& piece : pieces_) {
    if (piece.requested_from == 0 || now.ms < piece.requested_at.ms + config_.request_timeout_ms) {
      continue;
    }
    auto it = peers_.find(piece.requested_from);
    if (it != peers_.end()) {
      --it->second->in_flight;
      it->second->blocked_until = Instant{now.ms + config_.reject_backoff_ms};
      if (single_source_ && single_peer_ == it->first) single_peer_ = 0;
      if (++it->second->timeouts == kMaxTimeouts) silent.push_back(it->first);
    }
    piece.requested_from = 0;
    --in_flight_;
  }
  for (PeerKey key : silent) {
    if (auto it = peers_.find(key); it != peers_.end()) {
      Close(*it->second, CloseReason::kTimeout, "does not answer metadata requests");
    }
  }
  FillRequests(now);
  if (!(now < next_dial_at_)) Dial(now);
}

Instant MetadataFetch::NextTimeout() const {
  if (done_) return kNoTimeout;
  Instant t = next_dial_at_;
  for (const auto& [key, p] : peers_) {
    if (!p->ext_done) t = std::min(t, Instant{p->connected_at.ms + config_.handshake_timeout_ms});
    if (p->blocked_until.ms != 0) t = std::min(t, p->blocked_until);
  }
  for (const Piece& piece : pieces_) {
    if (piece.requested_from != 0) {
      t = std::min(t, Instant{piece.requested_at.ms + config_.request_timeout_ms});
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------

absl::StatusOr<Metainfo> ParseInfoDict(absl::string_view info_bytes) {
  std::string torrent = absl::StrCat("d4:info", info_bytes, "e");
  return ParseMetainfo(torrent);
}

std::string MakeTorrentFile(absl::string_view info_bytes,
                            const std::vector<std::string>& trackers) {
  std::string out = "d";
  if (!trackers.empty()) {
    bencode::Encoder e;
    e.String("announce");
    e.String(std::string(trackers[0]));
    if (trackers.size() > 1) {
      e.String("announce-list");
      e.BeginList();
      for (const std::string& url : trackers) {
        e.BeginList();
        e.String(url);
        e.End();
      }
      e.End();
    }
    out += e.Take();
  }
  absl::StrAppend(&out, "4:info", info_bytes, "e");
  return out;
}

}  // namespace torrenty::engine
