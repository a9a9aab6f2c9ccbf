// Which pieces of one torrent are being fetched and which are done, shared by every shard that
// downloads it. A shard takes a free piece with one compare-exchange before it requests a block
// of it, so two shards do not fetch the same piece except on purpose (endgame). Lock-free and
// I/O-free: the engine may hold it; io/ decides how many shards share one.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace torrenty::engine {

class PieceClaims {
 public:
  enum class State : uint8_t { kFree = 0, kClaimed = 1, kHave = 2 };

  explicit PieceClaims(uint32_t num_pieces)
      : num_pieces_(num_pieces), states_(new std::atomic<uint8_t>[num_pieces]) {
    for (uint32_t i = 0; i < num_pieces; ++i) states_[i].store(0, std::memory_order_relaxed);
  }

  uint32_t num_pieces() const { return num_pieces_; }
  State Get(uint32_t piece) const {
    return static_cast<State>(states_[piece].load(std::memory_order_acquire));
  }
  // Free -> Claimed. False when another shard claimed it or it is done.
  bool TryClaim(uint32_t piece) {
    uint8_t expected = 0;
    return states_[piece].compare_exchange_strong(expected, 1, std::memory_order_acq_rel);
  }
  // Claimed -> Free, for a piece given up before it finished.
  void Release(uint32_t piece) {
    uint8_t expected = 1;
    states_[piece].compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  }
  // -> Have. True for the first shard to finish the piece (the one that counts it).
  bool MarkHave(uint32_t piece) {
    if (states_[piece].exchange(2, std::memory_order_acq_rel) == 2) return false;
    have_count_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  uint32_t have_count() const { return have_count_.load(std::memory_order_relaxed); }

 private:
  const uint32_t num_pieces_;
  std::unique_ptr<std::atomic<uint8_t>[]> states_;
  std::atomic<uint32_t> have_count_{0};
};

}  // namespace torrenty::engine
