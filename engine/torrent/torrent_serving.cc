// Serving and choking: the torrent's side of uploads. Requests a peer may have answered (not
// choked, or allowed fast), block reads from io, and the BEP 3 choker's rounds.
#include <algorithm>

#include "engine/torrent/torrent.h"

namespace torrenty::engine {

// ---------------------------------------------------------------------------------------------
// Serving

void Torrent::ServeRequests(PeerSession& peer) {
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
                              Instant /*now*/, uint64_t pin) {
  PeerSession* peer = FindPeer(key);
  const auto give_back = [&] {
    if (pin == 0) return;
    Action a;
    a.type = Action::Type::kReleaseBlock;
    a.peer = key;
    a.pin = pin;
    Emit(std::move(a));
  };
  if (!status.ok()) {
    give_back();
    EmitFatal(piece, status);
    return;
  }
  if (peer == nullptr) {
    give_back();
    return;
  }
  if (peer->reads_in_flight > 0) --peer->reads_in_flight;
  // Choked since the request was queued: BEP 3 says the request is dropped (BEP 6: rejected).
  if (peer->am_choking && !AllowedFastOut(*peer, piece)) {
    give_back();
    Reject(*peer, BlockRequest{piece, begin, static_cast<uint32_t>(data.size())});
  } else {
    if (pin != 0) {
      peer->SendBlockRef(piece, begin, data, pin);
    } else {
      peer->SendBlock(piece, begin, data);
    }
    peer->bytes_uploaded += static_cast<int64_t>(data.size());
    stats_.uploaded_payload += static_cast<int64_t>(data.size());
  }
  ServeRequests(*peer);
}

void Torrent::Unchoke(PeerSession& peer, Instant now) {
  peer.am_choking = false;
  peer.unchoked_at = now;
  peer.SendSimple(wire::MsgType::kUnchoke);
}

void Torrent::Choke(PeerSession& peer) {
  peer.am_choking = true;
  peer.SendSimple(wire::MsgType::kChoke);
  if (!peer.fast) {
    peer.requests_in.clear();
    return;
  }
  // BEP 6: every queued request is rejected, except those of allowed-fast pieces, still served.
  size_t rejected = 0;
  for (auto r = peer.requests_in.begin(); r != peer.requests_in.end();) {
    if (AllowedFastOut(peer, r->piece)) {
      ++r;
      continue;
    }
    Reject(peer, *r);
    ++rejected;
    r = peer.requests_in.erase(r);
  }
  if (rejected > 0) LogPeer(peer, absl::StrCat("choked, rejected ", rejected, " requests"));
}

void Torrent::FillUnchokeSlots(Instant now) {
  // A super-seeded peer may fetch only the piece or two it was shown, so unchoking it costs no
  // more than that, while choking it would hold its piece hostage: nobody else is shown that
  // piece while it is the peer's current one. So it takes no slot and is never kept waiting.
  for (auto& [key, peer] : peers_) {
    if (peer->handshaken && peer->peer_interested && peer->am_choking && SuperSeeded(*peer)) {
      Unchoke(*peer, now);
    }
  }
  uint32_t unchoked = 0;
  for (auto& [key, peer] : peers_)
    if (!peer->am_choking && peer->peer_interested && !SuperSeeded(*peer)) ++unchoked;
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
  std::vector<PeerKey> unchoke = choker_.Run(candidates, done(), now);
  std::sort(unchoke.begin(), unchoke.end());
  for (auto& [key, peer] : peers_) {
    if (!peer->handshaken) continue;
    const bool want = std::binary_search(unchoke.begin(), unchoke.end(), key) ||
                      (peer->peer_interested && SuperSeeded(*peer));
    if (want && peer->am_choking) Unchoke(*peer, now);
    if (!want && !peer->am_choking) Choke(*peer);
  }
  if (unchoke != last_unchoked_) {
    last_unchoked_ = unchoke;
    std::string line = absl::StrCat("choker: ", done() ? "seeding" : "leeching", ", unchoked");
    for (PeerKey key : unchoke) {
      const PeerSession& p = *peers_[key];
      absl::StrAppend(&line, " ", p.address.ToString(), key == choker_.optimistic() ? "*" : "");
    }
    absl::StrAppend(&line, " (", candidates.size(), " peers; * = optimistic)");
    Action a;
    a.type = Action::Type::kLog;
    a.message = std::move(line);
    Emit(std::move(a));
  }
}

}  // namespace torrenty::engine
