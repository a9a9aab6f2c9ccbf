// The share of the session's piece memory that connections' receive buffers may grow into, so
// that piece buffers and receive buffers together stay within --piece-memory however many peers
// are busy. A buffer's first allocation (room for a handshake, a block, or the torrent's bitfield)
// is always granted: a connection cannot work without it. Growth beyond it, which only pays for
// fewer and larger reads, is granted while the share lasts. Lock-free; taken a few times per
// connection (each doubling), never per block.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace torrenty::io {

class ReceiveBufferBudget {
 public:
  explicit ReceiveBufferBudget(int64_t budget_bytes) : budget_(budget_bytes) {}

  // The part of a session's piece memory set aside for receive buffers: an eighth, which holds 16
  // fully grown 256 KiB buffers under the default 32 MiB.
  static int64_t ShareOf(int64_t piece_memory_bytes) { return piece_memory_bytes / 8; }

  int64_t budget() const { return budget_; }
  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  // The most ever held at once, for benchmarks and tests.
  int64_t peak() const { return peak_.load(std::memory_order_relaxed); }

  // A connection's first buffer: granted even beyond the budget.
  void Charge(int64_t bytes) {
    NotePeak(used_.fetch_add(bytes, std::memory_order_acq_rel) + bytes);
  }
  // Growth: granted only within the budget.
  [[nodiscard]] bool TryGrow(int64_t bytes) {
    int64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (used + bytes > budget_) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_acq_rel));
    NotePeak(used + bytes);
    return true;
  }
  void Release(int64_t bytes) { used_.fetch_sub(bytes, std::memory_order_acq_rel); }

 private:
  void NotePeak(int64_t now) {
    int64_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }

  const int64_t budget_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
};

}  // namespace torrenty::io
