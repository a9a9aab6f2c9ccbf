// Piece-level rarest-first selection: tracks how many peers have each piece and picks the
// rarest piece a given peer can give us. Block-level state lives elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "engine/base/bitfield.h"

namespace torrenty::engine {

// Layout (after libtorrent's piece_picker): every pickable piece (not had, not in progress)
// sits in `order_`, grouped into contiguous buckets by availability, rarest first. Within a
// bucket the order is a uniformly random permutation, which is the random tie-break. An
// availability change of +-1 swaps the piece to the shared edge of its bucket, moves the
// boundary past it, then swaps it with a random slot of its new bucket: O(1), and it keeps each
// bucket uniformly shuffled. Pick walks `order_` from the front and stops at the first piece the
// peer has. Had/in-progress pieces are not in `order_`, so Pick never skips over them.
// Out-of-range piece indices are ignored; a Bitfield of another size is read up to the shorter.
class PiecePicker {
 public:
  PiecePicker(uint32_t num_pieces, uint64_t seed);

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

  // Rarest wanted piece that `peer_has` has, we lack and is not in progress; ties broken at random
  // (seeded, deterministic for a seed). nullopt when none.
  std::optional<uint32_t> Pick(const Bitfield& peer_has);

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

  uint32_t num_pieces_;
  uint32_t num_have_ = 0;
  std::vector<uint32_t> avail_;  // per piece
  std::vector<uint8_t> state_;   // per piece: kHad | kInProgress | kUnwanted
  std::vector<uint32_t> pos_;    // per piece: index in order_, or kNotInOrder
  std::vector<uint32_t> order_;  // pickable pieces, sorted by availability
  // Bucket a occupies order_[bucket_start_[a], bucket_start_[a + 1]); the last entry is
  // order_.size(), so there is one more entry than tracked availability levels.
  std::vector<uint32_t> bucket_start_;
  std::mt19937_64 rng_;
};

}  // namespace torrenty::engine
