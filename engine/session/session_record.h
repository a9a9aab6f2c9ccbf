// The session settings `serve` keeps under --state-dir (what session-set changed), so a restart
// keeps them. Bencoded; absent keys keep their defaults.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace torrenty::engine {

struct SessionRecord {
  std::string download_dir;  // empty = serve's --download-dir
  bool start_added_torrents = true;
  bool seed_ratio_limited = false;
  int64_t seed_ratio_milli = 2000;  // the ratio times 1000
  bool idle_seeding_limit_enabled = false;
  int64_t idle_seeding_minutes = 30;
  bool download_queue_enabled = false;
  int64_t download_queue_size = 5;
  bool seed_queue_enabled = false;
  int64_t seed_queue_size = 10;
  bool queue_stalled_enabled = false;
  int64_t queue_stalled_minutes = 30;
  // Speed limits, bytes/s (session-set speed-limit-*, alt-speed-*).
  int64_t speed_limit_down = 100 << 10, speed_limit_up = 100 << 10;
  bool speed_limit_down_enabled = false, speed_limit_up_enabled = false;
  int64_t alt_speed_down = 50 << 10, alt_speed_up = 50 << 10;
  bool alt_speed_enabled = false;
  friend bool operator==(const SessionRecord&, const SessionRecord&) = default;
};

std::string EncodeSessionRecord(const SessionRecord& record);
// Fails on anything but a dict whose known keys have the right types and sane ranges; unknown
// keys are ignored.
[[nodiscard]] absl::StatusOr<SessionRecord> DecodeSessionRecord(std::string_view bytes);

}  // namespace torrenty::engine
