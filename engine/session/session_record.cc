#include "engine/session/session_record.h"

#include <cstdint>

#include "engine/codec/bencode.h"

namespace torrenty::engine {
namespace {
constexpr int64_t kMaxCount = INT32_MAX;
}  // namespace

std::string EncodeSessionRecord(const SessionRecord& r) {
  bencode::Encoder e;
  e.BeginDict();  // keys in ascending byte order
  e.String("alt-speed-down");
  e.Int(r.alt_speed_down);
  e.String("alt-speed-enabled");
  e.Int(r.alt_speed_enabled ? 1 : 0);
  e.String("alt-speed-up");
  e.Int(r.alt_speed_up);
  e.String("download-dir");
  e.String(r.download_dir);
  e.String("download-queue-enabled");
  e.Int(r.download_queue_enabled ? 1 : 0);
  e.String("download-queue-size");
  e.Int(r.download_queue_size);
  e.String("idle-seeding-limit");
  e.Int(r.idle_seeding_minutes);
  e.String("idle-seeding-limit-enabled");
  e.Int(r.idle_seeding_limit_enabled ? 1 : 0);
  e.String("queue-stalled-enabled");
  e.Int(r.queue_stalled_enabled ? 1 : 0);
  e.String("queue-stalled-minutes");
  e.Int(r.queue_stalled_minutes);
  e.String("seed-queue-enabled");
  e.Int(r.seed_queue_enabled ? 1 : 0);
  e.String("seed-queue-size");
  e.Int(r.seed_queue_size);
  e.String("seed-ratio-limited");
  e.Int(r.seed_ratio_limited ? 1 : 0);
  e.String("seed-ratio-milli");
  e.Int(r.seed_ratio_milli);
  e.String("speed-limit-down");
  e.Int(r.speed_limit_down);
  e.String("speed-limit-down-enabled");
  e.Int(r.speed_limit_down_enabled ? 1 : 0);
  e.String("speed-limit-up");
  e.Int(r.speed_limit_up);
  e.String("speed-limit-up-enabled");
  e.Int(r.speed_limit_up_enabled ? 1 : 0);
  e.String("start-added-torrents");
  e.Int(r.start_added_torrents ? 1 : 0);
  e.End();
  return e.Take();
}

absl::StatusOr<SessionRecord> DecodeSessionRecord(std::string_view bytes) {
  absl::StatusOr<bencode::Value> v = bencode::Decode(bytes);
  if (!v.ok()) return v.status();
  if (!v->is_dict()) return absl::InvalidArgumentError("session settings: not a dict");
  SessionRecord r;
  if (const bencode::Value* dir = v->Find("download-dir"); dir != nullptr) {
    if (!dir->is_string()) return absl::InvalidArgumentError("session settings: download-dir");
    r.download_dir = std::string(dir->string);
  }
  auto number = [&](std::string_view key, int64_t max, int64_t* out) {
    return v->FindInt(key, max, out);
  };
  auto flag = [&](std::string_view key, bool* out) -> bool {
    int64_t n = *out ? 1 : 0;
    if (!number(key, 1, &n)) return false;
    *out = n != 0;
    return true;
  };
  if (!number("download-queue-size", kMaxCount, &r.download_queue_size) ||
      !number("seed-queue-size", kMaxCount, &r.seed_queue_size) ||
      !number("queue-stalled-minutes", kMaxCount, &r.queue_stalled_minutes) ||
      !flag("queue-stalled-enabled", &r.queue_stalled_enabled) ||
      !number("idle-seeding-limit", kMaxCount, &r.idle_seeding_minutes) ||
      !number("seed-ratio-milli", INT64_MAX, &r.seed_ratio_milli) ||
      !flag("download-queue-enabled", &r.download_queue_enabled) ||
      !flag("seed-queue-enabled", &r.seed_queue_enabled) ||
      !flag("idle-seeding-limit-enabled", &r.idle_seeding_limit_enabled) ||
      !flag("seed-ratio-limited", &r.seed_ratio_limited) ||
      !flag("start-added-torrents", &r.start_added_torrents) ||
      !number("speed-limit-down", INT64_MAX / 1024, &r.speed_limit_down) ||
      !number("speed-limit-up", INT64_MAX / 1024, &r.speed_limit_up) ||
      !number("alt-speed-down", INT64_MAX / 1024, &r.alt_speed_down) ||
      !number("alt-speed-up", INT64_MAX / 1024, &r.alt_speed_up) ||
      !flag("speed-limit-down-enabled", &r.speed_limit_down_enabled) ||
      !flag("speed-limit-up-enabled", &r.speed_limit_up_enabled) ||
      !flag("alt-speed-enabled", &r.alt_speed_enabled)) {
    return absl::InvalidArgumentError("session settings: a value has the wrong type or range");
  }
  return r;
}

}  // namespace torrenty::engine
