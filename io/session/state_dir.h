// The torrent list of `serve`, kept under --state-dir so a restart (also after kill -9) finds
// every added torrent: torrents/<hex info-hash>.torrent (the metainfo as added) and
// torrents/<hex>.record (engine/session/torrent_record.h). Each file is replaced atomically.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/session/session_record.h"
#include "engine/session/torrent_record.h"

namespace torrenty::io {

struct SavedTorrent {
  std::string hex;  // info-hash, 40 lowercase hex
  std::string metainfo;
  engine::TorrentRecord record;
};

class StateDir {
 public:
  // Creates dir/torrents if needed.
  [[nodiscard]] static absl::StatusOr<StateDir> Open(const std::string& dir);

  // Every torrent with both files readable; `problems` gets one line per file skipped.
  std::vector<SavedTorrent> Load(std::vector<std::string>* problems) const;
  [[nodiscard]] absl::Status SaveTorrent(const std::string& hex, const std::string& metainfo) const;
  [[nodiscard]] absl::Status SaveRecord(const std::string& hex,
                                        const engine::TorrentRecord& record) const;
  // The session settings (DIR/session.record); nullopt if none was saved yet.
  [[nodiscard]] absl::StatusOr<std::optional<engine::SessionRecord>> LoadSettings() const;
  [[nodiscard]] absl::Status SaveSettings(const engine::SessionRecord& record) const;
  // The queue order (DIR/queue: one info-hash in hex per line, first in the queue first), kept
  // in one file so that a queue move is one write, not one per torrent whose position shifted;
  // nullopt if none was saved yet. Lines that are not 40 lowercase hex digits are skipped.
  [[nodiscard]] absl::StatusOr<std::optional<std::vector<std::string>>> LoadQueue() const;
  [[nodiscard]] absl::Status SaveQueue(const std::vector<std::string>& hexes) const;
  // The record first: a torrent file without a record is skipped at load, never half-added.
  void Remove(const std::string& hex) const;
  const std::string& dir() const { return dir_; }

 private:
  explicit StateDir(std::string dir) : dir_(std::move(dir)) {}
  std::string TorrentsDir() const { return dir_ + "/torrents"; }
  std::string dir_;
};

}  // namespace torrenty::io
