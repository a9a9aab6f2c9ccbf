// Control messages between the coordinator and the shards. They carry per-piece, per-peer-list
// and per-torrent events, never blocks: the block path stays inside one shard.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "engine/base/rate_limiter.h"
#include "engine/base/types.h"
#include "engine/pex/ut_pex.h"
#include "io/session/peer_outcomes.h"
#include "io/session/session_torrent.h"

namespace torrenty::io {

struct ShardMessage {
  enum class Type {
    kActivate,    // `torrent` may now be served, dialled and accepted
    kDeactivate,  // close its peers, finish its disk work, then answer kDeactivated
    kPeers,       // dial candidates for `id`
    kHave,        // another shard verified `piece` of `id`
    kStop,        // the session stops: close everything and end the loop
    kRateShares,  // the shard's new shares of the rate limits; it answers with kRateUsage
    kPexPeers,    // `pex_peers`: the peers of `id` connected on the other shards
  };
  Type type = Type::kHave;
  TorrentId id = 0;
  SessionTorrent* torrent = nullptr;
  uint32_t piece = 0;
  std::vector<engine::PeerAddress> peers;
  engine::ShardShares shares;
  std::vector<engine::pex::PexPeer> pex_peers;
};

struct CoordinatorMessage {
  enum class Type {
    kHave,          // shard verified and wrote `piece` of `id`
    kNeedPeers,     // a shard ran out of candidates for `id`
    kLog,           // `text` for the log (already escaped by nobody: the coordinator escapes)
    kFatal,         // `id` hit a disk error (`text`); id 0 with `session_wide`: the shard died
    kPeerOutcome,   // what became of a dialled `address` of `id`
    kDeactivated,   // `shard` has let go of `id`
    kShardStopped,  // `shard`'s loop has ended
    kRequestStop,   // Session::RequestStop
    kCall,          // run `call` on the coordinator thread (RPC, embedders)
    kRateUsage,     // what `shard` moved under its rate-limit shares since the previous ones
    kPexPeers,      // `pex_peers`: the peers of `id` now connected on `shard`
  };
  Type type = Type::kHave;
  TorrentId id = 0;
  uint32_t piece = 0;
  int shard = 0;
  bool session_wide = false;
  engine::PeerAddress address{};
  PeerOutcome outcome = PeerOutcome::kFine;
  std::string text;
  std::function<void()> call;
  engine::ShardUsage usage;
  std::vector<engine::pex::PexPeer> pex_peers;
};

}  // namespace torrenty::io
