// The extensions a connection may negotiate in its handshake: BEP 6 Fast (have all / have none,
// reject, allowed fast) and BEP 10 (the extension handshake, and BEP 9 metadata served from the
// info dict). ut_pex is in torrent_pex.cc.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/codec/extension.h"
#include "engine/torrent/allowed_fast.h"
#include "engine/torrent/torrent.h"

namespace torrenty::engine {

// ---------------------------------------------------------------------------------------------
// Fast extension (BEP 6)

bool Torrent::HandleHaveAllNone(PeerSession& peer, bool all) {
  picker_.RemovePeer(peer.has);
  peer.has = Bitfield(num_pieces_);
  if (all) peer.has.SetAll();
  picker_.AddPeer(peer.has);
  assembly_.NotePeerHas(peer.has);
  LogPeer(peer, all ? "received have_all" : "received have_none");
  SuperSeedSeen(peer, std::nullopt);
  if (peer.has.all() && complete()) {
    Close(peer, CloseReason::kBothSeeds);
    return false;
  }
  UpdateInterest(peer);
  MaybeSendAllowedFast(peer);
  return true;
}

bool Torrent::HandleReject(PeerSession& peer, const BlockRequest& r) {
  if (r.piece >= num_pieces_ || r.length == 0 || r.length > kBlockSize ||
      static_cast<uint64_t>(r.begin) + r.length > meta_.PieceSize(r.piece)) {
    Close(peer, CloseReason::kProtocolError, "reject out of range");
    return false;
  }
  // Rejects of requests we already gave up (a choke, a cancel) say nothing new.
  if (!peer.TakeRequestOut(r)) return true;
  assembly_.ReleaseRequest(r);
  if (peer.peer_choking) {
    // It will not serve this piece while choking us after all.
    auto it = std::find(peer.allowed_fast_in.begin(), peer.allowed_fast_in.end(), r.piece);
    if (it != peer.allowed_fast_in.end()) peer.allowed_fast_in.erase(it);
  } else {
    // Served by others from now on; the peer gets one request at a time until it sends a block,
    // so a peer that rejects everything cannot keep the block bouncing back to itself.
    peer.snubbed = true;
  }
  for (auto& [key, other] : peers_) {
    if (other.get() != &peer) FillRequests(*other);
  }
  return true;
}

bool Torrent::HandleAllowedFast(PeerSession& peer, uint32_t piece, Instant now) {
  // Requests become servable now, so the snub clock starts here, as at an unchoke.
  if (peer.allowed_fast_in.empty() && peer.peer_choking) peer.last_block = now;
  if (peer.allowed_fast_in.size() < kAllowedFastInMax &&
      std::find(peer.allowed_fast_in.begin(), peer.allowed_fast_in.end(), piece) ==
          peer.allowed_fast_in.end()) {
    peer.allowed_fast_in.push_back(piece);
  }
  return true;
}

// BEP 6: a peer with few pieces gets the canonical allowed-fast set, so it can start trading
// before it wins an unchoke. Only the pieces we have and it lacks are announced; the whole set is
// honoured, so a piece verified later is served too.
void Torrent::MaybeSendAllowedFast(PeerSession& peer) {
  if (!peer.fast || peer.allowed_fast_sent || peer.has.count() >= kAllowedFastSetSize) return;
  // A super-seeded peer may fetch only the pieces it is shown one by one (BEP 16).
  if (SuperSeeded(peer)) return;
  peer.allowed_fast_sent = true;
  if (peer.address.v6) return;  // BEP 6 defines the set for IPv4 only
  peer.allowed_fast_out = AllowedFastSet(peer.address.ip, meta_.info_hash, num_pieces_);
  for (uint32_t piece : peer.allowed_fast_out) {
    if (have_.Get(piece) && !peer.has.Get(piece)) peer.SendAllowedFast(piece);
  }
}

bool Torrent::AllowedFastOut(const PeerSession& peer, uint32_t piece) const {
  return std::find(peer.allowed_fast_out.begin(), peer.allowed_fast_out.end(), piece) !=
         peer.allowed_fast_out.end();
}

void Torrent::Reject(PeerSession& peer, const BlockRequest& r) {
  // A peer that keeps requesting while choked and never reads gets no unbounded queue of rejects.
  if (peer.fast && peer.send_queue_bytes() < config_.send_queue_bytes_max) peer.SendReject(r);
}

// ---------------------------------------------------------------------------------------------
// Extensions (BEP 10)

void Torrent::SendExtHandshake(PeerSession& peer) {
  ext::Handshake h;
  // ut_metadata is offered only with the info dict to serve; a torrent made without it (a test's
  // hand-built Metainfo) has nothing to give.
  if (!meta_.info_bytes.empty()) {
    h.m.emplace_back(InfoOf(Extension::kUtMetadata).name, InfoOf(Extension::kUtMetadata).local_id);
    h.metadata_size = static_cast<int64_t>(meta_.info_bytes.size());
  }
  if (PexAllowed())
    h.m.emplace_back(InfoOf(Extension::kUtPex).name, InfoOf(Extension::kUtPex).local_id);
  h.client = "Torrenty";
  h.listen_port = config_.listen_port;
  h.reqq = config_.peer_requests_queued_max;
  const std::string payload = ext::EncodeHandshake(h);
  peer.SendExtended(
      ext::kHandshakeId,
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
}

bool Torrent::HandleExtended(PeerSession& peer, absl::Span<const uint8_t> body, Instant now) {
  if (body.empty()) {
    Close(peer, CloseReason::kProtocolError, "empty extended message");
    return false;
  }
  const absl::Span<const uint8_t> payload = body.subspan(1);
  if (body[0] == ext::kHandshakeId) {
    absl::StatusOr<ext::Handshake> h = ext::ParseHandshake(payload);
    if (!h.ok()) {
      Close(peer, CloseReason::kProtocolError, std::string(h.status().message()));
      return false;
    }
    // A later handshake updates only the extensions it names (BEP 10).
    for (size_t i = 0; i < kNumExtensions; ++i) {
      for (const auto& [name, id] : h->m) {
        if (name == kExtensions[i].name) peer.ext_ids[i] = id;
      }
    }
    PexHandshake(peer, h->listen_port);
    return true;
  }
  const std::optional<Extension> e = ExtensionByLocalId(body[0]);
  if (!e.has_value()) return true;  // an id we never gave out: ignored, as BEP 10 allows
  switch (*e) {
    case Extension::kUtMetadata:
      return HandleUtMetadata(peer, payload);
    case Extension::kUtPex:
      return HandleUtPex(peer, payload, now);
  }
  return true;
}

bool Torrent::HandleUtMetadata(PeerSession& peer, absl::Span<const uint8_t> payload) {
  absl::StatusOr<ext::MetadataMessage> msg = ext::ParseMetadataMessage(payload);
  if (!msg.ok()) {
    Close(peer, CloseReason::kProtocolError, std::string(msg.status().message()));
    return false;
  }
  const uint8_t reply_id = peer.ext_ids[static_cast<size_t>(Extension::kUtMetadata)];
  if (msg->type != ext::MetadataType::kRequest || reply_id == 0) return true;
  const int64_t size = static_cast<int64_t>(meta_.info_bytes.size());
  const uint32_t length = ext::MetadataPieceLength(size, msg->piece);
  // Out of range, or the peer is not reading what we send: reject rather than queue more.
  if (length == 0 || peer.send_queue_bytes() >= config_.send_queue_bytes_max) {
    const std::string reject = ext::EncodeMetadataReject(msg->piece);
    peer.SendExtended(reply_id, absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(reject.data()),
                                                    reject.size()));
    return true;
  }
  const std::string dict = ext::EncodeMetadataDataHeader(msg->piece, size);
  peer.SendExtended(reply_id,
                    absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(dict.data()), dict.size()),
                    absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(meta_.info_bytes.data()) +
                                            size_t{msg->piece} * ext::kMetadataPieceSize,
                                        length));
  return true;
}

}  // namespace torrenty::engine
