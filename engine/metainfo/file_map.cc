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

}  // namespace torrenty::engine
