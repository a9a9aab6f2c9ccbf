// The bytes of one piece, in one aligned allocation that has exactly one owner at a time and moves
// between them: the engine while blocks arrive, then the hash job, then the write operation, then
// the engine again, which recycles it. Nothing outside the current owner holds a pointer into it,
// so a worker thread never reads memory another thread may free, and an engine can be dropped
// while its pieces are still being hashed or written.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "absl/types/span.h"

namespace torrenty::engine {

class PieceBuffer {
 public:
  // O_DIRECT writes need the address (and the length of every aligned slice) on this boundary.
  static constexpr size_t kAlignment = 4096;

  PieceBuffer() = default;
  PieceBuffer(PieceBuffer&& other) noexcept
      : data_(std::move(other.data_)),
        capacity_(std::exchange(other.capacity_, 0)),
        size_(std::exchange(other.size_, 0)) {}
  PieceBuffer& operator=(PieceBuffer&& other) noexcept {
    data_ = std::move(other.data_);
    capacity_ = std::exchange(other.capacity_, 0);
    size_ = std::exchange(other.size_, 0);
    return *this;
  }
  // `capacity` bytes, uninitialised; size() starts equal to it.
  [[nodiscard]] static PieceBuffer Allocate(size_t capacity) {
    PieceBuffer b;
    b.data_.reset(static_cast<uint8_t*>(::operator new[](capacity, std::align_val_t(kAlignment))));
    b.capacity_ = capacity;
    b.size_ = capacity;
    return b;
  }

  bool empty() const { return data_ == nullptr; }
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t capacity() const { return capacity_; }
  // The piece's bytes: a recycled buffer holds pieces of any length up to its capacity (the last
  // piece of a torrent is shorter).
  size_t size() const { return size_; }
  void set_size(size_t size) { size_ = size <= capacity_ ? size : capacity_; }
  absl::Span<const uint8_t> bytes() const { return absl::MakeConstSpan(data_.get(), size_); }
  absl::Span<uint8_t> mutable_bytes() { return absl::MakeSpan(data_.get(), size_); }

 private:
  struct Delete {
    void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(kAlignment)); }
  };
  std::unique_ptr<uint8_t[], Delete> data_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

}  // namespace torrenty::engine
