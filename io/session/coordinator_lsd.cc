// The coordinator's BEP 14 local discovery: running public torrents are announced on the LAN
// through one session-wide LsdService on this ring, and the peers it hears of go to the shards
// as tracker peers do.
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "io/session/coordinator.h"

namespace torrenty::io {

void Coordinator::LsdAdd(TorrentEntry& e, engine::Instant now) {
  // BEP 27: a private torrent's peers come from its trackers only.
  if (!env_.config->local_discovery || e.meta->is_private || lsd_failed_) return;
  if (!lsd_) {
    LsdService::Options o;
    o.listen_port = env_.port;
    absl::BitGen gen;
    o.seed = absl::Uniform<uint64_t>(gen);
    absl::StatusOr<std::unique_ptr<LsdService>> s = LsdService::Create(
        ring_.get(), o,
        [this](uint64_t torrent, engine::PeerAddress peer) { OnLsdPeer(torrent, peer); },
        [this](const std::string& line) { Log(nullptr, line, /*verbose=*/true); });
    if (!s.ok()) {
      lsd_failed_ = true;
      Log(nullptr, absl::StrCat("local peer discovery unavailable: ", s.status().message()));
      return;
    }
    lsd_ = std::move(*s);
  }
  lsd_->AddTorrent(e.id, e.meta->info_hash, e.meta->is_private, now);
}

void Coordinator::LsdRemove(TorrentEntry& e) {
  if (lsd_) lsd_->RemoveTorrent(e.id);
}

void Coordinator::OnLsdPeer(uint64_t torrent, engine::PeerAddress peer) {
  TorrentEntry* e = Find(static_cast<TorrentId>(torrent));
  if (e == nullptr || e->state != TorrentEntry::State::kRunning || stopping_) return;
  Log(e, absl::StrCat("local peer discovery: ", peer.ToString()), /*verbose=*/true);
  DistributePeers(*e, {peer});
}

}  // namespace torrenty::io
