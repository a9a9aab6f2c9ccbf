// Which pieces of one torrent are being fetched and which are done, as agreed by every shard that
// downloads it: a shard claims a free piece before it requests a block of it, so two shards do
// not fetch the same piece except on purpose (endgame). The engine only says what it asks of the
// table; io/ decides how many shards share one and provides the thread-safe table
// (io/session/shared_piece_claims.h). LocalPieceClaims serves a torrent on one shard.
#pragma once

#include <cstdint>
#include <vector>

namespace torrenty::engine {

class PieceClaims {
 public:
  enum class State : uint8_t { kFree = 0, kClaimed = 1, kHave = 2 };

  virtual ~PieceClaims() = default;

  virtual State Get(uint32_t piece) const = 0;
  // Free -> Claimed. False when another shard claimed it or it is done.
  [[nodiscard]] virtual bool TryClaim(uint32_t piece) = 0;
  // Claimed -> Free, for a piece given up before it finished. A piece already had stays had.
  virtual void Release(uint32_t piece) = 0;
  // -> Have, whatever the state was.
  virtual void MarkHave(uint32_t piece) = 0;
  // Some peer on some shard said it has the piece since the torrent started (set only): the
  // origin budget of web seeds (engine/webseed) leaves such pieces to peers.
  virtual void NotePeerHas(uint32_t piece) { (void)piece; }
  virtual bool PeerHas(uint32_t piece) const {
    (void)piece;
    return false;
  }
};

// The table of a torrent that only one shard (or one test) downloads.
class LocalPieceClaims final : public PieceClaims {
 public:
  explicit LocalPieceClaims(uint32_t num_pieces) : states_(num_pieces, State::kFree) {}

  State Get(uint32_t piece) const override { return states_[piece]; }
  [[nodiscard]] bool TryClaim(uint32_t piece) override {
    if (states_[piece] != State::kFree) return false;
    states_[piece] = State::kClaimed;
    return true;
  }
  void Release(uint32_t piece) override {
    if (states_[piece] == State::kClaimed) states_[piece] = State::kFree;
  }
  void MarkHave(uint32_t piece) override { states_[piece] = State::kHave; }

 private:
  std::vector<State> states_;
};

}  // namespace torrenty::engine
