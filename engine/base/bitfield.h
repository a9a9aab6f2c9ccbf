// A fixed-size bit set in BEP 3 wire order: piece 0 is the high bit of byte 0.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace torrenty::engine {

class Bitfield {
 public:
  Bitfield() = default;
  explicit Bitfield(uint32_t size) : size_(size), bytes_((size + 7) / 8, 0) {}

  uint32_t size() const { return size_; }
  uint32_t count() const { return count_; }
  bool all() const { return count_ == size_; }
  bool none() const { return count_ == 0; }

  bool Get(uint32_t i) const { return i < size_ && (bytes_[i >> 3] >> (7 - (i & 7))) & 1; }
  void Set(uint32_t i) {
    if (i >= size_ || Get(i)) return;
    bytes_[i >> 3] |= static_cast<uint8_t>(0x80u >> (i & 7));
    ++count_;
  }
  void Clear(uint32_t i) {
    if (i >= size_ || !Get(i)) return;
    bytes_[i >> 3] &= static_cast<uint8_t>(~(0x80u >> (i & 7)));
    --count_;
  }
  void SetAll() {
    for (uint32_t i = 0; i < size_; ++i) Set(i);
  }

  // BEP 3: a bitfield has exactly ceil(size/8) bytes and its spare bits are zero.
  // Returns false (and leaves *this unchanged) if `wire` breaks either rule.
  bool AssignFromWire(absl::Span<const uint8_t> wire) {
    if (wire.size() != bytes_.size()) return false;
    if (size_ % 8 != 0 && !wire.empty()) {
      const uint8_t spare_mask = static_cast<uint8_t>(0xFFu >> (size_ % 8));
      if (wire.back() & spare_mask) return false;
    }
    bytes_.assign(wire.begin(), wire.end());
    count_ = 0;
    for (uint8_t b : bytes_) count_ += static_cast<uint32_t>(__builtin_popcount(b));
    return true;
  }

  absl::Span<const uint8_t> bytes() const { return bytes_; }

 private:
  uint32_t size_ = 0;
  uint32_t count_ = 0;
  std::vector<uint8_t> bytes_;
};

}  // namespace torrenty::engine
