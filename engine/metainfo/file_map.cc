// Binary search over file start offsets to split torrent byte ranges into file slices.
#include "engine/metainfo/file_map.h"

#include <algorithm>

namespace torrenty::engine {

FileMap::FileMap(const Metainfo& metainfo)
    : total_length_(metainfo.total_length), piece_length_(metainfo.piece_length) {
  spans_.reserve(metainfo.files.size());
  for (size_t i = 0; i < metainfo.files.size(); ++i) {
    const FileEntry& f = metainfo.files[i];
    if (f.length > 0) spans_.push_back({f.offset, f.length, static_cast<uint32_t>(i), f.pad});
  }
}

void FileMap::Map(int64_t torrent_offset, int64_t length, std::vector<FileSlice>* out) const {
  if (torrent_offset < 0 || length <= 0 || torrent_offset >= total_length_) return;
  // Clamp before adding so hostile offsets from the wire cannot overflow.
  const int64_t end = torrent_offset + std::min(length, total_length_ - torrent_offset);
  // First span whose start is > torrent_offset; the one before it contains the offset.
  auto it = std::upper_bound(spans_.begin(), spans_.end(), torrent_offset,
                             [](int64_t off, const Span& s) { return off < s.offset; });
  if (it == spans_.begin()) return;  // unreachable for a consistent Metainfo
  --it;
  int64_t pos = torrent_offset;
  for (; it != spans_.end() && pos < end; ++it) {
    const int64_t file_offset = pos - it->offset;
    const int64_t slice_len = std::min(it->length - file_offset, end - pos);
    if (slice_len <= 0) continue;
    out->push_back(FileSlice{.file_index = it->file_index,
                             .file_offset = file_offset,
                             .length = slice_len,
                             .range_offset = pos - torrent_offset,
                             .pad = it->pad});
    pos += slice_len;
  }
}

void FileMap::MapPiece(uint32_t piece, std::vector<FileSlice>* out) const {
  if (piece_length_ <= 0) return;
  Map(static_cast<int64_t>(piece) * piece_length_, piece_length_, out);
}

namespace {

// Calls fn(piece) for every piece holding bytes of file `f` (none for an empty file).
template <typename Fn>
void ForEachPieceOf(const Metainfo& meta, const FileEntry& f, Fn fn) {
  if (f.length <= 0 || meta.piece_length <= 0) return;
  const int64_t first = f.offset / meta.piece_length;
  const int64_t last = std::min<int64_t>((f.offset + f.length - 1) / meta.piece_length,
                                         int64_t{meta.num_pieces()} - 1);
  for (int64_t p = first; p <= last; ++p) fn(static_cast<uint32_t>(p));
}

}  // namespace

Bitfield WantedPieces(const Metainfo& meta, const std::vector<bool>& files_wanted) {
  Bitfield wanted(meta.num_pieces());
  for (size_t i = 0; i < meta.files.size(); ++i) {
    const FileEntry& f = meta.files[i];
    if (f.pad || (i < files_wanted.size() && !files_wanted[i])) continue;
    ForEachPieceOf(meta, f, [&](uint32_t p) { wanted.Set(p); });
  }
  return wanted;
}

std::vector<bool> FilesTouched(const Metainfo& meta, const Bitfield& pieces) {
  std::vector<bool> touched(meta.files.size(), false);
  for (size_t i = 0; i < meta.files.size(); ++i) {
    const FileEntry& f = meta.files[i];
    if (f.pad) continue;
    ForEachPieceOf(meta, f, [&](uint32_t p) {
      if (pieces.Get(p)) touched[i] = true;
    });
  }
  return touched;
}

int64_t PieceBytes(const Metainfo& meta, const Bitfield& pieces) {
  const uint32_t n = std::min(pieces.size(), meta.num_pieces());
  if (n == 0 || pieces.none()) return 0;
  int64_t bytes = 0;
  for (uint32_t p = 0; p < n; ++p) {
    if (pieces.Get(p)) bytes += meta.PieceSize(p);
  }
  return bytes;
}

}  // namespace torrenty::engine
