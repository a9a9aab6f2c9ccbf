// The session as the RPC server sees it (io/rpc/rpc_backend.h). Every call runs on the
// coordinator thread, which never waits on disk or network, so an answer takes one loop turn.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "io/rpc/rpc_backend.h"
#include "io/session/session.h"

namespace torrenty::io {

class SessionRpc : public rpc::RpcBackend {
 public:
  struct Options {
    std::string default_download_dir;
    // Called on the coordinator thread after a torrent is added (to save it in the state dir).
    std::function<void(Coordinator&, TorrentId, const std::string& metainfo)> on_added;
    // Called on the coordinator thread after a torrent's saved state changed or it was removed.
    std::function<void(Coordinator&, TorrentId)> on_changed;
    std::function<void(const std::string& info_hash_hex)> on_removed;
    std::function<std::string()> metrics;
    // Settings saved by an earlier run, applied over the defaults at construction.
    std::function<void(rpc::SessionSettings*)> restore_settings;
    // Called on the coordinator thread after session-set changed something (to save it).
    std::function<void(const rpc::SessionSettings&)> on_session_changed;
  };
  // Before Session::Run: it hands the seed limits and queue settings to the coordinator.
  SessionRpc(Session* session, Options options);
  // Stops and joins the metadata fetches of magnet links still running.
  ~SessionRpc() override;

  std::vector<rpc::TorrentView> GetTorrents(const std::vector<int>& ids,
                                            const rpc::ViewFields& fields) override;
  std::vector<int> RemovedIds() override;
  absl::StatusOr<rpc::AddResult> AddTorrent(const rpc::AddRequest& request) override;
  absl::Status StartTorrents(const std::vector<int>& ids) override;
  absl::Status StopTorrents(const std::vector<int>& ids) override;
  absl::Status StartTorrentsNow(const std::vector<int>& ids) override;
  absl::Status MoveInQueue(const std::vector<int>& ids, rpc::QueueDirection direction) override;
  absl::Status VerifyTorrents(const std::vector<int>& ids) override;
  absl::Status RemoveTorrents(const std::vector<int>& ids, bool delete_local_data) override;
  absl::Status SetTorrents(const std::vector<int>& ids,
                           const rpc::TorrentSettings& settings) override;
  rpc::SessionSettings GetSession() override;
  absl::Status SetSession(const rpc::SessionSettingsUpdate& update) override;
  rpc::SessionStats GetSessionStats() override;
  std::string Metrics() override;

  // Builds the view of one torrent; public for the metrics and tests.
  static rpc::TorrentView View(const TorrentEntry& e, const rpc::ViewFields& fields,
                               engine::Instant now);

 private:
  // Runs fn on the coordinator and waits for it; false if the session did not answer in time
  // (it has stopped).
  bool OnCoordinator(std::function<void(Coordinator&)> fn);
  // Runs fn on the coordinator for each torrent of `ids` that exists (all of them if `ids` is
  // empty); Unavailable if the session has stopped.
  absl::Status ForEachTorrent(const std::vector<int>& ids,
                              const std::function<void(Coordinator&, TorrentId)>& fn);

  // The .torrent bytes of AddTorrent, whichever way they came.
  absl::StatusOr<rpc::AddResult> AddBytes(std::string bytes, const rpc::AddRequest& request,
                                          const std::vector<engine::PeerAddress>& peers);
  // A magnet `filename`: the answer names the info-hash at once; the torrent is added when a
  // thread of its own has fetched and verified the metadata (io/session/metadata_fetcher.h).
  absl::StatusOr<rpc::AddResult> AddMagnet(const rpc::AddRequest& request);

  Session* const session_;
  Options options_;
  std::mutex magnet_mu_;
  std::vector<std::thread> magnet_threads_;
  std::vector<std::string> magnet_pending_;  // hex info-hashes being fetched
  std::atomic<bool> magnet_stop_{false};
  // Coordinator thread only.
  std::vector<int> removed_;
  rpc::SessionSettings settings_;
  int64_t started_unix_ = 0;
};

}  // namespace torrenty::io
