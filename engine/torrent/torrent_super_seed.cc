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
  super_seed_->AddPeer(peer.key, last_tick_);
  // BEP 6 says a Fast peer must hear one of bitfield, have all or have none first.
  if (peer.fast) peer.SendSimple(wire::MsgType::kHaveNone);
  LogPeer(peer, peer.fast ? "super-seeding: sent have_none" : "super-seeding: no bitfield");
  SuperSeedAdvance(peer);
  return true;
}

void Torrent::SuperSeedAdvance(PeerSession& peer, bool repeat) {
  const std::optional<uint32_t> piece = super_seed_->Advance(peer.key, peer.has, picker_, repeat);
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
  if (piece.has_value()) {
    super_seed_->NoteSeen(*piece);
  } else {
    for (uint32_t p = 0; p < num_pieces_; ++p)
      if (from.has.Get(p)) super_seed_->NoteSeen(p);
  }
  if (!from.has.none()) super_seed_->NoteProgress(from.key, last_tick_);
  // Others first: a peer whose piece now exists elsewhere may fetch it there.
  for (PeerKey key : super_seed_->Waiting(from.key, announced)) {
    if (PeerSession* other = FindPeer(key)) SuperSeedAdvance(*other);
  }
  // `from` finished the piece it was shown (or had it already).
  const std::optional<uint32_t> current = super_seed_->Current(from.key);
  if (current.has_value() && from.has.Get(*current)) SuperSeedAdvance(from);
}

bool Torrent::SuperSeedWaiting() const { return super_seed_ != nullptr && super_seed_->AnyIdle(); }

void Torrent::SuperSeedTick(Instant now) {
  if (super_seed_ == nullptr) return;
  // Idle peers take what has come free since (a piece whose recipient left without announcing
  // it); one that announced nothing for a while is not being served by the swarm and is shown a
  // repeat rather than left stalled.
  for (const auto& [key, progress] : super_seed_->Idle()) {
    PeerSession* peer = FindPeer(key);
    if (peer == nullptr) continue;
    SuperSeedAdvance(*peer, now.ms - progress.ms > config_.super_seed_stall_ms);
  }
}

}  // namespace torrenty::engine
