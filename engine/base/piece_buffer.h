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

namespace piece_buffer_internal {
using Release = void (*)(uint8_t* data, size_t capacity);
struct Delete {
  Release release = nullptr;
  size_t capacity = 0;
  void operator()(uint8_t* p) const { release(p, capacity); }
};
}  // namespace piece_buffer_internal

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
    return Adopt(static_cast<uint8_t*>(::operator new[](capacity, std::align_val_t(kAlignment))),
                 capacity, &FreeAligned);
  }
  // Takes memory that another allocator provided (io/ maps piece buffers itself, see
  // io/session/piece_pages.h); `release(data, capacity)` gives it back when the buffer dies.
  using Release = piece_buffer_internal::Release;
  [[nodiscard]] static PieceBuffer Adopt(uint8_t* data, size_t capacity, Release release) {
    PieceBuffer b;
    b.data_ = std::unique_ptr<uint8_t[], Delete>(data, Delete{release, capacity});
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
  static void FreeAligned(uint8_t* p, size_t /*capacity*/) {
    ::operator delete[](p, std::align_val_t(kAlignment));
  }
  using Delete = piece_buffer_internal::Delete;
  std::unique_ptr<uint8_t[], Delete> data_;
  size_t capacity_ = 0;
  size_t size_ = 0;
};

}  // namespace torrenty::engine
