// engine::SuperSeedCounts shared by the shard threads of one torrent: one relaxed atomic counter
// per piece (and a seen flag and a current-holder count). A count read just before another shard
// bumps it may hand a piece out twice; that costs one extra copy at most, so no stronger ordering
// is bought.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "engine/torrent/super_seed.h"

namespace torrenty::io {

class SharedSuperSeedCounts final : public engine::SuperSeedCounts {
 public:
  explicit SharedSuperSeedCounts(uint32_t num_pieces)
      : handed_(std::make_unique<std::atomic<uint32_t>[]>(num_pieces)),
        seen_(std::make_unique<std::atomic<uint8_t>[]>(num_pieces)),
        current_(std::make_unique<std::atomic<uint32_t>[]>(num_pieces)) {}

  uint32_t Handed(uint32_t piece) const override {
    return handed_[piece].load(std::memory_order_relaxed);
  }
  void AddHanded(uint32_t piece) override {
    handed_[piece].fetch_add(1, std::memory_order_relaxed);
  }
  bool Seen(uint32_t piece) const override {
    return seen_[piece].load(std::memory_order_relaxed) != 0;
  }
  void MarkSeen(uint32_t piece) override { seen_[piece].store(1, std::memory_order_relaxed); }
  uint32_t Current(uint32_t piece) const override {
    return current_[piece].load(std::memory_order_relaxed);
  }
  void AddCurrent(uint32_t piece, int32_t delta) override {
    current_[piece].fetch_add(static_cast<uint32_t>(delta), std::memory_order_relaxed);
  }

 private:
  std::unique_ptr<std::atomic<uint32_t>[]> handed_;
  std::unique_ptr<std::atomic<uint8_t>[]> seen_;
  std::unique_ptr<std::atomic<uint32_t>[]> current_;
};

}  // namespace torrenty::io
