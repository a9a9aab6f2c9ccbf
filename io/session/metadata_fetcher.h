// The metadata phase of a magnet download: dials the link's peers (x.pe, --peer) and the peers its
// HTTP and UDP trackers return, and drives engine::MetadataFetch on a ring of its own until the
// info dict is in and verified. The caller then starts the torrent as for a .torrent file, so the
// session's shards and coordinator never see a torrent without metainfo.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"
#include "io/session/session_config.h"

namespace torrenty::io {

struct MetadataFetchOptions {
  engine::InfoHash info_hash{};
  std::vector<engine::PeerAddress> peers;
  std::vector<std::string> trackers;  // http(s):// and udp:// ones are asked for peers
  uint16_t listen_port = 0;           // advertised to trackers and in our extension handshake
  // BEP 5: peers of the info-hash from the DHT too (never for a link the caller knows to be
  // private). The node listens on `dht_port` (0: any) and keeps its nodes in the state file, so
  // the session that downloads afterwards starts from what this lookup found.
  SessionConfig::Dht dht;
  uint16_t dht_port = 0;
  // Called about once a second with the connected peers and those that offer the metadata.
  std::function<void(size_t peers, size_t metadata_peers)> on_progress;
  std::function<void(const std::string&)> on_log;
  bool verbose = false;  // also a line per peer connect, close and tracker reply
  // SIGINT/SIGTERM (blocked by main) end the fetch with Cancelled. Off when another thread owns
  // the signals (`serve`), which sets `stop` instead.
  bool watch_signals = true;
  int* stop_signal = nullptr;  // receives the signal that stopped the fetch
  const std::atomic<bool>* stop = nullptr;
  int64_t timeout_ms = 0;  // 0: no limit
};

// The verified info dict (its SHA-1 is the info-hash). Cancelled when stopped; DeadlineExceeded
// after timeout_ms.
[[nodiscard]] absl::StatusOr<std::string> FetchMetadata(const MetadataFetchOptions& options);

}  // namespace torrenty::io
