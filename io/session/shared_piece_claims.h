// engine::PieceClaims shared by the shard threads of one torrent: one atomic byte per piece, so a
// claim is one compare-exchange and no lock is taken (a shard claims once per piece, never per
// block).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "engine/torrent/piece_claims.h"

namespace torrenty::io {

class SharedPieceClaims final : public engine::PieceClaims {
 public:
  explicit SharedPieceClaims(uint32_t num_pieces)
      : states_(std::make_unique<std::atomic<uint8_t>[]>(num_pieces)),  // all kFree (zero)
        peer_has_(std::make_unique<std::atomic<uint8_t>[]>(num_pieces)) {}

  State Get(uint32_t piece) const override {
    return static_cast<State>(states_[piece].load(std::memory_order_acquire));
  }
  [[nodiscard]] bool TryClaim(uint32_t piece) override {
    uint8_t expected = Byte(State::kFree);
    return states_[piece].compare_exchange_strong(expected, Byte(State::kClaimed),
                                                  std::memory_order_acq_rel);
  }
  void Release(uint32_t piece) override {
    uint8_t expected = Byte(State::kClaimed);
    states_[piece].compare_exchange_strong(expected, Byte(State::kFree), std::memory_order_acq_rel);
  }
  void MarkHave(uint32_t piece) override {
    states_[piece].store(Byte(State::kHave), std::memory_order_release);
  }

  void NotePeerHas(uint32_t piece) override {
    if (peer_has_[piece].load(std::memory_order_relaxed) == 0) {
      peer_has_[piece].store(1, std::memory_order_relaxed);
    }
  }
  bool PeerHas(uint32_t piece) const override {
    return peer_has_[piece].load(std::memory_order_relaxed) != 0;
  }

 private:
  static constexpr uint8_t Byte(State s) { return static_cast<uint8_t>(s); }

  std::unique_ptr<std::atomic<uint8_t>[]> states_;
  std::unique_ptr<std::atomic<uint8_t>[]> peer_has_;  // a hint: relaxed is enough
};

}  // namespace torrenty::io
