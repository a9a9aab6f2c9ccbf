#include "io/session/state_dir.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "io/disk/small_file.h"

namespace torrenty::io {
namespace {
constexpr int64_t kMaxTorrentFileBytes = int64_t{64} << 20;
constexpr int64_t kMaxRecordBytes = 64 << 10;

bool IsHex40(absl::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
         });
}
}  // namespace

absl::StatusOr<StateDir> StateDir::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(dir) / "torrents", ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, "/torrents: ", ec.message()));
  return StateDir(dir);
}

std::vector<SavedTorrent> StateDir::Load(std::vector<std::string>* problems) const {
  std::vector<SavedTorrent> out;
  std::error_code ec;
  std::vector<std::string> hexes;
  for (const auto& entry : std::filesystem::directory_iterator(TorrentsDir(), ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::EndsWith(name, ".record")) continue;
    const std::string hex = name.substr(0, name.size() - 7);
    if (IsHex40(hex)) hexes.push_back(hex);
  }
  if (ec) problems->push_back(absl::StrCat("cannot list ", TorrentsDir(), ": ", ec.message()));
  std::sort(hexes.begin(), hexes.end());
  for (const std::string& hex : hexes) {
    const std::string base = absl::StrCat(TorrentsDir(), "/", hex);
    absl::StatusOr<std::string> record = ReadSmallFile(base + ".record", kMaxRecordBytes);
    absl::StatusOr<std::string> torrent = ReadSmallFile(base + ".torrent", kMaxTorrentFileBytes);
    if (!record.ok() || !torrent.ok()) {
      problems->push_back(absl::StrCat(
          "skipping saved torrent ", hex, ": ",
          (!record.ok() ? record.status() : torrent.status()).message()));
      continue;
    }
    absl::StatusOr<engine::TorrentRecord> r = engine::DecodeTorrentRecord(*record);
    if (!r.ok()) {
      problems->push_back(absl::StrCat("skipping saved torrent ", hex, ": ", r.status().message()));
      continue;
    }
    out.push_back(SavedTorrent{hex, std::move(*torrent), std::move(*r)});
  }
  return out;
}

absl::Status StateDir::SaveTorrent(const std::string& hex, const std::string& metainfo) const {
  return WriteFileAtomically(absl::StrCat(TorrentsDir(), "/", hex, ".torrent"), metainfo);
}

absl::Status StateDir::SaveRecord(const std::string& hex,
                                  const engine::TorrentRecord& record) const {
  return WriteFileAtomically(absl::StrCat(TorrentsDir(), "/", hex, ".record"),
                             engine::EncodeTorrentRecord(record));
}

absl::StatusOr<std::optional<engine::SessionRecord>> StateDir::LoadSettings() const {
  const std::string path = dir_ + "/session.record";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<engine::SessionRecord>();
  absl::StatusOr<std::string> bytes = ReadSmallFile(path, kMaxRecordBytes);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<engine::SessionRecord> r = engine::DecodeSessionRecord(*bytes);
  if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", r.status().message()));
  return std::optional<engine::SessionRecord>(std::move(*r));
}

absl::Status StateDir::SaveSettings(const engine::SessionRecord& record) const {
  return WriteFileAtomically(dir_ + "/session.record", engine::EncodeSessionRecord(record));
}

absl::StatusOr<std::optional<std::vector<std::string>>> StateDir::LoadQueue() const {
  const std::string path = dir_ + "/queue";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::optional<std::vector<std::string>>();
  // 41 bytes a torrent: room for a million.
  absl::StatusOr<std::string> bytes = ReadSmallFile(path, 41 << 20);
  if (!bytes.ok()) return bytes.status();
  std::vector<std::string> hexes;
  for (absl::string_view line : absl::StrSplit(*bytes, '\n')) {
    if (IsHex40(line)) hexes.emplace_back(line);
  }
  return std::optional<std::vector<std::string>>(std::move(hexes));
}

absl::Status StateDir::SaveQueue(const std::vector<std::string>& hexes) const {
  return WriteFileAtomically(dir_ + "/queue", absl::StrCat(absl::StrJoin(hexes, "\n"), "\n"));
}

void StateDir::Remove(const std::string& hex) const {
  std::error_code ec;
  std::filesystem::remove(absl::StrCat(TorrentsDir(), "/", hex, ".record"), ec);
  std::filesystem::remove(absl::StrCat(TorrentsDir(), "/", hex, ".torrent"), ec);
}

}  // namespace torrenty::io
