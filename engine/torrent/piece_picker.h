// Piece-level rarest-first selection: tracks how many peers have each piece and picks the
// rarest piece a given peer can give us. Block-level state lives elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "engine/base/bitfield.h"

namespace torrenty::engine {

// Pieces per extent: 4 MiB extents as libtorrent's, at most 64 pieces so that a scan of one
// extent stays short, 1 (no grouping) for pieces of 4 MiB and more, and at least 32 extents in a
// torrent: with few extents, leechers of one seed would all fetch the same pieces in the same
// order and have nothing to trade with each other. Always a power of two.
uint32_t PiecesPerExtent(int64_t piece_length, uint32_t num_pieces);

// Layout (after libtorrent's piece_picker): every pickable piece (not had, not in progress)
// sits in `order_`, grouped into contiguous buckets by availability, rarest first. Within a
// bucket the order is a uniformly random permutation, which is the random tie-break. An
// availability change of +-1 swaps the piece to the shared edge of its bucket, moves the
// boundary past it, then swaps it with a random slot of its new bucket: O(1), and it keeps each
// bucket uniformly shuffled. Pick walks `order_` from the front and stops at the first piece the
// peer has. Had/in-progress pieces are not in `order_`, so Pick never skips over them.
// Out-of-range piece indices are ignored; a Bitfield of another size is read up to the shorter.
//
// Extents (after libtorrent's piece_extent_affinity): pieces are grouped into extents of
// `pieces_per_extent` consecutive pieces. Among the pieces of the rarest availability a peer can
// give us, Pick prefers the next piece, in index order, of the extent that peer is already in,
// then the first piece of an extent nobody is fetching from. So a peer's requests run through
// the file in contiguous stretches, which is what a seeder's read-ahead and fault-around (mmap)
// serve cheaply, while two peers work in different extents. Rarity is never traded for this: a
// rarer piece always comes first.
class PiecePicker {
 public:
  static constexpr uint32_t kNoExtent = UINT32_MAX;

  // `pieces_per_extent` is rounded down to a power of two.
  PiecePicker(uint32_t num_pieces, uint64_t seed, uint32_t pieces_per_extent = 1);

  void AddPeer(const Bitfield& has);     // +1 availability for each set bit (bitfield arrived)
  void RemovePeer(const Bitfield& has);  // -1 for each set bit (peer left)
  void AddHave(uint32_t piece);          // +1 for one piece (a `have` arrived)
  // -1 for one piece; for callers that adjust availability by hand (never below 0).
  void RemoveHave(uint32_t piece);
  void SetWeHave(uint32_t piece);  // verified: never picked again
  void SetWeLack(uint32_t piece);  // undo SetWeHave (e.g. recheck found it bad)
  void SetInProgress(uint32_t piece, bool in_progress);  // excluded from Pick while in progress
  // File selection: an unwanted piece is never picked (and does not count as pickable, so
  // endgame starts when the wanted pieces run out).
  void SetWanted(uint32_t piece, bool wanted);

  // Rarest wanted piece that `peer_has` has, we lack and is not in progress; nullopt when none.
  // Ties go to the lowest such piece of `peer_extent` (the extent of the last piece started with
  // this peer), else to the lowest one of an extent with no piece in progress, else at random
  // (seeded, deterministic for a seed).
  std::optional<uint32_t> Pick(const Bitfield& peer_has, uint32_t peer_extent = kNoExtent);
  uint32_t ExtentOf(uint32_t piece) const { return piece >> extent_shift_; }
  uint32_t pieces_per_extent() const { return pieces_per_extent_; }

  uint32_t Availability(uint32_t piece) const;
  uint32_t num_pieces() const { return num_pieces_; }
  uint32_t num_pickable() const { return static_cast<uint32_t>(order_.size()); }
  bool we_have(uint32_t piece) const { return piece < num_pieces_ && state_[piece] & kHad; }
  bool in_progress(uint32_t piece) const {
    return piece < num_pieces_ && state_[piece] & kInProgress;
  }
  uint32_t num_have() const { return num_have_; }

  // O(pieces) consistency check of the internal ordering, for tests.
  bool InvariantsHold() const;

 private:
  static constexpr uint32_t kNotInOrder = UINT32_MAX;
  static constexpr uint8_t kHad = 1;
  static constexpr uint8_t kInProgress = 2;
  static constexpr uint8_t kUnwanted = 4;

  void Increment(uint32_t piece);
  void Decrement(uint32_t piece);
  // Puts `piece` into / takes it out of `order_` (state flags are the caller's business).
  void Insert(uint32_t piece);
  void Erase(uint32_t piece);
  void EnsureBucket(uint32_t avail);
  // Swaps the piece at `pos` with a uniformly random slot of bucket `avail` (which holds it).
  void ShuffleIntoBucket(uint32_t pos, uint32_t avail);
  void SwapSlots(uint32_t a, uint32_t b);
  uint32_t RandomBelow(uint32_t n);
  // Moves `piece` to `state`, keeping `order_` and the busy extent counts in step.
  void SetState(uint32_t piece, uint8_t state);
  static bool Busy(uint8_t state) { return (state & (kInProgress | kHad)) == kInProgress; }
  // The lowest pickable piece of extent `e` with availability `avail` that the peer has.
  std::optional<uint32_t> FirstInExtent(uint32_t e, uint32_t avail, const Bitfield& peer_has) const;

  uint32_t num_pieces_;
  uint32_t num_have_ = 0;
  std::vector<uint32_t> avail_;  // per piece
  std::vector<uint8_t> state_;   // per piece: kHad | kInProgress | kUnwanted
  std::vector<uint32_t> pos_;    // per piece: index in order_, or kNotInOrder
  std::vector<uint32_t> order_;  // pickable pieces, sorted by availability
  // Bucket a occupies order_[bucket_start_[a], bucket_start_[a + 1]); the last entry is
  // order_.size(), so there is one more entry than tracked availability levels.
  std::vector<uint32_t> bucket_start_;
  uint32_t extent_shift_;  // pieces per extent is a power of two: extent = piece >> shift
  uint32_t pieces_per_extent_;
  std::vector<uint32_t> extent_busy_;  // per extent: pieces in progress and not yet had
  std::mt19937_64 rng_;
};

}  // namespace torrenty::engine
