// Fuzzes ParseMetainfo. A Metainfo that parses is trusted by the rest of the engine, so on
// success this checks what that trust relies on: the piece count matches the total length, file
// offsets are the running sum of lengths, no path component can escape the download directory
// (nor carries a control character, invalid UTF-8 or more than 255 bytes), no two created files
// share a path or are also a directory, symlinks take no bytes, the info-hash is the SHA-1 of the
// original info bytes, and FileMap covers exactly the requested range (clamped to the data) with
// slices that stay inside their files.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "engine/codec/bencode.h"
#include "engine/metainfo/file_map.h"
#include "engine/metainfo/metainfo.h"
#include "engine/base/sha1.h"
#include "engine/base/text_escape.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using torrenty::engine::FileMap;
using torrenty::engine::FileSlice;
using torrenty::engine::Metainfo;

// Deterministic ranges derived from the input, so a crash reproduces from the file alone.
class SplitMix {
 public:
  explicit SplitMix(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

void CheckMap(const Metainfo& m, const FileMap& map, int64_t offset, int64_t length) {
  std::vector<FileSlice> slices;
  map.Map(offset, length, &slices);
  int64_t expected = 0;
  if (offset >= 0 && length > 0 && offset < m.total_length) {
    expected = std::min(length, m.total_length - offset);
  }
  int64_t covered = 0;
  for (const FileSlice& s : slices) {
    FUZZ_CHECK(s.file_index < m.files.size());
    const auto& f = m.files[s.file_index];
    FUZZ_CHECK(s.length > 0);
    FUZZ_CHECK(s.file_offset >= 0);
    FUZZ_CHECK(s.file_offset <= f.length - s.length);
    FUZZ_CHECK(s.range_offset == covered);  // contiguous, in order
    FUZZ_CHECK(f.offset + s.file_offset == offset + s.range_offset);
    covered += s.length;
  }
  FUZZ_CHECK(covered == expected);
}

// What CleanPathComponent promises for every name and component.
void CheckComponent(const std::string& c) {
  FUZZ_CHECK(torrenty::engine::IsSafePathComponent(c));
  FUZZ_CHECK(c.size() <= torrenty::engine::kMaxComponentLength);
  FUZZ_CHECK(torrenty::engine::IsValidUtf8(c));
  FUZZ_CHECK(torrenty::engine::EscapeForTerminal(c) == c);
  FUZZ_CHECK(c.find('\\') == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<Metainfo> parsed = torrenty::engine::ParseMetainfo(input);
  if (!parsed.ok()) return 0;
  const Metainfo& m = *parsed;

  CheckComponent(m.name);
  FUZZ_CHECK(m.piece_length > 0 && m.piece_length <= torrenty::engine::kMaxPieceLength);
  FUZZ_CHECK(m.total_length > 0);
  FUZZ_CHECK(m.payload_length() > 0 && m.payload_length() <= m.total_length);
  const int64_t pieces = (m.total_length - 1) / m.piece_length + 1;
  FUZZ_CHECK(static_cast<int64_t>(m.piece_hashes.size()) == pieces);
  FUZZ_CHECK(pieces <= torrenty::engine::kMaxPieces);
  int64_t piece_sum = 0;
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    const uint32_t ps = m.PieceSize(p);
    FUZZ_CHECK(ps > 0 && ps <= m.piece_length);
    if (p + 1 < m.num_pieces()) FUZZ_CHECK(ps == m.piece_length);
    piece_sum += ps;
  }
  FUZZ_CHECK(piece_sum == m.total_length);
  FUZZ_CHECK(m.PieceSize(m.num_pieces()) == 0);

  FUZZ_CHECK(!m.files.empty());
  FUZZ_CHECK(m.files.size() <= torrenty::engine::kMaxFiles);
  if (!m.multi_file) FUZZ_CHECK(m.files.size() == 1 && m.files[0].path.empty());
  int64_t offset = 0;
  absl::flat_hash_set<std::string> created;
  absl::flat_hash_set<std::string> dirs;
  for (size_t i = 0; i < m.files.size(); ++i) {
    const auto& f = m.files[i];
    FUZZ_CHECK(f.length >= 0);
    FUZZ_CHECK(f.offset == offset);
    FUZZ_CHECK(!f.is_symlink() || (f.length == 0 && !f.pad));
    for (const std::string& c : f.symlink_path) CheckComponent(c);
    offset += f.length;
    if (m.multi_file) {
      FUZZ_CHECK(!f.path.empty());
      size_t path_len = m.name.size();
      std::string joined;
      for (size_t c = 0; c < f.path.size(); ++c) {
        CheckComponent(f.path[c]);
        path_len += 1 + f.path[c].size();
        if (c > 0) joined.push_back('/');
        joined += f.path[c];
        if (!f.pad && c + 1 < f.path.size()) dirs.insert(joined);
      }
      FUZZ_CHECK(m.RelativePath(i).size() == path_len);
      if (!f.pad) {
        FUZZ_CHECK(path_len <= torrenty::engine::kMaxPathLength);
        FUZZ_CHECK(created.insert(joined).second);
      }
    }
  }
  for (const std::string& d : dirs) FUZZ_CHECK(!created.contains(d));
  FUZZ_CHECK(offset == m.total_length);
  for (const auto& tier : m.trackers) {
    FUZZ_CHECK(!tier.empty());
    for (const std::string& url : tier) FUZZ_CHECK(!url.empty());
  }
  for (const auto* seeds : {&m.web_seeds, &m.http_seeds}) {
    for (const std::string& url : *seeds) FUZZ_CHECK(!url.empty());
  }

  // The info-hash covers the info dict's bytes exactly as they appear in the file.
  torrenty::engine::bencode::DecodeLimits limits;
  limits.max_items = 6 * torrenty::engine::kMaxFiles;  // as ParseMetainfo does
  limits.allow_trailing_bytes = true;
  limits.allow_duplicate_keys = true;
  absl::StatusOr<torrenty::engine::bencode::Value> root =
      torrenty::engine::bencode::Decode(input, limits);
  FUZZ_CHECK(root.ok());
  const auto* info = root->Find("info");
  FUZZ_CHECK(info != nullptr);
  FUZZ_CHECK(m.info_hash ==
             torrenty::engine::Sha1(absl::MakeConstSpan(
                 reinterpret_cast<const uint8_t*>(info->raw.data()), info->raw.size())));

  const FileMap map(m);
  FUZZ_CHECK(map.total_length() == m.total_length);
  // Whole pieces (the first and last few, which is where the edge cases are).
  for (uint32_t p = 0; p < m.num_pieces(); ++p) {
    if (p >= 64 && p + 64 < m.num_pieces()) continue;
    std::vector<FileSlice> slices;
    map.MapPiece(p, &slices);
    int64_t covered = 0;
    for (const FileSlice& s : slices) covered += s.length;
    FUZZ_CHECK(covered == m.PieceSize(p));
  }
  std::vector<FileSlice> none;
  map.MapPiece(m.num_pieces(), &none);
  FUZZ_CHECK(none.empty());

  // Random ranges, including hostile ones (negative, past the end, huge lengths).
  uint64_t seed = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) seed = (seed ^ data[i]) * 0x100000001b3ull;
  SplitMix rng(seed);
  CheckMap(m, map, 0, m.total_length);
  CheckMap(m, map, m.total_length - 1, INT64_MAX);
  CheckMap(m, map, INT64_MAX, INT64_MAX);
  CheckMap(m, map, -1, 10);
  for (int i = 0; i < 32; ++i) {
    const uint64_t r = rng.Next();
    int64_t off = 0, len = 0;
    switch (r & 3) {
      case 0:  // anywhere in the data, short
        off = static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(m.total_length));
        len = static_cast<int64_t>(rng.Next() % (2 * torrenty::engine::kBlockSize)) + 1;
        break;
      case 1:  // around a file boundary
      {
        const auto& f = m.files[rng.Next() % m.files.size()];
        off = f.offset - static_cast<int64_t>(rng.Next() % 4);
        len = static_cast<int64_t>(rng.Next() % 8);
        break;
      }
      case 2:  // a block of a piece
        off = static_cast<int64_t>(rng.Next() % m.num_pieces()) * m.piece_length +
              static_cast<int64_t>(rng.Next() % 4) * torrenty::engine::kBlockSize;
        len = torrenty::engine::kBlockSize;
        break;
      default:  // arbitrary 64-bit values
        off = static_cast<int64_t>(rng.Next());
        len = static_cast<int64_t>(rng.Next());
        break;
    }
    CheckMap(m, map, off, len);
  }
  return 0;
}
