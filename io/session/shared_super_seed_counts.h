// engine::SuperSeedCounts shared by the shard threads of one torrent: one relaxed atomic counter
// per piece. A count read just before another shard bumps it may hand a piece out twice; that
// costs one extra copy at most, so no stronger ordering is bought.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "engine/torrent/super_seed.h"

namespace torrenty::io {

class SharedSuperSeedCounts final : public engine::SuperSeedCounts {
 public:
  explicit SharedSuperSeedCounts(uint32_t num_pieces)
      : handed_(std::make_unique<std::atomic<uint32_t>[]>(num_pieces)) {}

  uint32_t Handed(uint32_t piece) const override {
    return handed_[piece].load(std::memory_order_relaxed);
  }
  void AddHanded(uint32_t piece) override {
    handed_[piece].fetch_add(1, std::memory_order_relaxed);
  }

 private:
  std::unique_ptr<std::atomic<uint32_t>[]> handed_;
};

}  // namespace torrenty::io
