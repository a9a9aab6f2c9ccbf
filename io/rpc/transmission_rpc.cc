#include "io/rpc/transmission_rpc.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <limits>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "io/rpc/torrent_fields.h"
#include "nlohmann/json.hpp"

namespace torrenty::io::rpc {
namespace {

using json = nlohmann::json;

// Transmission's "recently active" window (RECENTLY_ACTIVE_SECONDS).
constexpr int64_t kRecentlyActiveSeconds = 60;
constexpr int64_t kMaxSpeedKiB = std::numeric_limits<int64_t>::max() / kSpeedUnitBytes;

// Debian's abseil has its own string_view type.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Dump(const json& j) {
  // Torrent names and paths come from .torrent files; invalid UTF-8 must not make dump() throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

absl::Status TypeError(std::string_view key, std::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat("argument \"", AV(key), "\" must be ", AV(expected)));
}

// Readers for optional arguments: absent leaves *out unset; present with the wrong type or out of
// range is an error.
absl::Status ReadInt(const json& args, const char* key, int64_t min, int64_t max,
                     std::optional<int64_t>* out) {
  auto it = args.find(key);
  if (it == args.end()) return absl::OkStatus();
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return TypeError(key, absl::StrCat("an integer in [", min, ", ", max, "]"));
    }
    v = static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else {
    return TypeError(key, "an integer");
  }
  if (v < min || v > max)
    return TypeError(key, absl::StrCat("an integer in [", min, ", ", max, "]"));
  *out = v;
  return absl::OkStatus();
}

absl::Status ReadInt32(const json& args, const char* key, int64_t min, int64_t max,
                       std::optional<int>* out) {
  std::optional<int64_t> v;
  if (absl::Status s = ReadInt(args, key, min, max, &v); !s.ok()) return s;
  if (v) *out = static_cast<int>(*v);
  return absl::OkStatus();
}

// Transmission also takes 0 and 1 for booleans.
absl::Status ReadBool(const json& args, const char* key, std::optional<bool>* out) {
  auto it = args.find(key);
  if (it == args.end()) return absl::OkStatus();
  if (it->is_boolean()) {
    *out = it->get<bool>();
  } else if (it->is_number_integer() && (*it == 0 || *it == 1)) {
    *out = *it == 1;
  } else {
    return TypeError(key, "a boolean");
  }
  return absl::OkStatus();
}

absl::Status ReadDouble(const json& args, const char* key, double min, double max,
                        std::optional<double>* out) {
  auto it = args.find(key);
  if (it == args.end()) return absl::OkStatus();
  if (!it->is_number()) return TypeError(key, "a number");
  const double v = it->get<double>();
  if (!(v >= min && v <= max))
    return TypeError(key, absl::StrCat("a number in [", min, ", ", max, "]"));
  *out = v;
  return absl::OkStatus();
}

absl::Status ReadString(const json& args, const char* key, std::optional<std::string>* out) {
  auto it = args.find(key);
  if (it == args.end()) return absl::OkStatus();
  if (!it->is_string()) return TypeError(key, "a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadIndexList(const json& args, const char* key,
                           std::optional<std::vector<int>>* out) {
  auto it = args.find(key);
  if (it == args.end()) return absl::OkStatus();
  if (!it->is_array()) return TypeError(key, "an array of file indices");
  std::vector<int> v;
  v.reserve(it->size());
  for (const json& e : *it) {
    if (!e.is_number_integer() || e.get<int64_t>() < 0 ||
        e.get<int64_t>() > std::numeric_limits<int>::max()) {
      return TypeError(key, "an array of file indices");
    }
    v.push_back(static_cast<int>(e.get<int64_t>()));
  }
  *out = std::move(v);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<int64_t>> ReadSpeed(const json& args, const char* key) {
  std::optional<int64_t> kib;
  if (absl::Status s = ReadInt(args, key, 0, kMaxSpeedKiB, &kib); !s.ok()) return s;
  if (kib) return std::optional<int64_t>(*kib * kSpeedUnitBytes);
  return std::optional<int64_t>();
}

bool IsHashString(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isxdigit(static_cast<unsigned char>(c));
         });
}

// --- ids ---------------------------------------------------------------------------------------

struct IdSelection {
  bool all = true;
  bool recently_active = false;
  std::vector<int> ids;
  std::vector<std::string> hashes;  // lowercase
};

absl::StatusOr<IdSelection> ParseIds(const json& args) {
  IdSelection sel;
  auto it = args.find("ids");
  if (it == args.end()) return sel;
  sel.all = false;
  auto add = [&sel](const json& e) -> absl::Status {
    if (e.is_number_integer()) {
      if (e.is_number_unsigned()
              ? e.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int>::max())
              : (e.get<int64_t>() < std::numeric_limits<int>::min() ||
                 e.get<int64_t>() > std::numeric_limits<int>::max())) {
        return absl::InvalidArgumentError("torrent id out of range");
      }
      sel.ids.push_back(static_cast<int>(e.get<int64_t>()));
      return absl::OkStatus();
    }
    if (e.is_string() && IsHashString(e.get_ref<const std::string&>())) {
      sel.hashes.push_back(absl::AsciiStrToLower(e.get_ref<const std::string&>()));
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(
        "\"ids\" must be a torrent id, a list of ids and hash strings, or \"recently-active\"");
  };
  if (it->is_string() && it->get_ref<const std::string&>() == "recently-active") {
    sel.recently_active = true;
    return sel;
  }
  if (it->is_array()) {
    // An empty list means every torrent (rpc-spec 3.2).
    if (it->empty()) sel.all = true;
    for (const json& e : *it) {
      if (absl::Status s = add(e); !s.ok()) return s;
    }
    return sel;
  }
  if (absl::Status s = add(*it); !s.ok()) return s;
  return sel;
}

int64_t AnyDate(const TorrentView& t) {
  return std::max({t.added_date, t.activity_date, t.done_date});
}

// --- one call ----------------------------------------------------------------------------------

class Call {
 public:
  Call(RpcBackend* backend, const std::string& session_id, int64_t now, const json& args)
      : b_(backend), session_id_(session_id), now_(now), args_(args) {}

  absl::Status Run(std::string_view method) {
    if (method == "torrent-get") return TorrentGet();
    if (method == "torrent-add") return TorrentAdd();
    if (method == "torrent-start") {
      return Action([this](const std::vector<int>& ids) { return b_->StartTorrents(ids); });
    }
    if (method == "torrent-start-now") {
      return Action([this](const std::vector<int>& ids) { return b_->StartTorrentsNow(ids); });
    }
    for (const auto& [name, direction] :
         {std::pair{"queue-move-top", QueueDirection::kTop},
          std::pair{"queue-move-up", QueueDirection::kUp},
          std::pair{"queue-move-down", QueueDirection::kDown},
          std::pair{"queue-move-bottom", QueueDirection::kBottom}}) {
      if (method != name) continue;
      return Action(
          [this, d = direction](const std::vector<int>& ids) { return b_->MoveInQueue(ids, d); });
    }
    if (method == "torrent-stop") {
      return Action([this](const std::vector<int>& ids) { return b_->StopTorrents(ids); });
    }
    if (method == "torrent-verify") {
      return Action([this](const std::vector<int>& ids) { return b_->VerifyTorrents(ids); });
    }
    if (method == "torrent-remove") return TorrentRemove();
    if (method == "torrent-set") return TorrentSet();
    if (method == "session-get") return SessionGet();
    if (method == "session-set") return SessionSet();
    if (method == "session-stats") return SessionStatsCall();
    if (method == "free-space") return FreeSpace();
    if (method == "port-test") {
      return absl::UnimplementedError(
          "port-test needs an outside server, and torrenty does not contact one");
    }
    if (method == "blocklist-update")
      return absl::UnimplementedError("blocklists are not supported");
    if (method == "session-close" || method == "torrent-reannounce" ||
        method == "torrent-set-location" || method == "torrent-rename-path") {
      return absl::UnimplementedError(absl::StrCat(AV(method), " is not supported"));
    }
    return absl::InvalidArgumentError("method name not recognized");
  }

  json& result_args() { return out_; }

 private:
  // Every torrent, without files, trackers or peers.
  std::vector<TorrentView> AllViews() { return b_->GetTorrents({}, ViewFields{}); }

  // The ids a request names. strict: an id or hash that names no torrent is an error (actions
  // must not silently do nothing); otherwise it is skipped, as Transmission's torrent-get does.
  absl::StatusOr<std::vector<int>> Resolve(const IdSelection& sel, bool strict) {
    std::vector<int> out;
    if (sel.all || sel.recently_active) {
      for (const TorrentView& t : AllViews()) {
        if (sel.all || AnyDate(t) >= now_ - kRecentlyActiveSeconds) out.push_back(t.id);
      }
      return out;
    }
    std::set<int> seen;
    if (!sel.ids.empty()) {
      std::set<int> known;
      for (const TorrentView& t : b_->GetTorrents(sel.ids, ViewFields{})) known.insert(t.id);
      for (const int id : sel.ids) {
        if (known.count(id) == 0) {
          if (strict) return absl::NotFoundError(absl::StrCat("no torrent with id ", id));
          continue;
        }
        if (seen.insert(id).second) out.push_back(id);
      }
    }
    if (!sel.hashes.empty()) {
      absl::flat_hash_map<std::string, int> by_hash;
      for (const TorrentView& t : AllViews()) by_hash[absl::AsciiStrToLower(t.hash_string)] = t.id;
      for (const std::string& h : sel.hashes) {
        auto it = by_hash.find(h);
        if (it == by_hash.end()) {
          if (strict) return absl::NotFoundError(absl::StrCat("no torrent with hash ", h));
          continue;
        }
        if (seen.insert(it->second).second) out.push_back(it->second);
      }
    }
    return out;
  }

  absl::StatusOr<std::vector<int>> ResolveArgs(bool strict) {
    absl::StatusOr<IdSelection> sel = ParseIds(args_);
    if (!sel.ok()) return sel.status();
    return Resolve(*sel, strict);
  }

  template <typename Fn>
  absl::Status Action(Fn fn) {
    absl::StatusOr<std::vector<int>> ids = ResolveArgs(/*strict=*/true);
    if (!ids.ok()) return ids.status();
    // An empty list would mean "every torrent" to some backends; nothing to do is nothing to do.
    if (ids->empty()) return absl::OkStatus();
    return fn(*ids);
  }

  absl::Status TorrentGet() {
    auto fields_it = args_.find("fields");
    if (fields_it == args_.end() || !fields_it->is_array()) {
      return absl::InvalidArgumentError("torrent-get needs a \"fields\" array");
    }
    std::optional<std::string> format;
    if (absl::Status s = ReadString(args_, "format", &format); !s.ok()) return s;
    const bool table = format && *format == "table";
    if (format && !table && *format != "objects") {
      return absl::InvalidArgumentError("\"format\" must be \"objects\" or \"table\"");
    }
    std::vector<std::pair<std::string, TorrentField>> fields;
    ViewFields need;
    for (const json& f : *fields_it) {
      if (!f.is_string()) return TypeError("fields", "an array of strings");
      const std::string& name = f.get_ref<const std::string&>();
      const std::optional<TorrentField> field = FindTorrentField(name);
      // Unknown field names are skipped, as Transmission does.
      if (!field) continue;
      AddNeeds(*field, &need);
      fields.emplace_back(name, *field);
    }
    absl::StatusOr<IdSelection> sel = ParseIds(args_);
    if (!sel.ok()) return sel.status();
    std::vector<TorrentView> views;
    if (sel->all) {
      views = b_->GetTorrents({}, need);
    } else {
      absl::StatusOr<std::vector<int>> ids = Resolve(*sel, /*strict=*/false);
      if (!ids.ok()) return ids.status();
      if (!ids->empty()) views = b_->GetTorrents(*ids, need);
    }
    json torrents = json::array();
    if (table) {
      json header = json::array();
      for (const auto& [name, field] : fields) header.push_back(name);
      torrents.push_back(std::move(header));
    }
    for (const TorrentView& t : views) {
      if (table) {
        json row = json::array();
        for (const auto& [name, field] : fields) row.push_back(TorrentFieldValue(t, field));
        torrents.push_back(std::move(row));
      } else {
        json obj = json::object();
        for (const auto& [name, field] : fields) obj[name] = TorrentFieldValue(t, field);
        torrents.push_back(std::move(obj));
      }
    }
    out_["torrents"] = std::move(torrents);
    if (sel->recently_active) out_["removed"] = b_->RemovedIds();
    return absl::OkStatus();
  }

  absl::Status TorrentAdd() {
    AddRequest req;
    std::optional<std::string> metainfo, filename, download_dir;
    std::optional<bool> paused;
    std::optional<std::vector<int>> unwanted;
    for (absl::Status s :
         {ReadString(args_, "metainfo", &metainfo), ReadString(args_, "filename", &filename),
          ReadString(args_, "download-dir", &download_dir), ReadBool(args_, "paused", &paused),
          ReadBool(args_, "superSeed", &req.super_seed),
          ReadIndexList(args_, "files-unwanted", &unwanted)}) {
      if (!s.ok()) return s;
    }
    if (metainfo) {
      // Some encoders wrap base64 in lines.
      std::string compact;
      compact.reserve(metainfo->size());
      for (const char c : *metainfo) {
        if (c != '\r' && c != '\n' && c != ' ' && c != '\t') compact.push_back(c);
      }
      if (!absl::Base64Unescape(compact, &req.metainfo) || req.metainfo.empty()) {
        return absl::InvalidArgumentError("\"metainfo\" is not valid base64");
      }
    } else if (filename && !filename->empty()) {
      req.filename = *filename;
    } else {
      return absl::InvalidArgumentError("no filename or metainfo specified");
    }
    if (download_dir) req.download_dir = *download_dir;
    // Without "paused", the session's start-added-torrents decides (transmission-remote
    // --start-paused sets it with session-set before it adds).
    req.paused = paused.has_value() ? *paused : !b_->GetSession().start_added_torrents;
    if (unwanted) req.files_unwanted = *unwanted;
    absl::StatusOr<AddResult> r = b_->AddTorrent(req);
    if (!r.ok()) return r.status();
    out_[r->duplicate ? "torrent-duplicate" : "torrent-added"] = {
        {"id", r->id}, {"name", r->name}, {"hashString", r->hash_string}};
    return absl::OkStatus();
  }

  absl::Status TorrentRemove() {
    std::optional<bool> delete_data;
    if (absl::Status s = ReadBool(args_, "delete-local-data", &delete_data); !s.ok()) return s;
    return Action([&](const std::vector<int>& ids) {
      return b_->RemoveTorrents(ids, delete_data.value_or(false));
    });
  }

  absl::Status TorrentSet() {
    TorrentSettings set;
    absl::StatusOr<std::optional<int64_t>> down = ReadSpeed(args_, "downloadLimit");
    if (!down.ok()) return down.status();
    absl::StatusOr<std::optional<int64_t>> up = ReadSpeed(args_, "uploadLimit");
    if (!up.ok()) return up.status();
    set.download_limit = *down;
    set.upload_limit = *up;
    std::optional<std::vector<int>> wanted, unwanted;
    std::optional<int64_t> idle_limit;
    for (absl::Status s :
         {ReadBool(args_, "downloadLimited", &set.download_limited),
          ReadBool(args_, "uploadLimited", &set.upload_limited),
          ReadBool(args_, "honorsSessionLimits", &set.honors_session_limits),
          ReadBool(args_, "superSeed", &set.super_seed),
          ReadDouble(args_, "seedRatioLimit", 0, 1e9, &set.seed_ratio_limit),
          ReadInt32(args_, "seedRatioMode", 0, 2, &set.seed_ratio_mode),
          ReadInt(args_, "seedIdleLimit", 0, std::numeric_limits<int32_t>::max(), &idle_limit),
          ReadInt32(args_, "seedIdleMode", 0, 2, &set.seed_idle_mode),
          ReadInt32(args_, "queuePosition", 0, std::numeric_limits<int32_t>::max(),
                    &set.queue_position),
          ReadIndexList(args_, "files-wanted", &wanted),
          ReadIndexList(args_, "files-unwanted", &unwanted)}) {
      if (!s.ok()) return s;
    }
    set.seed_idle_limit = idle_limit;
    absl::StatusOr<std::vector<int>> ids = ResolveArgs(/*strict=*/true);
    if (!ids.ok()) return ids.status();
    if (ids->empty()) return absl::OkStatus();
    // An empty files-wanted/unwanted list means every file (rpc-spec 3.2), and the number of
    // files differs per torrent, so such a request is applied one torrent at a time.
    const bool all_files = (wanted && wanted->empty()) || (unwanted && unwanted->empty());
    if (!all_files) {
      if (wanted) set.files_wanted = *wanted;
      if (unwanted) set.files_unwanted = *unwanted;
      return b_->SetTorrents(*ids, set);
    }
    ViewFields with_files;
    with_files.files = true;
    for (const TorrentView& t : b_->GetTorrents(*ids, with_files)) {
      TorrentSettings one = set;
      auto expand = [&t](const std::optional<std::vector<int>>& list, std::vector<int>* out) {
        if (!list) return;
        if (!list->empty()) {
          *out = *list;
          return;
        }
        for (size_t i = 0; i < t.files.size(); ++i) out->push_back(static_cast<int>(i));
      };
      expand(wanted, &one.files_wanted);
      expand(unwanted, &one.files_unwanted);
      if (absl::Status s = b_->SetTorrents({t.id}, one); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status SessionGet() {
    const SessionSettings s = b_->GetSession();
    json units = {
        {"speed-units", {"KiB/s", "MiB/s", "GiB/s", "TiB/s"}}, {"speed-bytes", kSpeedUnitBytes},
        {"size-units", {"KiB", "MiB", "GiB", "TiB"}},          {"size-bytes", 1024},
        {"memory-units", {"KiB", "MiB", "GiB", "TiB"}},        {"memory-bytes", 1024},
    };
    json all = {
        {"alt-speed-down", s.alt_speed_down / kSpeedUnitBytes},
        {"alt-speed-enabled", s.alt_speed_enabled},
        {"alt-speed-time-begin", 540},
        {"alt-speed-time-enabled", false},
        {"alt-speed-time-end", 1020},
        {"alt-speed-time-day", 127},
        {"alt-speed-up", s.alt_speed_up / kSpeedUnitBytes},
        {"blocklist-enabled", false},
        {"blocklist-size", 0},
        {"blocklist-url", ""},
        {"cache-size-mb", 0},
        {"dht-enabled", false},
        {"download-dir", s.download_dir},
        {"download-queue-enabled", s.download_queue_enabled},
        {"download-queue-size", s.download_queue_size},
        {"idle-seeding-limit", s.idle_seeding_limit},
        {"idle-seeding-limit-enabled", s.idle_seeding_limit_enabled},
        {"incomplete-dir", ""},
        {"incomplete-dir-enabled", false},
        {"lpd-enabled", false},
        {"peer-limit-global", s.peer_limit_global},
        {"peer-limit-per-torrent", s.peer_limit_per_torrent},
        {"peer-port", s.peer_port},
        {"peer-port-random-on-start", false},
        {"pex-enabled", false},
        {"port-forwarding-enabled", false},
        {"queue-stalled-enabled", s.queue_stalled_enabled},
        {"queue-stalled-minutes", s.queue_stalled_minutes},
        {"rename-partial-files", false},
        {"rpc-version", kRpcVersion},
        {"rpc-version-minimum", kRpcVersionMinimum},
        {"script-torrent-done-enabled", false},
        {"script-torrent-done-filename", ""},
        {"seedRatioLimit", s.seed_ratio_limit},
        {"seedRatioLimited", s.seed_ratio_limited},
        {"seed-queue-enabled", s.seed_queue_enabled},
        {"seed-queue-size", s.seed_queue_size},
        {"session-id", session_id_},
        {"speed-limit-down", s.speed_limit_down / kSpeedUnitBytes},
        {"speed-limit-down-enabled", s.speed_limit_down_enabled},
        {"speed-limit-up", s.speed_limit_up / kSpeedUnitBytes},
        {"speed-limit-up-enabled", s.speed_limit_up_enabled},
        {"start-added-torrents", s.start_added_torrents},
        {"trash-original-torrent-files", false},
        {"units", std::move(units)},
        {"utp-enabled", false},
        {"version", s.version},
    };
    auto fields = args_.find("fields");
    if (fields == args_.end()) {
      out_ = std::move(all);
      return absl::OkStatus();
    }
    if (!fields->is_array()) return TypeError("fields", "an array of strings");
    for (const json& f : *fields) {
      if (!f.is_string()) return TypeError("fields", "an array of strings");
      auto it = all.find(f.get_ref<const std::string&>());
      if (it != all.end()) out_[it.key()] = *it;
    }
    return absl::OkStatus();
  }

  absl::Status SessionSet() {
    SessionSettingsUpdate u;
    struct Speed {
      const char* key;
      std::optional<int64_t>* out;
    };
    for (const Speed& sp :
         {Speed{"speed-limit-down", &u.speed_limit_down},
          Speed{"speed-limit-up", &u.speed_limit_up}, Speed{"alt-speed-down", &u.alt_speed_down},
          Speed{"alt-speed-up", &u.alt_speed_up}}) {
      absl::StatusOr<std::optional<int64_t>> v = ReadSpeed(args_, sp.key);
      if (!v.ok()) return v.status();
      *sp.out = *v;
    }
    std::optional<int64_t> idle;
    for (absl::Status s :
         {ReadBool(args_, "speed-limit-down-enabled", &u.speed_limit_down_enabled),
          ReadBool(args_, "speed-limit-up-enabled", &u.speed_limit_up_enabled),
          ReadBool(args_, "alt-speed-enabled", &u.alt_speed_enabled),
          ReadDouble(args_, "seedRatioLimit", 0, 1e9, &u.seed_ratio_limit),
          ReadBool(args_, "seedRatioLimited", &u.seed_ratio_limited),
          ReadInt(args_, "idle-seeding-limit", 0, std::numeric_limits<int32_t>::max(), &idle),
          ReadBool(args_, "idle-seeding-limit-enabled", &u.idle_seeding_limit_enabled),
          ReadString(args_, "download-dir", &u.download_dir),
          ReadInt32(args_, "download-queue-size", 0, std::numeric_limits<int32_t>::max(),
                    &u.download_queue_size),
          ReadBool(args_, "download-queue-enabled", &u.download_queue_enabled),
          ReadInt32(args_, "seed-queue-size", 0, std::numeric_limits<int32_t>::max(),
                    &u.seed_queue_size),
          ReadBool(args_, "seed-queue-enabled", &u.seed_queue_enabled),
          ReadInt32(args_, "queue-stalled-minutes", 1, std::numeric_limits<int32_t>::max(),
                    &u.queue_stalled_minutes),
          ReadBool(args_, "queue-stalled-enabled", &u.queue_stalled_enabled),
          ReadBool(args_, "start-added-torrents", &u.start_added_torrents)}) {
      if (!s.ok()) return s;
    }
    u.idle_seeding_limit = idle;
    return b_->SetSession(u);
  }

  absl::Status SessionStatsCall() {
    const SessionStats s = b_->GetSessionStats();
    auto totals = [](const TransferTotals& t) {
      return json{{"uploadedBytes", t.uploaded_bytes},
                  {"downloadedBytes", t.downloaded_bytes},
                  {"filesAdded", t.files_added},
                  {"sessionCount", t.session_count},
                  {"secondsActive", t.seconds_active}};
    };
    out_ = {{"activeTorrentCount", s.active_torrent_count},
            {"downloadSpeed", s.download_speed},
            {"pausedTorrentCount", s.paused_torrent_count},
            {"torrentCount", s.torrent_count},
            {"uploadSpeed", s.upload_speed},
            {"cumulative-stats", totals(s.cumulative)},
            {"current-stats", totals(s.current)}};
    return absl::OkStatus();
  }

  absl::Status FreeSpace() {
    std::optional<std::string> path;
    if (absl::Status s = ReadString(args_, "path", &path); !s.ok()) return s;
    if (!path || path->empty()) return absl::InvalidArgumentError("free-space needs a \"path\"");
    if (path->find('\0') != std::string::npos) return TypeError("path", "a path");
    struct statvfs st {};
    if (statvfs(path->c_str(), &st) != 0) {
      return absl::ErrnoToStatus(errno, absl::StrCat("free-space ", *path));
    }
    out_ = {{"path", *path},
            {"size-bytes", static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize)},
            {"total_size", static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize)}};
    return absl::OkStatus();
  }

  RpcBackend* b_;
  const std::string& session_id_;
  int64_t now_;
  const json& args_;
  json out_ = json::object();
};

std::string ErrorReply(std::string_view message, const json* tag) {
  json reply = {{"result", std::string(message)}, {"arguments", json::object()}};
  if (tag != nullptr) reply["tag"] = *tag;
  return Dump(reply);
}

}  // namespace

TransmissionRpc::TransmissionRpc(RpcBackend* backend)
    : backend_(backend), now_([] { return static_cast<int64_t>(std::time(nullptr)); }) {}

std::string TransmissionRpc::Handle(std::string_view request_body) {
  // nlohmann reports bad input by throwing; parse without exceptions and check every type before
  // reading it, and keep a last net so nothing escapes to the server thread.
  try {
    const json request = json::parse(request_body, nullptr, /*allow_exceptions=*/false);
    if (request.is_discarded()) return ErrorReply("malformed JSON request", nullptr);
    if (!request.is_object()) return ErrorReply("the request must be a JSON object", nullptr);
    const json* tag = nullptr;
    if (auto it = request.find("tag"); it != request.end() && it->is_number_integer()) {
      tag = &*it;
    }
    auto method = request.find("method");
    if (method == request.end() || !method->is_string()) {
      return ErrorReply("no method name", tag);
    }
    static const json kNoArgs = json::object();
    const json* args = &kNoArgs;
    if (auto it = request.find("arguments"); it != request.end()) {
      if (!it->is_object()) return ErrorReply("\"arguments\" must be an object", tag);
      args = &*it;
    }
    Call call(backend_, session_id_, now_(), *args);
    const absl::Status status = call.Run(method->get_ref<const std::string&>());
    if (!status.ok()) return ErrorReply(std::string(status.message()), tag);
    json reply = {{"result", "success"}, {"arguments", std::move(call.result_args())}};
    if (tag != nullptr) reply["tag"] = *tag;
    return Dump(reply);
  } catch (const std::exception& e) {
    return ErrorReply(absl::StrCat("internal error: ", e.what()), nullptr);
  }
}

}  // namespace torrenty::io::rpc
