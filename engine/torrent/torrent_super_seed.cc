// BEP 16 super-seeding, the torrent's side: what a super-seeded peer is told at the handshake,
// when it is shown its next piece, and (in torrent.cc's HandleRequest) that it is served only
// what it was shown. The hand-out choice is engine/torrent/super_seed.h.
#include "absl/strings/str_cat.h"
#include "engine/torrent/torrent.h"

namespace torrenty::engine {

bool Torrent::SuperSeedStart(PeerSession& peer) {
  // A torrent still downloading has nothing to hold back yet; peers met before completion keep
  // the ordinary bitfield-and-haves they were given.
  if (super_seed_ == nullptr || !complete()) return false;
  super_seed_->AddPeer(peer.key);
  // BEP 6 says a Fast peer must hear one of bitfield, have all or have none first.
  if (peer.fast) peer.SendSimple(wire::MsgType::kHaveNone);
  LogPeer(peer, peer.fast ? "super-seeding: sent have_none" : "super-seeding: no bitfield");
  SuperSeedAdvance(peer);
  return true;
}

void Torrent::SuperSeedAdvance(PeerSession& peer) {
  const std::optional<uint32_t> piece = super_seed_->Advance(peer.key, peer.has, picker_);
  if (!piece.has_value()) return;
  peer.SendHave(*piece);
  LogPeer(peer, absl::StrCat("super-seeding: shown piece ", *piece, " (handed out ",
                             super_seed_->handed(*piece), " times)"));
}

void Torrent::SuperSeedSeen(PeerSession& from, std::optional<uint32_t> piece) {
  if (super_seed_ == nullptr) return;
  const auto announced = [&](uint32_t p) {
    return piece.has_value() ? p == *piece : from.has.Get(p);
  };
  // Others first: a peer whose piece now exists elsewhere may fetch it there.
  for (PeerKey key : super_seed_->Waiting(from.key, announced)) {
    if (PeerSession* other = FindPeer(key)) SuperSeedAdvance(*other);
  }
  // `from` finished the piece it was shown (or had it already).
  const std::optional<uint32_t> current = super_seed_->Current(from.key);
  if (current.has_value() && from.has.Get(*current)) SuperSeedAdvance(from);
}

}  // namespace torrenty::engine
