// What `serve` remembers about a torrent across restarts, besides its .torrent file and resume
// data: where its data lives, whether the user stopped it, and its history. Bencoded.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace torrenty::engine {

struct TorrentRecord {
  std::string download_dir;
  bool paused = false;
  int64_t added_date = 0;  // unix seconds
  int64_t done_date = 0;
  int64_t downloaded = 0;  // payload bytes over every run
  int64_t uploaded = 0;
  // File selection: indices into the metainfo's file list (pad files counted), ascending.
  std::vector<uint32_t> files_unwanted;
  // Seed limits and queueing (rpc-spec seedRatioMode/seedIdleMode: 0 global, 1 own, 2 unlimited).
  bool finished = false;  // stopped by its seed limit
  int64_t queue_position = 0;
  int64_t seed_ratio_mode = 0;
  int64_t seed_ratio_milli = 2000;  // the ratio limit times 1000 (bencode has no fractions)
  int64_t seed_idle_mode = 0;
  int64_t seed_idle_minutes = 30;
  // Speed limits (torrent-set downloadLimit/uploadLimit), bytes/s; each applies while limited.
  int64_t download_limit = 0, upload_limit = 0;
  bool download_limited = false, upload_limited = false;
  // rpc-spec honorsSessionLimits: whether the session's speed limits hold this torrent too.
  bool honors_session_limits = true;
  // BEP 16 super-seeding as torrent-set superSeed gave it; unset: serve's --super-seed decides.
  std::optional<bool> super_seed;
  friend bool operator==(const TorrentRecord&, const TorrentRecord&) = default;
};

std::string EncodeTorrentRecord(const TorrentRecord& record);
// Fails on anything but a dict with a non-empty download-dir; unknown keys are ignored (a newer
// version may add some), negative numbers are refused.
[[nodiscard]] absl::StatusOr<TorrentRecord> DecodeTorrentRecord(std::string_view bytes);

}  // namespace torrenty::engine
