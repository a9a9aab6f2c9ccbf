// BEP 19 web seeds (`url-list`), sans-I/O: which pieces to fetch from which HTTP server, the
// Range requests that fetch them (one request covers a run of pieces, one request per file the
// run touches), checking each response, backoff, and dropping a server whose pieces fail their
// SHA-1. The bytes go to the torrent through WebSeedHost, so they take the same piece buffers
// (within the memory budget), hash check and write as blocks from peers. io/webseed drives it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/base/types.h"
#include "engine/metainfo/file_map.h"
#include "engine/metainfo/metainfo.h"

namespace torrenty::engine::webseed {

struct WebSeedConfig {
  // Requests in flight per server (libtorrent and aria2 open a few connections to one mirror).
  uint32_t connections_per_seed = 4;
  // One request covers a run of consecutive pieces up to this many bytes (at least one piece):
  // fewer round trips, while each run still fits the piece-memory budget a few times over.
  int64_t request_bytes_max = int64_t{4} << 20;
  // A server whose pieces fail their hash this many times is dropped for the torrent's lifetime.
  uint32_t bad_pieces_max = 3;
  // After a failed request (transport error, 4xx/5xx, short or mismatched body) the server rests
  // base * 2^(failures-1), up to max; a 503's Retry-After is honoured up to retry_after_max_ms.
  int64_t backoff_base_ms = 1'000;
  int64_t backoff_max_ms = 120'000;
  int64_t retry_after_max_ms = 600'000;
  // Bytes/s over all web seeds of the torrent; 0 = unlimited.
  int64_t max_rate = 0;
  // Origin budget: a piece some connected peer has is left to the peers unless no peer has
  // delivered payload for this long (a choking or slow swarm must not stall the download).
  int64_t peer_stall_ms = 3'000;
  // In a swarm (some peer connected) at most this many requests of one piece each are in
  // flight, over all servers: N hosts of a fleet share one origin, and each piece a host has
  // committed to the origin is one its peers cannot fetch from it and may fetch from the origin
  // too. Runs of 4 MiB on 4 connections had each of 4-8 hosts commit half of a 32 MiB file at
  // once, and the origin sent 2.7-5 copies (bench/fleet). Alone, a host uses the limits above.
  uint32_t swarm_requests = 2;
  // For this long after its first poll the host counts as in a swarm even with no peer yet: a
  // fleet host starts its web seeds before the tracker has named any peer, and whole runs started
  // then were what the origin sent over and over (io sets 3 s for a torrent with trackers; 0 =
  // trust Peers() at once).
  int64_t swarm_grace_ms = 0;
  // Where the scan for pieces starts: hosts started together begin at different pieces, so the
  // origin serves each piece about once and the hosts trade the rest among themselves.
  uint64_t seed = 1;
};

// What the web seeds need from the torrent they feed: engine::Torrent (through io/webseed) or a
// test's fake.
class WebSeedHost {
 public:
  virtual ~WebSeedHost() = default;
  // Wanted, not had, and nobody (peer or web seed, on any shard) is fetching it.
  virtual bool Fetchable(uint32_t piece) const = 0;
  // Connected peers that have the piece.
  virtual uint32_t Availability(uint32_t piece) const = 0;
  // Payload bytes received from peers so far (web-seed bytes not included).
  virtual int64_t PeerPayload() const = 0;
  // Peers connected now.
  virtual uint32_t Peers() const = 0;
  // Claims the piece and reserves its buffer within the piece-memory budget; false: not now.
  virtual bool Start(uint32_t piece) = 0;
  // Bytes [begin, begin + data.size()) of a started piece; each byte is delivered once. When
  // the last one is in, the piece is hashed and written like one from peers.
  virtual void Data(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data) = 0;
  // Gives up a started piece whose bytes are not all in: claim and buffer are released.
  virtual void Cancel(uint32_t piece) = 0;
};

// An HTTP GET of bytes [first, last] (inclusive, as the Range header says) of `url`.
struct RangeRequest {
  uint64_t id = 0;
  size_t seed = 0;
  std::string url;
  int64_t first = 0;
  int64_t last = 0;
};

// What came back for a RangeRequest. `error` non-empty: no HTTP response (transport error,
// timeout, oversized body). Header values are as received (empty when absent).
struct RangeResponse {
  std::string error;
  int status = 0;
  absl::string_view content_range;
  absl::string_view retry_after;
  absl::Span<const uint8_t> body;
};

struct ContentRange {
  int64_t first = 0;
  int64_t last = 0;
  int64_t total = -1;  // "*": unknown
};
// `bytes FIRST-LAST/TOTAL` or `bytes FIRST-LAST/*` (RFC 9110 14.4); nullopt for anything else,
// including FIRST > LAST, LAST >= TOTAL and numbers past 2^62.
std::optional<ContentRange> ParseContentRange(absl::string_view value);
// Retry-After as delta-seconds; nullopt for an HTTP-date or garbage (the normal backoff applies).
std::optional<int64_t> ParseRetryAfter(absl::string_view value);
// RFC 3986 percent-encoding of one path component (unreserved characters kept).
std::string PercentEncode(absl::string_view component);
// BEP 19: the URL of file `file_index` under web seed `base`. Single-file: `base` itself, or
// base + name when it ends in '/'. Multi-file: base + ['/'] + name + '/' + path, encoded.
std::string FileUrl(absl::string_view base, const Metainfo& meta, size_t file_index);

class WebSeeds {
 public:
  WebSeeds(const Metainfo& meta, std::vector<std::string> urls, WebSeedConfig config);

  // Starts what may start now: appends the requests to issue to `out`.
  void Poll(Instant now, WebSeedHost& host, std::vector<RangeRequest>* out);
  // The outcome of request `id`. Unknown ids (a dropped server's, a cancelled run's) are ignored.
  void HandleResponse(uint64_t id, const RangeResponse& response, Instant now, WebSeedHost& host);
  // A piece whose bytes came from a web seed failed (or passed) its hash check.
  void HandlePieceHashed(uint32_t piece, bool ok, Instant now, WebSeedHost& host);
  // Lines worth logging (server dropped, backing off); cleared by the call.
  void TakeLogs(std::vector<std::string>* out);

  // Some server is neither dropped nor out of the torrent's list.
  bool active() const;
  size_t requests_in_flight() const { return requests_.size(); }
  int64_t bytes_received() const { return bytes_received_; }
  size_t num_seeds() const { return seeds_.size(); }
  bool dropped(size_t seed) const { return seeds_[seed].dropped; }
  uint32_t bad_pieces(size_t seed) const { return seeds_[seed].bad_pieces; }
  Instant retry_at(size_t seed) const { return seeds_[seed].retry_at; }

 private:
  struct Seed {
    std::string url;
    bool dropped = false;
    uint32_t bad_pieces = 0;
    uint32_t failures = 0;  // consecutive failed requests
    Instant retry_at{INT64_MIN / 2};
    uint32_t runs = 0;  // runs in flight
  };
  // A run of consecutive pieces fetched from one server with one request per file it touches.
  struct Run {
    size_t seed = 0;
    uint32_t first_piece = 0;
    uint32_t last_piece = 0;
    std::vector<int64_t> piece_left;  // bytes not yet delivered, per piece of the run
    uint32_t requests_left = 0;
  };
  struct Request {
    uint64_t run = 0;
    int64_t torrent_offset = 0;
    int64_t first = 0;
    int64_t last = 0;
  };

  bool Eligible(uint32_t piece, bool peers_delivering, const WebSeedHost& host) const;
  bool StartRun(size_t seed, Instant now, WebSeedHost& host, bool peers_delivering, bool in_swarm,
                std::vector<RangeRequest>* out);
  void Deliver(Run& run, int64_t torrent_offset, absl::Span<const uint8_t> data, WebSeedHost& host);
  void FailRun(uint64_t run_id, WebSeedHost& host);
  void Backoff(Seed& seed, Instant now, std::optional<int64_t> retry_after_s,
               absl::string_view why);
  void Drop(size_t seed, WebSeedHost& host, absl::string_view why);
  void Refill(Instant now);

  const Metainfo& meta_;
  WebSeedConfig config_;
  FileMap file_map_;
  std::vector<Seed> seeds_;
  absl::flat_hash_map<uint64_t, Run> runs_;
  absl::flat_hash_map<uint64_t, Request> requests_;
  // Pieces delivered and being hashed: which server sent them.
  absl::flat_hash_map<uint32_t, size_t> hashing_;
  uint64_t next_id_ = 1;
  uint32_t cursor_ = 0;
  int64_t bytes_received_ = 0;
  // Peer payload last seen, and when it last grew.
  int64_t peer_payload_seen_ = 0;
  Instant peer_payload_at_{INT64_MIN / 2};
  Instant first_poll_{INT64_MIN / 2};
  // Rate cap: tokens may go negative by one run (the run's bytes are taken when it starts).
  double tokens_ = 0;
  Instant refilled_at_{INT64_MIN / 2};
  std::vector<std::string> logs_;
  std::vector<FileSlice> slices_;  // scratch
};

}  // namespace torrenty::engine::webseed
