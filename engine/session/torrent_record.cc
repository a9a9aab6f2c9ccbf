#include "engine/session/torrent_record.h"

#include <cstdint>

#include "engine/codec/bencode.h"

namespace torrenty::engine {

std::string EncodeTorrentRecord(const TorrentRecord& r) {
  bencode::Encoder e;
  e.BeginDict();  // keys in ascending byte order
  e.String("added-date");
  e.Int(r.added_date);
  e.String("done-date");
  e.Int(r.done_date);
  e.String("download-dir");
  e.String(r.download_dir);
  e.String("download-limit");
  e.Int(r.download_limit);
  e.String("download-limited");
  e.Int(r.download_limited ? 1 : 0);
  e.String("downloaded");
  e.Int(r.downloaded);
  if (!r.files_unwanted.empty()) {
    e.String("files-unwanted");
    e.BeginList();
    for (uint32_t i : r.files_unwanted) e.Int(i);
    e.End();
  }
  if (r.finished) {
    e.String("finished");
    e.Int(1);
  }
  if (!r.honors_session_limits) {  // written only when off, so older records read as "on"
    e.String("honors-session-limits");
    e.Int(0);
  }
  e.String("paused");
  e.Int(r.paused ? 1 : 0);
  e.String("queue-position");
  e.Int(r.queue_position);
  e.String("seed-idle-minutes");
  e.Int(r.seed_idle_minutes);
  e.String("seed-idle-mode");
  e.Int(r.seed_idle_mode);
  e.String("seed-ratio-milli");
  e.Int(r.seed_ratio_milli);
  e.String("seed-ratio-mode");
  e.Int(r.seed_ratio_mode);
  if (r.super_seed.has_value()) {
    e.String("super-seed");
    e.Int(*r.super_seed ? 1 : 0);
  }
  e.String("upload-limit");
  e.Int(r.upload_limit);
  e.String("upload-limited");
  e.Int(r.upload_limited ? 1 : 0);
  e.String("uploaded");
  e.Int(r.uploaded);
  e.End();
  return e.Take();
}

absl::StatusOr<TorrentRecord> DecodeTorrentRecord(std::string_view bytes) {
  absl::StatusOr<bencode::Value> v = bencode::Decode(bytes);
  if (!v.ok()) return v.status();
  if (!v->is_dict()) return absl::InvalidArgumentError("torrent record: not a dict");
  TorrentRecord r;
  const bencode::Value* dir = v->Find("download-dir");
  if (dir == nullptr || !dir->is_string() || dir->string.empty()) {
    return absl::InvalidArgumentError("torrent record: no download-dir");
  }
  r.download_dir = std::string(dir->string);
  auto number = [&](std::string_view key, int64_t* out) { return v->FindInt(key, INT64_MAX, out); };
  int64_t paused = 0, finished = 0, down_limited = 0, up_limited = 0;
  if (!number("added-date", &r.added_date) || !number("done-date", &r.done_date) ||
      !number("downloaded", &r.downloaded) || !number("uploaded", &r.uploaded) ||
      !number("paused", &paused) || !number("finished", &finished) ||
      !number("queue-position", &r.queue_position) ||
      !number("seed-ratio-mode", &r.seed_ratio_mode) ||
      !number("seed-ratio-milli", &r.seed_ratio_milli) ||
      !number("seed-idle-mode", &r.seed_idle_mode) ||
      !number("seed-idle-minutes", &r.seed_idle_minutes) ||
      !number("download-limit", &r.download_limit) || !number("download-limited", &down_limited) ||
      !number("upload-limit", &r.upload_limit) || !number("upload-limited", &up_limited)) {
    return absl::InvalidArgumentError("torrent record: a number is missing its type or negative");
  }
  if (r.seed_ratio_mode > 2 || r.seed_idle_mode > 2 || r.queue_position > INT32_MAX ||
      r.seed_idle_minutes > INT32_MAX) {
    return absl::InvalidArgumentError(
        "torrent record: a seed limit or queue position is out of range");
  }
  r.paused = paused != 0;
  r.finished = finished != 0;
  r.download_limited = down_limited != 0;
  r.upload_limited = up_limited != 0;
  if (v->Find("honors-session-limits") != nullptr) {
    int64_t honors = 1;
    if (!number("honors-session-limits", &honors)) {
      return absl::InvalidArgumentError("torrent record: honors-session-limits is not a number");
    }
    r.honors_session_limits = honors != 0;
  }
  if (v->Find("super-seed") != nullptr) {
    int64_t super_seed = 0;
    if (!number("super-seed", &super_seed)) {
      return absl::InvalidArgumentError("torrent record: super-seed is not a number");
    }
    r.super_seed = super_seed != 0;
  }
  if (const bencode::Value* list = v->Find("files-unwanted"); list != nullptr) {
    if (!list->is_list()) return absl::InvalidArgumentError("torrent record: files-unwanted");
    for (const bencode::Value& n : list->list) {
      if (!n.is_int() || n.integer < 0 || n.integer > UINT32_MAX) {
        return absl::InvalidArgumentError("torrent record: files-unwanted");
      }
      r.files_unwanted.push_back(static_cast<uint32_t>(n.integer));
    }
  }
  return r;
}

}  // namespace torrenty::engine
