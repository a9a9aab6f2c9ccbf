// Maps byte ranges of a torrent's concatenated data (pieces, blocks) onto the files
// that hold them; a single piece may straddle several files.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/base/bitfield.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::engine {

struct FileSlice {
  uint32_t file_index = 0;
  int64_t file_offset = 0;
  int64_t length = 0;
  int64_t range_offset = 0;  // offset of this slice inside the mapped range
  // A pad file's bytes (BEP 47): zeros that are never written, read from disk or requested.
  bool pad = false;
};

class FileMap {
 public:
  explicit FileMap(const Metainfo& metainfo);

  // Appends slices covering [torrent_offset, torrent_offset + length) in order. Zero-length
  // files never appear. The part of the range outside the torrent's data, if any, is
  // not covered, so callers can detect it by summing slice lengths.
  void Map(int64_t torrent_offset, int64_t length, std::vector<FileSlice>* out) const;
  // Appends the slices of a whole piece; nothing for an out-of-range piece.
  void MapPiece(uint32_t piece, std::vector<FileSlice>* out) const;

  int64_t total_length() const { return total_length_; }

 private:
  struct Span {
    int64_t offset;
    int64_t length;
    uint32_t file_index;
    bool pad;
  };
  // Only non-empty files, sorted by offset, so a binary search lands on a unique file.
  std::vector<Span> spans_;
  int64_t total_length_ = 0;
  int64_t piece_length_ = 0;
};

// File selection. The pieces that hold bytes of a wanted file: a piece is wanted when it touches
// any wanted non-pad file, so a piece shared with an unwanted file is still fetched (and writes
// its bytes into that file too). `files_wanted` may be shorter than the file list; missing
// entries count as wanted.
Bitfield WantedPieces(const Metainfo& meta, const std::vector<bool>& files_wanted);
// The non-pad files that hold bytes of any piece in `pieces`: the files a download of those
// pieces writes to.
std::vector<bool> FilesTouched(const Metainfo& meta, const Bitfield& pieces);
// Bytes of the pieces in `pieces` (the last piece may be short).
int64_t PieceBytes(const Metainfo& meta, const Bitfield& pieces);

}  // namespace torrenty::engine
