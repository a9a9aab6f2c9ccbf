// Drives engine::webseed::WebSeeds for one torrent on the shard that hosts its web seeds: the
// requests go out as HTTP Range GETs through an HttpFetcher (libcurl on its worker thread), and
// the bytes go into that shard's engine::Torrent, whose claims, budgeted piece buffers, hash
// check and writes are the same as for peer blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/base/types.h"
#include "engine/torrent/torrent.h"
#include "engine/webseed/web_seed.h"
#include "io/tracker/http_fetcher.h"

namespace torrenty::io {

class WebSeedDriver {
 public:
  // Request ids carry the torrent's id in their top bits, so one fetcher serves every torrent
  // of a shard.
  static constexpr int kIdShift = 40;
  static uint32_t TorrentOf(uint64_t request_id) {
    return static_cast<uint32_t>(request_id >> kIdShift);
  }

  // `elsewhere` returns the payload the torrent's other shards received (they publish it once a
  // second): peers delivering anywhere count for the origin budget.
  WebSeedDriver(uint32_t torrent_id, const engine::Metainfo& meta, engine::Torrent* torrent,
                HttpFetcher* fetcher, engine::webseed::WebSeedConfig config,
                std::function<int64_t()> elsewhere);
  ~WebSeedDriver();
  WebSeedDriver(const WebSeedDriver&) = delete;
  WebSeedDriver& operator=(const WebSeedDriver&) = delete;

  // Starts the requests that may start now; returns when to call it again.
  engine::Instant Poll(engine::Instant now);
  void HandleResult(const HttpResult& result, engine::Instant now);
  // The torrent's kWebPieceHashed action.
  void HandlePieceHashed(uint32_t piece, bool ok, engine::Instant now);
  void TakeLogs(std::vector<std::string>* out) { seeds_.TakeLogs(out); }
  int64_t bytes_received() const { return seeds_.bytes_received(); }

 private:
  class Host;

  const uint32_t torrent_id_;
  engine::Torrent* const torrent_;
  HttpFetcher* const fetcher_;
  const int64_t max_rate_;
  std::unique_ptr<Host> host_;
  engine::webseed::WebSeeds seeds_;
  std::vector<engine::webseed::RangeRequest> requests_;  // scratch
};

}  // namespace torrenty::io
