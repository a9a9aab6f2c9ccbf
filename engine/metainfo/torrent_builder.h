// Pure encoding half of `torrenty create`: picks a piece size and serialises a new
// torrent's metainfo. Reading and hashing the files happens in io/torrent_creator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/metainfo/metainfo.h"
#include "engine/base/types.h"

namespace torrenty::engine {

inline constexpr int64_t kMinDefaultPieceLength = int64_t{32} << 10;
inline constexpr int64_t kMaxDefaultPieceLength = int64_t{16} << 20;

// Power of two in [32 KiB, 16 MiB] giving roughly 1000-2000 pieces, like mktorrent and
// libtorrent: fewer pieces keep the metainfo small, more pieces make each one quicker to
// download and verify.
int64_t DefaultPieceLength(int64_t total_bytes);

// Members all have initializers so designated-initializer construction may omit any.
struct NewTorrent {
  std::string name{};
  std::vector<FileEntry> files{};  // for single-file: one entry with an empty path
  bool multi_file = false;
  int64_t piece_length = 0;
  std::vector<Sha1Digest> piece_hashes{};
  // BEP 12 tiers, in order; empty tiers are skipped.
  std::vector<std::vector<std::string>> tiers{};
  bool is_private = false;
  std::string created_by{};   // omitted when empty
  int64_t creation_date = 0;  // seconds since the epoch; omitted when 0
  std::string comment{};      // omitted when empty
  std::string source{};       // info dict `source` (private trackers tell their copies apart by it)
  std::vector<std::string> web_seeds{};  // BEP 19 `url-list`, omitted when empty
};

// Returns the bencoded .torrent. `announce` is the first tracker; `announce-list` is
// written only with more than one tracker; `private` only when set.
std::string EncodeTorrent(const NewTorrent& torrent);

}  // namespace torrenty::engine
