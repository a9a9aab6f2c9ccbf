// What a session is told at start-up, and what it reports per torrent.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/base/bitfield.h"
#include "engine/base/types.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::io {

using TorrentId = uint32_t;

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

enum class Verbosity {
  kQuiet,   // nothing: errors come back from Run()
  kNormal,  // tracker errors, bans, failed pieces, choking decisions, and one line when no
            // known peer is reachable
  kVerbose  // also every peer connect and close with its reason, tracker replies
};

struct SessionConfig {
  // Listening port; 0 = first free of 6881-6889, else an ephemeral one.
  uint16_t port = 0;
  bool port_explicit = false;
  // --bind: listen on and dial from this address only (port unused).
  engine::PeerAddress bind_address{};
  bool bind_given = false;
  int hash_threads = 2;
  // Memory for pieces being assembled, over all shards and torrents; when it is used up, fewer
  // requests go out instead of more memory being taken.
  int64_t piece_memory_bytes = int64_t{32} << 20;
  // Session-wide rate limits of peer traffic (payload and protocol), bytes/s; 0 = unlimited.
  int64_t max_download_rate = 0;
  int64_t max_upload_rate = 0;
  // Shards (threads, each with its own io_uring ring); 0 = one per online CPU.
  int threads = 0;
  // Torrent data files open at once, over all shards (each shard's pool gets its share, at least
  // one): a torrent without peers holds none.
  int max_open_files = 512;
  // BEP 14 local service discovery (multicast on the LAN) for public torrents. Off unless asked
  // for, so embedders and tests stay off the LAN; the CLI asks unless --no-lsd.
  bool local_discovery = false;
  // BEP 11 peer exchange for public torrents (private ones never use it).
  bool pex = true;
  // BEP 16 super-seeding for every torrent that does not say otherwise (AddTorrentParams).
  bool super_seed = false;
  // TorrentConfig::hash_on_arrival. Off: every piece is hashed whole on the hash pool, which
  // measured faster for a download from one fast peer (docs/architecture.md, "Hashing");
  // `torrenty bench --hash-on-arrival` compares.
  bool hash_on_arrival = false;
  // TorrentConfig::hash_chunk_bytes: pieces longer than this are hashed on the pool a chunk at a
  // time while they arrive (0: whole, once complete). `torrenty bench --hash-chunk` compares.
  uint32_t hash_chunk_bytes = 0;
  // BEP 19 web seeds (`url-list`), and a cap on their traffic per torrent in bytes/s (0: none).
  bool web_seeds = true;
  int64_t web_seed_max_rate = 0;
  // SIGINT/SIGTERM stop the session (through a signalfd; see BlockStopSignals).
  bool handle_signals = true;
  // A torrent's disk error ends the session with that error (single-torrent commands); else the
  // torrent stops with the error and the others go on (serve).
  bool torrent_error_is_fatal = false;
  // serve's state folder: resume data goes to <state_dir>/resume. Empty: next to the data
  // (<download dir>/.torrenty), as the single-torrent commands keep it.
  std::string state_dir;
  // Log lines start with the torrent's name (serve hosts many).
  bool log_torrent_names = false;
  Verbosity verbosity = Verbosity::kNormal;
  // Log lines for notable events (tracker errors, peer bans); one line each, no newline, control
  // characters escaped. Called on the coordinator thread.
  std::function<void(const std::string&)> on_log;
  // About once a second and once at the end, for every torrent; on the coordinator thread.
  std::function<void(TorrentId, const SessionProgress&)> on_progress;
  // When set, SIGHUP calls it (on the coordinator thread) instead of being ignored; it must be
  // blocked too (Session::BlockStopSignals(true)).
  std::function<void()> on_reload;
  // About once a second on the coordinator thread (serve's watch folder).
  std::function<void()> on_tick;
  // The coordinator changed a torrent's saved state by itself (a seed limit stopped it).
  std::function<void(TorrentId)> on_torrent_changed;
  // The session's DHT node (BEP 5), on the UDP port of the same number as the peer port. Off
  // unless a command turns it on; private torrents never use it.
  struct Dht {
    bool enabled = false;
    std::vector<std::string> bootstrap;  // HOST:PORT
    std::string state_file;              // good nodes and our id between runs; empty: none
  } dht;
};

struct AddTorrentParams {
  std::shared_ptr<const engine::Metainfo> meta;
  std::string data_dir;  // content lives at data_dir/<name>
  // Pieces verified on disk. Without it the session checks the data on its checker thread
  // (resume data if its file stamps match, else a full recheck) before the torrent starts.
  std::optional<engine::Bitfield> have;
  std::vector<engine::PeerAddress> peers;  // dialled in addition to what trackers return
  bool paused = false;
  // The download command: the session stops once this torrent is complete and on disk.
  bool stop_session_when_complete = false;
  int64_t added_date = 0;  // unix seconds; 0 = now
  // File selection: one flag per file of the metainfo (pad files included); empty = all wanted.
  // Only pieces that touch a wanted file are fetched, and "complete" means those are had.
  std::vector<bool> files_wanted;
  // BEP 16 super-seeding once complete; unset: SessionConfig::super_seed.
  std::optional<bool> super_seed;
};

}  // namespace torrenty::io
