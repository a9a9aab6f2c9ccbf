// The serving cache of one shard, over all its torrents: a peer's block requests are answered
// from extents of pieces loaded with one ring read each. A piece up to kReadExtentMax is one
// entry; a larger one is cached in extents of kReadExtentMax (plus one block, so a request that
// crosses into the next extent is still one buffer), so what an entry costs does not depend on
// the piece length a torrent chooses. Entries are bounded by bytes, with a floor in entries.
// Answers lend the entry's memory (a pin) so that sockets send blocks from it without a copy;
// a pinned entry is never reused until every pin is released. At most half the entries are
// pinned at a time (past that an answer is not lent and the caller copies it), so a peer that
// stops reading cannot stall every other peer's reads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/torrent/torrent.h"
#include "io/session/session_torrent.h"

namespace torrenty::io {

inline constexpr int64_t kReadExtentMax = 4 << 20;

struct BlockRead {
  TorrentId id = 0;
  engine::PeerKey peer = 0;
  uint32_t piece = 0, begin = 0, length = 0;
};

class ReadCache {
 public:
  // Loads `buf` from byte `offset` of `piece`; completion comes back through Loaded(slot).
  // ResourceExhausted means "try later" (the disk queue is full).
  using LoadFn = std::function<absl::Status(TorrentId id, uint32_t piece, int64_t offset,
                                            absl::Span<uint8_t> buf, size_t slot)>;
  // A `pin` other than 0 lends `data` until Release(pin); with 0 it is valid only during the call.
  using AnswerFn = std::function<void(const BlockRead& r, absl::Span<const uint8_t> data,
                                      const absl::Status& status, uint64_t pin)>;

  ReadCache(int64_t budget_bytes, size_t min_entries, LoadFn load, AnswerFn answer);

  // Answers `r` now or when its extent is loaded; false when it could not even start (every
  // entry is loading or the disk queue is full): the caller keeps it and retries later.
  bool Serve(const BlockRead& r, int64_t piece_length, int64_t piece_size);
  void Loaded(size_t slot, const absl::Status& status);
  void Release(uint64_t pin);
  // Drops the torrent's entries that are not loading (its pieces may change or go away).
  void Forget(TorrentId id);
  int64_t bytes() const { return bytes_; }
  size_t pinned() const;

 private:
  struct Waiter {
    engine::PeerKey peer;
    uint32_t begin, length;
  };
  struct Entry {
    TorrentId id = 0;
    uint32_t piece = UINT32_MAX;
    uint32_t extent = 0;
    int64_t extent_bytes = 0;  // the torrent's extent length
    size_t size = 0;           // bytes loaded into data
    size_t capacity = 0;
    std::unique_ptr<uint8_t[]> data;
    bool loading = false;
    uint32_t pins = 0;  // answers whose bytes a send may still read
    uint64_t last_used = 0;
    std::vector<Waiter> waiters;
  };
  void Answer(Entry& e, const Waiter& w, absl::Status st);

  const int64_t budget_;
  const size_t min_entries_;
  LoadFn load_;
  AnswerFn answer_;
  std::vector<Entry> entries_;
  int64_t bytes_ = 0;
  size_t pinned_entries_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace torrenty::io
