#include "io/session/read_cache.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace torrenty::io {

ReadCache::ReadCache(int64_t budget_bytes, size_t min_entries, LoadFn load, AnswerFn answer)
    : budget_(budget_bytes),
      min_entries_(min_entries),
      load_(std::move(load)),
      answer_(std::move(answer)) {}

bool ReadCache::Serve(const BlockRead& r, int64_t piece_length, int64_t piece_size) {
  const int64_t extent_bytes = std::min<int64_t>(piece_length, kReadExtentMax);
  const uint32_t extent = static_cast<uint32_t>(r.begin / extent_bytes);
  for (Entry& e : entries_) {
    if (e.id != r.id || e.piece != r.piece || e.extent != extent) continue;
    e.last_used = ++clock_;
    if (e.loading) {
      e.waiters.push_back({r.peer, r.begin, r.length});
    } else {
      Answer(e, {r.peer, r.begin, r.length}, absl::OkStatus());
    }
    return true;
  }
  const int64_t offset = int64_t{extent} * extent_bytes;
  const size_t need = static_cast<size_t>(
      std::min<int64_t>(piece_size - offset, extent_bytes + engine::kBlockSize));
  // A new entry while under the budget (or the floor), else the least recently used idle one.
  size_t slot = entries_.size();
  if (entries_.size() >= min_entries_ && bytes_ + static_cast<int64_t>(need) > budget_) {
    for (size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].loading || entries_[i].pins > 0) continue;
      if (slot == entries_.size() || entries_[i].last_used < entries_[slot].last_used) slot = i;
    }
    if (slot == entries_.size()) return false;
  } else {
    entries_.emplace_back();
  }
  Entry& e = entries_[slot];
  if (e.capacity < need) {
    bytes_ += static_cast<int64_t>(need) - static_cast<int64_t>(e.capacity);
    e.data.reset(new uint8_t[need]);
    e.capacity = need;
  }
  e.id = r.id;
  e.piece = r.piece;
  e.extent = extent;
  e.extent_bytes = extent_bytes;
  e.size = need;
  e.loading = true;
  e.last_used = ++clock_;
  e.waiters.clear();
  e.waiters.push_back({r.peer, r.begin, r.length});
  absl::Status st = load_(r.id, r.piece, offset, absl::MakeSpan(e.data.get(), e.size), slot);
  if (absl::IsResourceExhausted(st)) {
    e.loading = false;
    e.piece = UINT32_MAX;
    e.waiters.clear();
    return false;
  }
  if (!st.ok()) Loaded(slot, st);
  return true;
}

void ReadCache::Loaded(size_t slot, const absl::Status& status) {
  Entry& e = entries_[slot];
  e.loading = false;
  std::vector<Waiter> waiters;
  waiters.swap(e.waiters);
  for (const Waiter& w : waiters) Answer(e, w, status);
  if (!status.ok()) e.piece = UINT32_MAX;
}

void ReadCache::Release(uint64_t pin) {
  if (pin == 0 || pin > entries_.size() || entries_[pin - 1].pins == 0) return;
  if (--entries_[pin - 1].pins == 0) --pinned_entries_;
}

size_t ReadCache::pinned() const {
  size_t n = 0;
  for (const Entry& e : entries_) n += e.pins;
  return n;
}

void ReadCache::Forget(TorrentId id) {
  for (Entry& e : entries_) {
    if (e.id == id && !e.loading) e.piece = UINT32_MAX;
  }
}

// The engine only asks for blocks of at most kBlockSize inside the piece, which always lie in
// the entry of the extent they start in; the check keeps a broken caller from reading past it.
void ReadCache::Answer(Entry& e, const Waiter& w, absl::Status st) {
  absl::Span<const uint8_t> data;
  uint64_t pin = 0;
  if (st.ok()) {
    const int64_t at = int64_t{w.begin} - int64_t{e.extent} * e.extent_bytes;
    if (at < 0 || at + int64_t{w.length} > static_cast<int64_t>(e.size)) {
      st = absl::InternalError(absl::StrCat("block [", w.begin, ", +", w.length, ") of piece ",
                                            e.piece, " is outside its cached extent"));
    } else {
      data = absl::MakeConstSpan(e.data.get() + at, w.length);
      if (e.pins > 0 || pinned_entries_ * 2 < std::max(entries_.size(), min_entries_)) {
        if (e.pins++ == 0) ++pinned_entries_;
        pin = static_cast<uint64_t>(&e - entries_.data()) + 1;
      }
    }
  }
  answer_(BlockRead{e.id, w.peer, e.piece, w.begin, w.length}, data, st, pin);
}

}  // namespace torrenty::io
