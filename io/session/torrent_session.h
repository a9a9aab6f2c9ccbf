// One torrent in its own session, for the single-torrent commands (`download`, `seed`): the same
// Session that `serve` runs, told to stop when the download is complete and to treat a disk
// error as the end of the run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/bitfield.h"
#include "engine/base/types.h"
#include "engine/metainfo/metainfo.h"
#include "io/session/session.h"
#include "io/session/session_config.h"

namespace torrenty::io {

struct SessionOptions {
  using Verbosity = io::Verbosity;
  std::string data_dir;  // content lives at data_dir/<name>
  // Listening port; 0 = first free of 6881-6889, else an ephemeral one.
  uint16_t port = 0;
  bool port_explicit = false;
  engine::PeerAddress bind_address{};  // --bind, when bind_given
  bool bind_given = false;
  std::vector<engine::PeerAddress> peers;  // dialled in addition to what trackers return
  bool seed_after_complete = false;        // keep serving after the download completes
  // File selection (AddTorrentParams::files_wanted): empty = every file.
  std::vector<bool> files_wanted;
  int hash_threads = 2;
  int64_t piece_memory_bytes = int64_t{32} << 20;
  int threads = 0;                                     // shards; 0 = one per online CPU
  int max_open_files = 512;                            // SessionConfig::max_open_files
  int64_t max_download_rate = 0, max_upload_rate = 0;  // bytes/s; 0 = unlimited
  // Called on the coordinator thread about once a second and once at the end.
  std::function<void(const SessionProgress&)> on_progress;
  std::function<void(const std::string&)> on_log;
  Verbosity verbosity = Verbosity::kNormal;
  SessionConfig::Dht dht;
  bool local_discovery = false;   // SessionConfig::local_discovery
  bool pex = true;                // SessionConfig::pex
  bool web_seeds = true;          // SessionConfig::web_seeds
  int64_t web_seed_max_rate = 0;  // SessionConfig::web_seed_max_rate
  bool super_seed = false;        // SessionConfig::super_seed
  bool hash_on_arrival = false;   // SessionConfig::hash_on_arrival
  uint32_t hash_chunk_bytes = 0;  // SessionConfig::hash_chunk_bytes
};

class TorrentSession {
 public:
  // `have` are pieces already verified on disk. The metainfo must outlive the session.
  static absl::StatusOr<std::unique_ptr<TorrentSession>> Create(const engine::Metainfo& meta,
                                                                const engine::Bitfield& have,
                                                                SessionOptions options);

  // Returns OK when the download completed (and, with seed_after_complete or for a complete
  // torrent, when stopped by SIGINT/SIGTERM); Cancelled when a signal stopped an unfinished
  // download; another error for disk failures.
  absl::Status Run();
  // Thread-safe: stops as SIGINT/SIGTERM would. For embedders and tests, where signals
  // (process-wide) cannot target one session.
  void RequestStop() { session_->RequestStop(); }
  uint16_t port() const { return session_->port(); }
  int threads() const { return session_->threads(); }
  Session::MemoryPeaks memory_peaks() const { return session_->memory_peaks(); }
  // The signal (SIGINT or SIGTERM) that stopped Run, or 0; read it after Run returns.
  int stop_signal() const { return session_->stop_signal(); }

  static void BlockStopSignals() { Session::BlockStopSignals(); }

 private:
  TorrentSession(const engine::Metainfo& meta, std::unique_ptr<Session> session)
      : meta_(meta), session_(std::move(session)) {}
  const engine::Metainfo& meta_;
  std::unique_ptr<Session> session_;
  TorrentId id_ = 0;
  bool complete_ = false;
  uint32_t have_count_ = 0;
};

}  // namespace torrenty::io
