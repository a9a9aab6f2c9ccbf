// engine::PieceMemory shared by the shard threads of one torrent, lock-free: a reservation is a
// compare-exchange loop on the bytes in use, taken once per piece buffer, never per block.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "engine/torrent/piece_memory.h"
#include "io/session/piece_pages.h"

namespace torrenty::io {

class SharedPieceMemory final : public engine::PieceMemory {
 public:
  explicit SharedPieceMemory(int64_t budget_bytes) : budget_(budget_bytes) {}

  int64_t budget() const { return budget_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  // The most ever reserved at once, for benchmarks and tests.
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }

  [[nodiscard]] bool TryReserve(int64_t bytes) override {
    int64_t used = used_.load(std::memory_order_relaxed);
    for (;;) {
      if (used != 0 && used + bytes > budget_) {
        wanted_.store(true, std::memory_order_relaxed);
        return false;
      }
      if (used_.compare_exchange_weak(used, used + bytes, std::memory_order_acq_rel)) {
        wanted_.store(false, std::memory_order_relaxed);
        int64_t peak = peak_.load(std::memory_order_relaxed);
        while (used + bytes > peak &&
               !peak_.compare_exchange_weak(peak, used + bytes, std::memory_order_relaxed)) {
        }
        return true;
      }
    }
  }
  void Release(int64_t bytes) override { used_.fetch_sub(bytes, std::memory_order_acq_rel); }
  bool wanted() const override { return wanted_.load(std::memory_order_relaxed); }
  [[nodiscard]] engine::PieceBuffer Allocate(size_t capacity) override {
    return AllocatePieceBuffer(capacity);
  }

 private:
  const int64_t budget_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<bool> wanted_{false};
};

}  // namespace torrenty::io
