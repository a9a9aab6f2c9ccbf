// A BitTorrent session: many torrents in one process on N shards (threads, each with its own
// io_uring ring and peer connections) plus a coordinator (the thread calling Run) for trackers,
// completion, resume data, signals and the RPC. See docs/architecture.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "io/session/receive_buffer_budget.h"
#include "io/session/shared_piece_memory.h"
#include "io/disk/hash_pool.h"
#include "io/session/coordinator.h"
#include "io/session/session_config.h"
#include "io/session/shard.h"

namespace torrenty::io {

class Session {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Session>> Create(SessionConfig config);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Before Run, or on the coordinator thread (inside Call).
  absl::StatusOr<TorrentId> AddTorrent(AddTorrentParams params);
  // Runs the shards and the coordinator until the session stops (a signal, RequestStop, or a
  // torrent added with stop_session_when_complete completing). Returns a session-wide error, or
  // a torrent's disk error when config.torrent_error_is_fatal.
  absl::Status Run();
  // Thread-safe: stops the session as SIGINT/SIGTERM would.
  void RequestStop();
  // Thread-safe: runs `fn` on the coordinator thread (with the coordinator) at its next turn.
  void Call(std::function<void(Coordinator&)> fn);
  // Thread-safe: the Prometheus text of every shard's and the coordinator's instruments (the
  // body of /metrics). The torrent counts come from the coordinator's thread; while Run is not
  // looping they keep their last values.
  [[nodiscard]] absl::StatusOr<std::string> Metrics();

  uint16_t port() const { return shard_env_.port; }
  const SessionConfig& config() const { return config_; }
  int threads() const { return static_cast<int>(shards_.size()); }
  // Thread-safe: the most bytes piece buffers and receive buffers have held at once, each on its
  // own (their sum bounds what they held together).
  struct MemoryPeaks {
    int64_t budget = 0;  // --piece-memory
    int64_t pieces = 0;
    int64_t receive_buffers = 0;
  };
  MemoryPeaks memory_peaks() const {
    return {config_.piece_memory_bytes, piece_memory_->peak(), receive_budget_->peak()};
  }
  // The signal (SIGINT or SIGTERM) that stopped Run, or 0; read it after Run returns.
  int stop_signal() const { return coordinator_->stop_signal(); }
  bool stop_requested() const { return coordinator_->stop_requested(); }
  // Only before Run or on the coordinator thread.
  Coordinator& coordinator() { return *coordinator_; }

  // Blocks SIGINT/SIGTERM in the calling thread so they arrive through the ring's signalfd.
  // Call from main() before any thread starts (threads inherit the mask).
  // With `reload`, SIGHUP too (serve).
  static void BlockStopSignals(bool reload = false);

 private:
  explicit Session(SessionConfig config);

  SessionConfig config_;
  std::unique_ptr<HashPool> hash_pool_;
  std::unique_ptr<SharedPieceMemory> piece_memory_;
  std::unique_ptr<ReceiveBufferBudget> receive_budget_;
  ShardEnv shard_env_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<Coordinator> coordinator_;
  std::atomic<bool> running_{false};  // the coordinator is in Loop and answers Call
};

}  // namespace torrenty::io
