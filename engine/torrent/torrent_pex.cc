// BEP 11 peer exchange on top of BEP 10: the glue between engine::Torrent and the per-connection
// state machine of engine/pex/ut_pex.h. Kept apart from torrent.cc, which it touches only
// through the handshake, the tick and NextTimeout.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/torrent/torrent.h"

namespace torrenty::engine {
namespace {

constexpr size_t kPexSlot = static_cast<size_t>(Extension::kUtPex);

pex::PexEndpoint ToEndpoint(const PeerAddress& a) {
  return a.v6 ? pex::PexEndpoint::FromV6(a.ip6, a.port) : pex::PexEndpoint::FromV4(a);
}

PeerAddress ToAddress(const pex::PexEndpoint& e) {
  return e.v6 ? PeerAddress::V6(e.ip, e.port) : e.v4();
}

// Where others can reach `peer`: the address we dialled, or for a peer that dialled us its
// address with the listen port it told us (its source port is ephemeral: never shared).
std::optional<pex::PexEndpoint> ListenEndpoint(const PeerSession& peer) {
  if (peer.outgoing) return ToEndpoint(peer.address);
  if (peer.listen_port == 0) return std::nullopt;
  PeerAddress a = peer.address;
  a.port = peer.listen_port;
  return ToEndpoint(a);
}

}  // namespace

void Torrent::PexHandshake(PeerSession& peer, uint16_t listen_port) {
  if (listen_port != 0 && listen_port != peer.listen_port) {
    peer.listen_port = listen_port;
    if (!peer.outgoing) ++pex_generation_;
  }
  if (!PexAllowed() || pex_.contains(peer.key)) return;
  const std::optional<pex::PexEndpoint> remote = ListenEndpoint(peer);
  pex_.try_emplace(
      peer.key,
      PexLink{pex::PexState(meta_.is_private, remote ? *remote : ToEndpoint(peer.address)), 0});
}

bool Torrent::HandleUtPex(PeerSession& peer, absl::Span<const uint8_t> payload, Instant now) {
  // BEP 27: a private torrent (and one with PEX off) takes no peers from PEX; such a peer never
  // got a PexLink. So did one that sends before its extension handshake.
  auto it = pex_.find(peer.key);
  if (it == pex_.end()) return true;
  absl::StatusOr<pex::PexMessage> m = it->second.state.HandleMessage(payload, now);
  if (!m.ok()) {
    Close(peer, CloseReason::kProtocolError, std::string(m.status().message()));
    return false;
  }
  if (m->added.empty()) return true;
  std::vector<PeerAddress> added;
  added.reserve(m->added.size());
  for (const pex::PexPeer& p : m->added) added.push_back(ToAddress(p.endpoint));
  LogPeer(peer, absl::StrCat("ut_pex: ", added.size(), " peers"));
  // The same path as tracker peers: banned addresses and our own are skipped there.
  AddPeerCandidates(added, now, /*from_pex=*/true);
  return true;
}

void Torrent::SendPex(Instant now) {
  const auto due = [this, now](PeerKey key, const PexLink& link) {
    const PeerSession& p = *peers_.find(key)->second;
    return p.ext_ids[kPexSlot] != 0 && link.polled != pex_generation_ &&
           link.state.NextDue() <= now;
  };
  bool any = false;
  for (const auto& [key, link] : pex_) any = any || due(key, link);
  if (!any) return;
  std::vector<pex::PexPeer> connected = LocalPexPeers();
  connected.insert(connected.end(), other_shards_pex_.begin(), other_shards_pex_.end());
  for (auto& [key, link] : pex_) {
    if (!due(key, link)) continue;
    PeerSession& p = *peers_.find(key)->second;
    const std::optional<std::string> payload = link.state.Poll(now, connected);
    // A message sent may have left peers out (the per-message bound): look again when the next
    // one is due. None sent: the peer is up to date until the connected set changes.
    if (!payload) {
      link.polled = pex_generation_;
      continue;
    }
    p.SendExtended(
        p.ext_ids[kPexSlot],
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(payload->data()), payload->size()));
  }
}

std::vector<pex::PexPeer> Torrent::LocalPexPeers() const {
  std::vector<pex::PexPeer> connected;
  if (!PexAllowed()) return connected;
  connected.reserve(peers_.size());
  for (const auto& [key, p] : peers_) {
    if (!p->handshaken) continue;
    const std::optional<pex::PexEndpoint> e = ListenEndpoint(*p);
    if (!e) continue;
    uint8_t flags = 0;
    if (p->outgoing) flags |= pex::kPexOutgoing;
    if (p->has.all()) flags |= pex::kPexSeed;
    connected.push_back(pex::PexPeer{*e, flags});
  }
  return connected;
}

void Torrent::SetOtherShardsPexPeers(std::vector<pex::PexPeer> peers) {
  if (!PexAllowed() || peers == other_shards_pex_) return;
  other_shards_pex_ = std::move(peers);
  // Not pex_generation_: that would make this shard report its own peers again and again.
  for (auto& [key, link] : pex_) link.polled = 0;
}

Instant Torrent::NextPexDue() const {
  Instant next = kNoTimeout;
  for (const auto& [key, link] : pex_) {
    if (link.polled == pex_generation_) continue;
    if (peers_.find(key)->second->ext_ids[kPexSlot] == 0) continue;
    next = std::min(next, link.state.NextDue());
  }
  return next;
}

}  // namespace torrenty::engine
