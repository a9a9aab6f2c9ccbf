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
// The hand-out counts belong to the torrent, not to one shard: several shards serving one torrent
// share a SuperSeedCounts (io/session/shared_super_seed_counts.h), so a piece one shard handed
// out is not handed out again by another before every piece has gone once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "engine/base/bitfield.h"
#include "engine/torrent/piece_picker.h"
#include "engine/torrent/torrent_types.h"

namespace torrenty::engine {

// How many times each piece of one torrent has been handed out, over all shards.
class SuperSeedCounts {
 public:
  virtual ~SuperSeedCounts() = default;
  virtual uint32_t Handed(uint32_t piece) const = 0;
  virtual void AddHanded(uint32_t piece) = 0;
};

class LocalSuperSeedCounts final : public SuperSeedCounts {
 public:
  explicit LocalSuperSeedCounts(uint32_t num_pieces) : handed_(num_pieces, 0) {}
  uint32_t Handed(uint32_t piece) const override { return handed_[piece]; }
  void AddHanded(uint32_t piece) override { ++handed_[piece]; }

 private:
  std::vector<uint32_t> handed_;
};

// The hand-out state of one torrent on one shard: which peers are super-seeded, the piece each
// is working on and the pieces each was shown.
class SuperSeed {
 public:
  // `counts` is shared by the torrent's shards; null gives this one a private table.
  SuperSeed(uint32_t num_pieces, SuperSeedCounts* counts, uint64_t seed);

  bool Tracks(PeerKey key) const { return peers_.contains(key); }
  void AddPeer(PeerKey key);
  void RemovePeer(PeerKey key) { peers_.erase(key); }

  // Chooses the peer's next piece (least handed out, then rarest by `picker`'s availability,
  // then at random; never one in `peer_has`), records it as shown and handed out, and returns
  // it. nullopt when the peer has every piece (or the peer is not tracked).
  std::optional<uint32_t> Advance(PeerKey key, const Bitfield& peer_has, const PiecePicker& picker);
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
  uint32_t handed(uint32_t piece) const { return counts_->Handed(piece); }

 private:
  struct Peer {
    Bitfield shown;
    std::optional<uint32_t> current;
  };
  uint32_t num_pieces_;
  std::unique_ptr<LocalSuperSeedCounts> local_;
  SuperSeedCounts* counts_;
  absl::flat_hash_map<PeerKey, Peer> peers_;
  std::mt19937_64 rng_;
};

}  // namespace torrenty::engine
