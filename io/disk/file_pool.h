// A cache of open file descriptors with a cap, like libtorrent's file pool: a torrent's files are
// opened when an operation reaches them and closed again when the cap needs room or the torrent
// has nothing left to do, so idle torrents hold no descriptor. One pool belongs to one thread (a
// shard), so lookups take no lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "io/metrics/instruments.h"

namespace torrenty::io {

class FilePool {
 public:
  // An open descriptor, pinned while a ring operation uses it: a pinned descriptor is never
  // closed, because the kernel looks the number up when the operation is submitted (the ring
  // batches submissions), and a closed number may meanwhile name another file.
  struct Entry;

  // Someone waiting for room: called (once, then forgotten) when a descriptor is unpinned.
  struct Waiter {
    void (*fn)(void* ctx) = nullptr;
    void* ctx = nullptr;
    Waiter* next = nullptr;
    bool queued = false;
  };

  // `cap` open descriptors at most, pinned or not. 0 counts as 1.
  explicit FilePool(size_t cap);
  ~FilePool();  // every entry must be released
  FilePool(const FilePool&) = delete;
  FilePool& operator=(const FilePool&) = delete;

  // The pinned descriptor of (owner, file, direct): the cached one, or a new one from `open`
  // (which returns an fd the pool then owns). When the pool is full the least recently used
  // unpinned descriptor is closed first; ResourceExhausted when every descriptor is pinned (wait
  // with AddWaiter, then try again). `open`'s error is returned as is.
  using OpenFn = absl::FunctionRef<absl::StatusOr<int>()>;
  [[nodiscard]] absl::StatusOr<Entry*> Acquire(const void* owner, uint32_t file, bool direct,
                                               OpenFn open);
  void Release(Entry* e);
  void AddWaiter(Waiter* w);
  void RemoveWaiter(Waiter* w);
  static int fd(const Entry* e);
  // Closes every descriptor of `owner` (none may be pinned): its torrent has gone idle or away.
  void CloseOwner(const void* owner);

  size_t open() const { return map_.size(); }
  size_t cap() const { return cap_; }
  uint64_t evictions() const { return evictions_; }
  // Optional: the number of open descriptors and a count of evictions (closed to make room).
  void set_metrics(metrics::ShardGauge* open_files, metrics::ShardCounter* evictions) {
    open_files_ = open_files;
    evictions_counter_ = evictions;
    if (open_files_ != nullptr) open_files_->Add(static_cast<int64_t>(map_.size()));
  }

 private:
  struct Key {
    const void* owner;
    uint32_t file;
    bool direct;
    bool operator==(const Key& o) const {
      return owner == o.owner && file == o.file && direct == o.direct;
    }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.owner, k.file, k.direct);
    }
  };

  void Unlink(Entry* e);
  void PushFront(Entry* e);
  void Close(Entry* e);
  // Closes the least recently used unpinned entry; false if every entry is pinned.
  bool EvictOne();

  size_t cap_;
  absl::flat_hash_map<Key, std::unique_ptr<Entry>> map_;
  // Most recently used first; the eviction scan starts at the tail.
  Entry* head_ = nullptr;
  Entry* tail_ = nullptr;
  Waiter* waiters_ = nullptr;  // FIFO
  Waiter* waiters_tail_ = nullptr;
  uint64_t evictions_ = 0;
  metrics::ShardGauge* open_files_ = nullptr;
  metrics::ShardCounter* evictions_counter_ = nullptr;
};

struct FilePool::Entry {
  Key key;
  int fd = -1;
  int pins = 0;
  Entry* prev = nullptr;
  Entry* next = nullptr;
};

inline int FilePool::fd(const Entry* e) { return e->fd; }

}  // namespace torrenty::io
