// Runs one torrent on one io_uring event loop: listens, dials, moves peer bytes between sockets
// and the sans-I/O engine::Torrent, hashes on the HashPool, writes and reads pieces through
// DiskIo, announces through HttpFetcher. Everything here happens on the thread calling Run().
#pragma once

#include <csignal>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/bitfield.h"
#include "engine/metainfo/metainfo.h"
#include "engine/base/types.h"

namespace torrenty::io {

struct SessionProgress {
  uint32_t pieces_have = 0;
  uint32_t pieces_total = 0;
  int64_t verified_bytes = 0;
  int64_t total_bytes = 0;
  int64_t downloaded_payload = 0;
  int64_t uploaded_payload = 0;
  double download_rate = 0;  // bytes/s over the last interval
  double upload_rate = 0;
  uint32_t peers = 0;
  bool complete = false;
  double elapsed_s = 0;
};

struct SessionOptions {
  std::string data_dir;  // content lives at data_dir/<name>
  // Listening port; 0 = first free of 6881-6889, else an ephemeral one.
  uint16_t port = 0;
  bool port_explicit = false;
  std::vector<engine::PeerAddress> peers;  // dialled in addition to what trackers return
  bool seed_after_complete = false;        // keep serving after the download completes
  int hash_threads = 2;
  // Memory for pieces being assembled, over all shards; when it is used up, fewer requests go
  // out instead of more memory being taken.
  int64_t piece_memory_bytes = int64_t{32} << 20;
  // Shards (threads, each with its own io_uring ring); 0 = one per online CPU.
  int threads = 0;
  // Called on the loop thread about once a second and once at the end.
  std::function<void(const SessionProgress&)> on_progress;
  // Log lines for notable events (tracker errors, peer bans); one line each, no newline, control
  // characters escaped. How many depends on `verbosity`.
  std::function<void(const std::string&)> on_log;
  enum class Verbosity {
    kQuiet,   // nothing: errors come back from Run()
    kNormal,  // tracker errors, bans, failed pieces, choking decisions, and one line when no
              // known peer is reachable
    kVerbose  // also every peer connect and close with its reason, tracker replies
  };
  Verbosity verbosity = Verbosity::kNormal;
};

class TorrentSession {
 public:
  // `have` are pieces already verified on disk. The metainfo must outlive the session.
  static absl::StatusOr<std::unique_ptr<TorrentSession>> Create(const engine::Metainfo& meta,
                                                                const engine::Bitfield& have,
                                                                SessionOptions options);
  ~TorrentSession();

  // Returns OK when the download completed (and, with seed_after_complete or for a complete
  // torrent, when stopped by SIGINT/SIGTERM); Cancelled when a signal stopped an unfinished
  // download; another error for disk failures.
  absl::Status Run();
  // Thread-safe: asks a running (or about to run) session to stop as SIGINT/SIGTERM would, so
  // Run returns OK for a complete torrent and Cancelled for an unfinished download. For
  // embedders and tests, where signals (process-wide) cannot target one session.
  void RequestStop();
  uint16_t port() const;
  int threads() const;
  // The signal (SIGINT or SIGTERM) that stopped Run, or 0; read it after Run returns.
  int stop_signal() const;

  // Blocks SIGINT/SIGTERM in the calling thread so they arrive through the ring's signalfd.
  // Call from main() before any thread starts (threads inherit the mask).
  static void BlockStopSignals();

  struct Impl;
  struct Shared;

 private:
  explicit TorrentSession(std::unique_ptr<Shared> shared);
  std::unique_ptr<Shared> shared_;
};

}  // namespace torrenty::io
