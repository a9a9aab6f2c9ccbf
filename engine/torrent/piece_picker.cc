// Rarest-first piece picker over availability buckets; see piece_picker.h for the layout.
#include "engine/torrent/piece_picker.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace torrenty::engine {
namespace {

// Calls fn(i) for every set bit i < limit of a BEP 3 ordered bitfield, a 64-bit word at a time.
template <typename Fn>
void ForEachSetBit(const Bitfield& bits, uint32_t limit, Fn fn) {
  const absl::Span<const uint8_t> bytes = bits.bytes();
  const uint32_t n = std::min(limit, bits.size());
  const size_t num_bytes = (size_t{n} + 7) / 8;
  size_t byte = 0;
  for (; byte + 8 <= num_bytes; byte += 8) {
    uint64_t word;
    std::memcpy(&word, bytes.data() + byte, 8);
    word = __builtin_bswap64(word);  // piece `byte * 8` becomes the top bit
    while (word != 0) {
      const uint32_t i =
          static_cast<uint32_t>(byte * 8) + static_cast<uint32_t>(__builtin_clzll(word));
      if (i >= n) return;
      fn(i);
      word &= ~(uint64_t{1} << (63 - (i & 63)));
    }
  }
  for (; byte < num_bytes; ++byte) {
    uint32_t b = bytes[byte];
    while (b != 0) {
      const uint32_t i =
          static_cast<uint32_t>(byte * 8) + static_cast<uint32_t>(__builtin_clz(b) - 24);
      if (i >= n) return;
      fn(i);
      b &= ~(0x80u >> (i & 7));
    }
  }
}

// How far past the rarest candidate Pick looks, within its bucket, for a piece in an extent
// nobody is fetching from: a few probes find one while most extents are free, and the bound keeps
// Pick O(1) once they are all taken.
constexpr uint32_t kFreeExtentProbes = 32;

constexpr int64_t kExtentBytes = int64_t{4} << 20;
constexpr uint32_t kExtentPiecesMax = 64;
constexpr uint32_t kExtentsMin = 32;

}  // namespace

uint32_t PiecesPerExtent(int64_t piece_length, uint32_t num_pieces) {
  if (piece_length <= 0) return 1;
  const int64_t pieces = std::min<int64_t>(
      {kExtentBytes / piece_length, kExtentPiecesMax, int64_t{num_pieces} / kExtentsMin});
  return std::bit_floor(static_cast<uint32_t>(std::max<int64_t>(pieces, 1)));
}

PiecePicker::PiecePicker(uint32_t num_pieces, uint64_t seed, uint32_t pieces_per_extent)
    : num_pieces_(num_pieces),
      avail_(num_pieces, 0),
      state_(num_pieces, 0),
      pos_(num_pieces),
      order_(num_pieces),
      bucket_start_{0, num_pieces},
      extent_shift_(static_cast<uint32_t>(
          std::countr_zero(std::bit_floor(std::max<uint32_t>(pieces_per_extent, 1))))),
      pieces_per_extent_(uint32_t{1} << extent_shift_),
      extent_busy_((num_pieces >> extent_shift_) + 1, 0),
      rng_(seed) {
  for (uint32_t i = 0; i < num_pieces; ++i) order_[i] = i;
  // Fisher-Yates with our own RNG so the initial tie-break order is fixed by the seed.
  for (uint32_t i = num_pieces; i > 1; --i) std::swap(order_[i - 1], order_[RandomBelow(i)]);
  for (uint32_t i = 0; i < num_pieces; ++i) pos_[order_[i]] = i;
}

uint32_t PiecePicker::RandomBelow(uint32_t n) {
  // Lemire's multiply-shift; the bias for n < 2^32 from a 64-bit draw is negligible here.
  return static_cast<uint32_t>((static_cast<unsigned __int128>(rng_()) * n) >> 64);
}

void PiecePicker::SwapSlots(uint32_t a, uint32_t b) {
  if (a == b) return;
  std::swap(order_[a], order_[b]);
  pos_[order_[a]] = a;
  pos_[order_[b]] = b;
}

void PiecePicker::ShuffleIntoBucket(uint32_t pos, uint32_t avail) {
  const uint32_t begin = bucket_start_[avail];
  const uint32_t size = bucket_start_[avail + 1] - begin;
  SwapSlots(pos, begin + RandomBelow(size));
}

void PiecePicker::EnsureBucket(uint32_t avail) {
  while (bucket_start_.size() < size_t{avail} + 2) bucket_start_.push_back(bucket_start_.back());
}

void PiecePicker::Increment(uint32_t piece) {
  const uint32_t a = avail_[piece]++;
  const uint32_t pos = pos_[piece];
  if (pos == kNotInOrder) return;
  EnsureBucket(a + 1);
  // Move to the last slot of bucket a, then shift the boundary so that slot opens bucket a+1.
  const uint32_t edge = bucket_start_[a + 1] - 1;
  SwapSlots(pos, edge);
  --bucket_start_[a + 1];
  ShuffleIntoBucket(edge, a + 1);
}

void PiecePicker::Decrement(uint32_t piece) {
  if (avail_[piece] == 0) return;  // unmatched remove: keep the counter sane
  const uint32_t a = avail_[piece]--;
  const uint32_t pos = pos_[piece];
  if (pos == kNotInOrder) return;
  const uint32_t edge = bucket_start_[a];
  SwapSlots(pos, edge);
  ++bucket_start_[a];
  ShuffleIntoBucket(edge, a - 1);
}

void PiecePicker::Insert(uint32_t piece) {
  const uint32_t a = avail_[piece];
  EnsureBucket(a);
  // Open a hole at the end and bubble it down to the end of bucket a by moving the first
  // piece of each higher bucket to that bucket's end: O(number of levels), not O(pieces).
  uint32_t hole = static_cast<uint32_t>(order_.size());
  order_.push_back(piece);
  const uint32_t top = static_cast<uint32_t>(bucket_start_.size()) - 1;
  ++bucket_start_[top];
  for (uint32_t b = top - 1; b > a; --b) {
    const uint32_t first = bucket_start_[b];
    if (first != hole) {
      order_[hole] = order_[first];
      pos_[order_[hole]] = hole;
    }
    hole = first;
    ++bucket_start_[b];
  }
  order_[hole] = piece;
  pos_[piece] = hole;
  ShuffleIntoBucket(hole, a);
}

void PiecePicker::Erase(uint32_t piece) {
  uint32_t hole = pos_[piece];
  const uint32_t a = avail_[piece];
  pos_[piece] = kNotInOrder;
  // Mirror of Insert: fill the hole from the end of its bucket, then pull each higher
  // bucket's last piece to its front, leaving the hole at the very end.
  const uint32_t top = static_cast<uint32_t>(bucket_start_.size()) - 1;
  for (uint32_t b = a; b < top; ++b) {
    const uint32_t last = bucket_start_[b + 1] - 1;
    if (last != hole) {
      order_[hole] = order_[last];
      pos_[order_[hole]] = hole;
    }
    hole = last;
    --bucket_start_[b + 1];
  }
  order_.pop_back();
}

void PiecePicker::AddPeer(const Bitfield& has) {
  ForEachSetBit(has, num_pieces_, [this](uint32_t i) { Increment(i); });
}

void PiecePicker::RemovePeer(const Bitfield& has) {
  ForEachSetBit(has, num_pieces_, [this](uint32_t i) { Decrement(i); });
}

void PiecePicker::AddHave(uint32_t piece) {
  if (piece < num_pieces_) Increment(piece);
}

void PiecePicker::RemoveHave(uint32_t piece) {
  if (piece < num_pieces_) Decrement(piece);
}

void PiecePicker::SetState(uint32_t piece, uint8_t state) {
  const uint8_t old = state_[piece];
  if (old == state) return;
  if (old == 0) Erase(piece);
  state_[piece] = state;
  if (state == 0) Insert(piece);
  if (Busy(old) != Busy(state)) {
    uint32_t& busy = extent_busy_[piece >> extent_shift_];
    busy = Busy(state) ? busy + 1 : busy - 1;
  }
  if ((old & kHad) != (state & kHad)) {
    num_have_ = (state & kHad) ? num_have_ + 1 : num_have_ - 1;
  }
}

void PiecePicker::SetWeHave(uint32_t piece) {
  if (piece < num_pieces_) SetState(piece, state_[piece] | kHad);
}

void PiecePicker::SetWeLack(uint32_t piece) {
  if (piece < num_pieces_) SetState(piece, state_[piece] & static_cast<uint8_t>(~kHad));
}

void PiecePicker::SetInProgress(uint32_t piece, bool in_progress) {
  if (piece >= num_pieces_) return;
  SetState(piece, in_progress ? state_[piece] | kInProgress
                              : state_[piece] & static_cast<uint8_t>(~kInProgress));
}

void PiecePicker::SetWanted(uint32_t piece, bool wanted) {
  if (piece >= num_pieces_) return;
  SetState(piece,
           wanted ? state_[piece] & static_cast<uint8_t>(~kUnwanted) : state_[piece] | kUnwanted);
}

std::optional<uint32_t> PiecePicker::FirstInExtent(uint32_t e, uint32_t avail,
                                                   const Bitfield& peer_has) const {
  const uint32_t begin = e << extent_shift_;
  const uint32_t end = std::min(num_pieces_, begin + pieces_per_extent_);
  for (uint32_t p = begin; p < end; ++p) {
    if (state_[p] == 0 && avail_[p] == avail && peer_has.Get(p)) return p;
  }
  return std::nullopt;
}

std::optional<uint32_t> PiecePicker::Pick(const Bitfield& peer_has, uint32_t peer_extent) {
  if (peer_has.none() || order_.empty()) return std::nullopt;
  uint32_t best = kNotInOrder;  // slot in order_ of the rarest piece the peer has

  // The walk is short when the peer has much of what we need, but a peer holding only common
  // pieces would make it O(pieces). So walk a bounded prefix, then fall back to the lowest
  // order_ slot among the peer's set bits, which is the same answer found in O(pieces / 64 +
  // peer's pieces).
  const size_t walk_limit = std::min(order_.size(), size_t{64} + order_.size() / 32);
  for (size_t i = 0; i < walk_limit; ++i) {
    if (peer_has.Get(order_[i])) {
      best = static_cast<uint32_t>(i);
      break;
    }
  }
  if (best == kNotInOrder && walk_limit < order_.size()) {
    ForEachSetBit(peer_has, num_pieces_, [&](uint32_t i) { best = std::min(best, pos_[i]); });
  }
  if (best == kNotInOrder) return std::nullopt;
  const uint32_t rarest = order_[best];
  if (pieces_per_extent_ == 1) return rarest;
  const uint32_t avail = avail_[rarest];
  if (peer_extent < extent_busy_.size()) {
    if (std::optional<uint32_t> next = FirstInExtent(peer_extent, avail, peer_has)) return next;
  }
  const uint32_t probe_end = std::min(bucket_start_[avail + 1], best + kFreeExtentProbes);
  for (uint32_t i = best; i < probe_end; ++i) {
    const uint32_t piece = order_[i];
    if (extent_busy_[piece >> extent_shift_] == 0 && peer_has.Get(piece)) {
      return FirstInExtent(piece >> extent_shift_, avail, peer_has);
    }
  }
  return FirstInExtent(rarest >> extent_shift_, avail, peer_has);
}

uint32_t PiecePicker::Availability(uint32_t piece) const {
  return piece < num_pieces_ ? avail_[piece] : 0;
}

bool PiecePicker::InvariantsHold() const {
  if (bucket_start_.empty() || bucket_start_.front() != 0 ||
      bucket_start_.back() != order_.size()) {
    return false;
  }
  for (size_t b = 0; b + 1 < bucket_start_.size(); ++b) {
    if (bucket_start_[b] > bucket_start_[b + 1]) return false;
    for (uint32_t i = bucket_start_[b]; i < bucket_start_[b + 1]; ++i) {
      const uint32_t piece = order_[i];
      if (piece >= num_pieces_ || pos_[piece] != i || avail_[piece] != b || state_[piece] != 0) {
        return false;
      }
    }
  }
  uint32_t had = 0;
  size_t pickable = 0;
  for (uint32_t piece = 0; piece < num_pieces_; ++piece) {
    had += (state_[piece] & kHad) ? 1 : 0;
    if (state_[piece] == 0) ++pickable;
    if ((state_[piece] == 0) != (pos_[piece] != kNotInOrder)) return false;
  }
  std::vector<uint32_t> busy(extent_busy_.size(), 0);
  for (uint32_t piece = 0; piece < num_pieces_; ++piece) {
    if (Busy(state_[piece])) ++busy[piece >> extent_shift_];
  }
  return had == num_have_ && pickable == order_.size() && busy == extent_busy_;
}

}  // namespace torrenty::engine
