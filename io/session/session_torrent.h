// One torrent of a session, as the shards see it: what they may read (set before the torrent is
// announced to them and never changed while they know it) and what they publish for the
// coordinator (relaxed atomics: statistics, read once a second).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/metainfo/metainfo.h"
#include "engine/torrent/torrent.h"
#include "io/disk/file_store.h"
#include "io/session/session_config.h"
#include "io/session/shared_piece_claims.h"
#include "io/session/shared_super_seed_counts.h"

namespace torrenty::io {

struct ShardTorrentCounters {
  std::atomic<int64_t> downloaded{0};  // payload bytes
  std::atomic<int64_t> uploaded{0};
  std::atomic<uint32_t> peers{0};
  std::atomic<uint32_t> seeds_connected{0};
};

struct SessionTorrent {
  SessionTorrent(TorrentId id, std::shared_ptr<const engine::Metainfo> meta, int shards)
      : id(id),
        shards(shards),
        meta(std::move(meta)),
        claims(this->meta->num_pieces()),
        super_seed_counts(this->meta->num_pieces()),
        counters(new ShardTorrentCounters[static_cast<size_t>(shards)]) {}

  const TorrentId id;
  const int shards;
  const std::shared_ptr<const engine::Metainfo> meta;
  std::string data_dir;
  std::unique_ptr<FileStore> store;
  // Which pieces are claimed by a shard or done: the shards' shared view of the torrent.
  SharedPieceClaims claims;
  // BEP 16: how often each piece was handed out, over the shards (engine/torrent/super_seed.h).
  SharedSuperSeedCounts super_seed_counts;
  engine::TorrentConfig engine_config;  // self id, port, budgets; the seed is set per shard
  // File selection: the pieces to fetch (engine::Torrent::SetWanted); empty = every piece.
  engine::Bitfield wanted;
  std::unique_ptr<ShardTorrentCounters[]> counters;  // one per shard
};

}  // namespace torrenty::io
