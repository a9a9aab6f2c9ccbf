// BEP 16 super-seeding: a seed that shows each peer one piece at a time, so the first copies of
// the pieces go to different peers and the swarm spreads them among itself instead of every peer
// taking the whole torrent from the origin.
//
// The seed sends no bitfield (have_none to a Fast peer) and then a `have` for one piece per peer:
// the piece handed out least often so far, rarest among the connected peers, never one the peer
// already has. The peer is shown its next piece only when its current one has been seen elsewhere
// (another peer announced it) or the peer announced it itself. Requests for pieces a peer was not
// shown are refused, so the origin never uploads more than what it chose to hand out.
//
// Once every piece has gone out, a piece is handed out again only if no peer ever announced it
// and no peer is working on it (its recipient left, or moved on without announcing it): a piece
// some peer has or is fetching is the swarm's to spread, and repeating it would cost the origin a
// copy per repeat (libtorrent's rule, least handed out first, repeated in-flight pieces: a fleet
// of 4 took 1.04-2.2 copies from the origin). A peer with nothing to be shown waits idle; it is
// shown a repeat anyway once it has announced nothing for a while (a swarm that does not serve
// it must not stall it).
//
// The hand-out counts belong to the torrent, not to one shard: several shards serving one torrent
// share a SuperSeedCounts (io/session/shared_super_seed_counts.h), so a piece one shard handed
// out is not handed out again by another before every piece has gone once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/base/bitfield.h"
#include "engine/base/types.h"
#include "engine/torrent/piece_picker.h"
#include "engine/torrent/torrent_types.h"

namespace torrenty::engine {

// How many times each piece of one torrent has been handed out, over all shards.
class SuperSeedCounts {
 public:
  virtual ~SuperSeedCounts() = default;
  virtual uint32_t Handed(uint32_t piece) const = 0;
  virtual void AddHanded(uint32_t piece) = 0;
  // Some peer announced the piece (it exists outside the origin).
  virtual bool Seen(uint32_t piece) const = 0;
  virtual void MarkSeen(uint32_t piece) = 0;
  // Peers whose current piece (shown, not announced yet) this is.
  virtual uint32_t Current(uint32_t piece) const = 0;
  virtual void AddCurrent(uint32_t piece, int32_t delta) = 0;
};

class LocalSuperSeedCounts final : public SuperSeedCounts {
 public:
  explicit LocalSuperSeedCounts(uint32_t num_pieces)
      : handed_(num_pieces, 0), seen_(num_pieces, 0), current_(num_pieces, 0) {}
  uint32_t Handed(uint32_t piece) const override { return handed_[piece]; }
  void AddHanded(uint32_t piece) override { ++handed_[piece]; }
  bool Seen(uint32_t piece) const override { return seen_[piece] != 0; }
  void MarkSeen(uint32_t piece) override { seen_[piece] = 1; }
  uint32_t Current(uint32_t piece) const override { return current_[piece]; }
  void AddCurrent(uint32_t piece, int32_t delta) override {
    current_[piece] = static_cast<uint32_t>(static_cast<int64_t>(current_[piece]) + delta);
  }

 private:
  std::vector<uint32_t> handed_;
  std::vector<uint8_t> seen_;
  std::vector<uint32_t> current_;
};

// The hand-out state of one torrent on one shard: which peers are super-seeded, the piece each
// is working on and the pieces each was shown.
class SuperSeed {
 public:
  // `counts` is shared by the torrent's shards; null gives this one a private table.
  SuperSeed(uint32_t num_pieces, SuperSeedCounts* counts, uint64_t seed);

  bool Tracks(PeerKey key) const { return peers_.contains(key); }
  void AddPeer(PeerKey key, Instant now = {});
  void RemovePeer(PeerKey key);
  // A peer announced `piece`.
  void NoteSeen(uint32_t piece) { counts_->MarkSeen(piece); }
  // The peer announced something at `now`: it is being served (by someone).
  void NoteProgress(PeerKey key, Instant now) {
    auto it = peers_.find(key);
    if (it != peers_.end()) it->second.progress = now;
  }

  // Chooses the peer's next piece (least handed out, then rarest by `picker`'s availability,
  // then at random; never one in `peer_has`), records it as shown and handed out, and returns
  // it. A piece already handed out qualifies only if it was never seen and is nobody's current
  // piece, unless `repeat` (the peer has been idle too long). nullopt: nothing to show now (the
  // peer is idle), or the peer has every piece, or it is not tracked.
  std::optional<uint32_t> Advance(PeerKey key, const Bitfield& peer_has, const PiecePicker& picker,
                                  bool repeat = false);
  // The piece the peer was last shown and has not announced yet.
  std::optional<uint32_t> Current(PeerKey key) const;
  // Whether the peer was ever shown `piece` (only those are served to it).
  bool Shown(PeerKey key, uint32_t piece) const;
  // Tracked peers other than `except` whose current piece is one `has_piece` says is present.
  template <typename Pred>
  std::vector<PeerKey> Waiting(PeerKey except, Pred has_piece) const {
    std::vector<PeerKey> out;
    for (const auto& [key, p] : peers_) {
      if (key != except && p.current.has_value() && has_piece(*p.current)) out.push_back(key);
    }
    return out;
  }
  // Tracked peers that have no current piece, with the time of their last announcement.
  std::vector<std::pair<PeerKey, Instant>> Idle() const {
    std::vector<std::pair<PeerKey, Instant>> out;
    for (const auto& [key, p] : peers_) {
      if (!p.current.has_value()) out.emplace_back(key, p.progress);
    }
    return out;
  }
  bool AnyIdle() const {
    for (const auto& [key, p] : peers_) {
      if (!p.current.has_value()) return true;
    }
    return false;
  }
  uint32_t handed(uint32_t piece) const { return counts_->Handed(piece); }

 private:
  struct Peer {
    Bitfield shown;
    std::optional<uint32_t> current;
    Instant progress{};
  };
  uint32_t num_pieces_;
  std::unique_ptr<LocalSuperSeedCounts> local_;
  SuperSeedCounts* counts_;
  absl::flat_hash_map<PeerKey, Peer> peers_;
  std::mt19937_64 rng_;
};

}  // namespace torrenty::engine
