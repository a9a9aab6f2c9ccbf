// The coordinator's DHT: the session's one node (io/dht/dht_driver) runs on the coordinator's
// ring; every running torrent that is not private (BEP 27) looks for peers with get_peers every
// 15 minutes, every 30 s while it has none, and announces our port to the closest nodes. Peers
// found take the same path as a tracker's.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "io/session/coordinator.h"

namespace torrenty::io {
namespace {

using engine::Instant;

constexpr int64_t kLookupEveryMs = 15 * 60 * 1000;
constexpr int64_t kLookupWhenDryMs = 30'000;
constexpr int64_t kSaveEveryMs = 10 * 60 * 1000;

}  // namespace

void Coordinator::DhtTick(Instant now) {
  const SessionConfig::Dht& cfg = env_.config->dht;
  if (!cfg.enabled || dht_failed_ || stopping_) return;
  if (!dht_) {
    if (env_.port == 0) return;
    DhtDriver::Options o;
    o.port = env_.port;
    o.bootstrap = cfg.bootstrap;
    o.state_file = cfg.state_file;
    o.on_log = [this](const std::string& line) { Log(nullptr, line); };
    o.on_peers = [this](const engine::InfoHash& ih, const std::vector<engine::PeerAddress>& peers) {
      TorrentEntry* e = FindByHash(ih);
      if (e == nullptr || !e->meta || e->meta->is_private) return;
      Log(e, absl::StrCat("dht: ", peers.size(), " peers"), /*verbose=*/true);
      DistributePeers(*e, peers);
    };
    o.on_lookup_done = [this](const engine::InfoHash& ih, int responded, int announced, bool v6) {
      TorrentEntry* e = FindByHash(ih);
      if (e == nullptr) return;
      Log(e,
          absl::StrCat("dht: get_peers done", v6 ? " (IPv6)" : "", ": ", responded,
                       " nodes answered, announced to ", announced),
          /*verbose=*/true);
    };
    absl::StatusOr<std::unique_ptr<DhtDriver>> d =
        DhtDriver::Create(ring_.get(), std::move(o), now);
    if (!d.ok()) {
      dht_failed_ = true;
      Log(nullptr, absl::StrCat("dht: unavailable: ", d.status().message()));
      return;
    }
    dht_ = std::move(*d);
    dht_saved_ = now;
    Log(nullptr, absl::StrCat("dht: node on UDP port ", dht_->port()), /*verbose=*/true);
  }
  dht_->Tick(now);
  if (now.ms - dht_saved_.ms >= kSaveEveryMs) DhtSave(now);
  if (dht_->nodes() == 0) return;
  if (dht_next_.size() > 2 * torrents_.size() + 16) {
    absl::erase_if(dht_next_, [this](const auto& kv) { return !torrents_.contains(kv.first); });
  }
  for (TorrentId id : order_) {
    TorrentEntry& e = *torrents_[id];
    if (e.state != TorrentEntry::State::kRunning || !e.meta || e.meta->is_private) continue;
    // The last lookup, from this run of the torrent (a restart looks at once).
    auto it = dht_next_.try_emplace(id, Instant{0}).first;
    if (it->second < e.started) it->second = Instant{0};
    const bool dry = !e.done() && e.peers_connected() == 0;
    if (it->second.ms != 0 && now.ms - it->second.ms < (dry ? kLookupWhenDryMs : kLookupEveryMs)) {
      continue;
    }
    if (!dht_->GetPeers(e.meta->info_hash, env_.port, now)) break;  // busy: next tick
    it->second = now;
  }
}

void Coordinator::DhtSave(Instant now) {
  if (!dht_) return;
  dht_saved_ = now;
  if (absl::Status st = dht_->Save(now); !st.ok()) {
    Log(nullptr, absl::StrCat("dht: cannot save nodes: ", st.message()));
  }
}

}  // namespace torrenty::io
