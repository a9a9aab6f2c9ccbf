#include "io/session/torrent_session.h"

#include "absl/strings/str_cat.h"

namespace torrenty::io {

absl::StatusOr<std::unique_ptr<TorrentSession>> TorrentSession::Create(const engine::Metainfo& meta,
                                                                       const engine::Bitfield& have,
                                                                       SessionOptions options) {
  SessionConfig config;
  config.port = options.port;
  config.port_explicit = options.port_explicit;
  config.bind_address = options.bind_address;
  config.bind_given = options.bind_given;
  config.hash_threads = options.hash_threads;
  config.piece_memory_bytes = options.piece_memory_bytes;
  config.threads = options.threads;
  config.max_open_files = options.max_open_files;
  config.max_download_rate = options.max_download_rate;
  config.max_upload_rate = options.max_upload_rate;
  config.torrent_error_is_fatal = true;
  config.verbosity = options.verbosity;
  config.dht = options.dht;
  config.local_discovery = options.local_discovery;
  config.pex = options.pex;
  config.super_seed = options.super_seed;
  config.hash_on_arrival = options.hash_on_arrival;
  config.hash_chunk_bytes = options.hash_chunk_bytes;
  config.web_seeds = options.web_seeds;
  config.web_seed_max_rate = options.web_seed_max_rate;
  config.on_log = std::move(options.on_log);
  // Filled in below, once the TorrentSession exists to record the last progress.
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(std::move(config));
  if (!session.ok()) return session.status();
  std::unique_ptr<TorrentSession> ts(new TorrentSession(meta, std::move(*session)));
  AddTorrentParams params;
  // The caller keeps the metainfo alive for the session's life: share it without owning it.
  params.meta = std::shared_ptr<const engine::Metainfo>(std::shared_ptr<void>(), &meta);
  params.data_dir = options.data_dir;
  params.have = have;
  params.peers = std::move(options.peers);
  params.files_wanted = std::move(options.files_wanted);
  params.stop_session_when_complete = !options.seed_after_complete;
  absl::StatusOr<TorrentId> id = ts->session_->AddTorrent(std::move(params));
  if (!id.ok()) return id.status();
  ts->id_ = *id;
  TorrentSession* raw = ts.get();
  ts->session_->coordinator().set_on_progress(
      [raw, on_progress = std::move(options.on_progress)](TorrentId, const SessionProgress& p) {
        raw->complete_ = p.complete;
        raw->have_count_ = p.pieces_have;
        if (on_progress) on_progress(p);
      });
  return ts;
}

absl::Status TorrentSession::Run() {
  absl::Status st = session_->Run();
  if (!st.ok()) return st;
  if (session_->stop_requested() && !complete_) {
    return absl::CancelledError(absl::StrCat(
        "stopped before the download completed (", have_count_, "/", meta_.num_pieces(),
        " pieces verified; run the same command again to resume)"));
  }
  return absl::OkStatus();
}

}  // namespace torrenty::io
