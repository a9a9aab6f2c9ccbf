#include "engine/torrent/super_seed.h"

namespace torrenty::engine {

SuperSeed::SuperSeed(uint32_t num_pieces, SuperSeedCounts* counts, uint64_t seed)
    : num_pieces_(num_pieces), counts_(counts), rng_(seed) {
  if (counts_ == nullptr) {
    local_ = std::make_unique<LocalSuperSeedCounts>(num_pieces);
    counts_ = local_.get();
  }
}

void SuperSeed::AddPeer(PeerKey key, Instant now) {
  peers_.try_emplace(key, Peer{Bitfield(num_pieces_), {}, now});
}

void SuperSeed::RemovePeer(PeerKey key) {
  auto it = peers_.find(key);
  if (it == peers_.end()) return;
  if (it->second.current.has_value()) counts_->AddCurrent(*it->second.current, -1);
  peers_.erase(it);
}

std::optional<uint32_t> SuperSeed::Advance(PeerKey key, const Bitfield& peer_has,
                                           const PiecePicker& picker, bool repeat) {
  auto it = peers_.find(key);
  if (it == peers_.end()) return std::nullopt;
  Peer& peer = it->second;
  if (peer.current.has_value()) counts_->AddCurrent(*peer.current, -1);
  peer.current.reset();
  // One pass over the pieces: the lowest (handed, availability), ties chosen uniformly at random
  // (reservoir sampling), so peers arriving together get different pieces on every shard.
  std::optional<uint32_t> best;
  uint32_t best_handed = 0, best_avail = 0, ties = 0;
  for (uint32_t piece = 0; piece < num_pieces_; ++piece) {
    if (peer_has.Get(piece) || peer.shown.Get(piece)) continue;
    const uint32_t handed = counts_->Handed(piece);
    // The swarm has it or is fetching it: another copy from the origin would be a repeat.
    if (handed > 0 && !repeat && (counts_->Seen(piece) || counts_->Current(piece) > 0)) continue;
    const uint32_t avail = picker.Availability(piece);
    if (!best.has_value() || handed < best_handed ||
        (handed == best_handed && avail < best_avail)) {
      best = piece;
      best_handed = handed;
      best_avail = avail;
      ties = 1;
    } else if (handed == best_handed && avail == best_avail) {
      ++ties;
      if (std::uniform_int_distribution<uint32_t>(0, ties - 1)(rng_) == 0) best = piece;
    }
  }
  if (!best.has_value()) return std::nullopt;
  counts_->AddHanded(*best);
  counts_->AddCurrent(*best, 1);
  peer.shown.Set(*best);
  peer.current = *best;
  return best;
}

std::optional<uint32_t> SuperSeed::Current(PeerKey key) const {
  auto it = peers_.find(key);
  return it == peers_.end() ? std::nullopt : it->second.current;
}

bool SuperSeed::Shown(PeerKey key, uint32_t piece) const {
  auto it = peers_.find(key);
  return it != peers_.end() && it->second.shown.Get(piece);
}

}  // namespace torrenty::engine
