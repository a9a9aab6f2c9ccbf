// The coordinator's part of BEP 11 peer exchange. A torrent's connections are spread over the
// shards, and each shard's engine knows only its own; so that a ut_pex message lists the whole
// swarm we are connected to, every shard reports its peers here when they change (at most once
// per publish interval) and receives the union of the other shards' lists.
#include "io/session/coordinator.h"

namespace torrenty::io {

void Coordinator::RelayPexPeers(TorrentEntry& e, int shard,
                                std::vector<engine::pex::PexPeer> peers) {
  const size_t n = env_.inboxes.size();
  if (e.state != TorrentEntry::State::kRunning || stopping_ || shard < 0 ||
      static_cast<size_t>(shard) >= n || e.pex_by_shard.size() != n) {
    return;
  }
  e.pex_by_shard[static_cast<size_t>(shard)] = std::move(peers);
  for (size_t to = 0; to < n; ++to) {
    if (to == static_cast<size_t>(shard)) continue;
    ShardMessage m;
    m.type = ShardMessage::Type::kPexPeers;
    m.id = e.id;
    for (size_t from = 0; from < n; ++from) {
      if (from == to) continue;
      const std::vector<engine::pex::PexPeer>& list = e.pex_by_shard[from];
      m.pex_peers.insert(m.pex_peers.end(), list.begin(), list.end());
    }
    env_.inboxes[to]->Post(std::move(m));
  }
}

}  // namespace torrenty::io
