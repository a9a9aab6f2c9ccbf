// The vocabulary shared by engine::Torrent, its rooms (peer sessions, piece assembly) and the
// driver in io/: configuration, the actions the engine asks for, and its statistics.
#pragma once

#include <cstdint>
#include <string>

#include "absl/types/span.h"
#include "engine/base/piece_buffer.h"
#include "engine/base/sha1.h"
#include "engine/base/types.h"
#include "engine/torrent/piece_memory.h"

namespace torrenty::engine {

class SuperSeedCounts;  // engine/torrent/super_seed.h

// Chosen by io/ when it opens a connection; never reused while the peer is known to the engine.
using PeerKey = uint32_t;

struct TorrentConfig {
  PeerId self_id{};
  uint16_t listen_port = 0;
  // Requests kept outstanding per unchoked peer (engine/torrent/request_depth.h): about
  // request_queue_ms of what the peer delivers, starting at requests_per_peer_initial, at most
  // requests_per_peer_max. 128 x 16 KiB = 2 MiB in flight: enough to keep a loopback or LAN link
  // busy, below the request-queue limits of libtorrent (2000) and others.
  uint32_t requests_per_peer_max = 128;
  uint32_t requests_per_peer_initial = 32;
  int64_t request_queue_ms = 1000;
  // Hash each block right after its copy, while it is in cache, when it extends the piece's
  // hashed prefix (engine/torrent/piece_assembly.cc); false: every piece is hashed whole by the
  // kHashPiece consumer (the hash pool).
  bool hash_on_arrival = true;
  // With hash_on_arrival off: a piece longer than this many bytes (> 0) is hashed on the pool a
  // chunk at a time while it arrives (kHashChunk, one chunk of a piece out at a time), each chunk
  // as soon as the piece's contiguous received prefix covers it, so the bytes are hashed while
  // they are still in cache and off the shard thread; the rest goes with kHashPiece. 0: off.
  // Rounded down to whole blocks.
  uint32_t hash_chunk_bytes = 0;
  // Bounded piece-assembly memory: at most this many pieces are being downloaded at once.
  uint32_t pieces_in_flight_max = 48;
  // The torrent's memory budget for piece buffers, shared by its shards
  // (engine/torrent/piece_memory.h); null: bounded by pieces_in_flight_max alone.
  PieceMemory* piece_memory = nullptr;
  // Requests a peer may queue with us; more is a protocol abuse and closes the connection.
  // libtorrent allows 2000 (max_allowed_in_request_queue) and Transmission pipelines past 512,
  // so a lower limit would drop honest peers.
  uint32_t peer_requests_queued_max = 2000;
  // Disk reads outstanding per peer while serving; bounds read-cache pressure from one peer.
  uint32_t reads_per_peer_max = 16;
  // Bytes queued for sending to one peer before we stop turning its requests into reads.
  uint32_t send_queue_bytes_max = 1 << 20;
  // Unchoked peers at once: unchoke_slots - 1 best reciprocators plus one optimistic slot
  // (BEP 3: 4 + 1).
  uint32_t unchoke_slots = 5;
  int64_t choke_round_ms = 10'000;
  uint32_t connections_max = 60;
  int64_t handshake_timeout_ms = 20'000;
  // BEP 3 keep-alives are sent every 2 minutes; a silent peer is dropped after 5 minutes.
  int64_t keepalive_interval_ms = 120'000;
  int64_t idle_timeout_ms = 300'000;
  // A peer that holds our requests and sends nothing for this long is snubbed: its requests go to
  // other peers.
  int64_t snub_timeout_ms = 60'000;
  int64_t optimistic_unchoke_interval_ms = 30'000;
  int64_t connect_retry_base_ms = 10'000;
  // BEP 11 peer exchange (`--no-pex` turns it off); private torrents never use it.
  bool pex = true;
  // BEP 16 super-seeding (engine/torrent/super_seed.h) for peers that connect while the torrent
  // is complete; `super_seed_counts` is the hand-out table shared by the torrent's shards (null:
  // one of its own).
  bool super_seed = false;
  SuperSeedCounts* super_seed_counts = nullptr;
  // A super-seeded peer with nothing left to be shown that announces nothing for this long is
  // shown a piece the swarm already has (engine/torrent/super_seed.h).
  int64_t super_seed_stall_ms = 10'000;
  uint64_t seed = 1;
};

enum class CloseReason {
  kNone,
  kProtocolError,
  kWrongInfoHash,
  kSelfConnection,
  kDuplicate,
  kTimeout,
  kBothSeeds,
  kPeerClosed,
  kBanned,
  kShutdown,
};
const char* CloseReasonName(CloseReason r);

struct Action {
  enum class Type {
    kFlush,           // peer has bytes to send: drain NextSend(peer)
    kClose,           // close the peer's socket; the engine has already forgotten it
    kConnect,         // dial address; report HandlePeerConnected / HandleConnectFailed
    kHashPiece,       // verify `buffer` against piece's hash, then HandleHashResult with it
    kWritePiece,      // write verified `buffer` to disk, then HandlePieceWritten with it
    kReadBlock,       // read [begin, begin+length) of verified piece, then HandleBlockRead
    kPieceDone,       // piece verified and on disk (for progress and resume)
    kComplete,        // every wanted piece is verified and on disk (Torrent::done())
    kNeedPeers,       // out of connectable peers: ask the tracker for more
    kFatal,           // unrecoverable (disk error): stop with `message`
    kLog,             // a notable decision worth one log line (`message`)
    kWebPieceHashed,  // a piece fetched from a web seed passed (`length` 1) or failed its hash
    kReleaseBlock,    // the engine is done with the memory HandleBlockRead lent it as `pin`
    kHashChunk,       // continue `hasher` over `chunk`, then HandleHashChunk with it
  };
  Type type = Type::kFlush;
  PeerKey peer = 0;
  PeerAddress address{};
  uint32_t piece = 0;
  uint32_t begin = 0;
  uint32_t length = 0;
  // kHashPiece, kWritePiece: the piece's bytes. The operation owns them until its result hands
  // the buffer back to the engine.
  PieceBuffer buffer;
  // kHashPiece: the engine hashed the piece's blocks as they arrived, and this is the outcome
  // (HandleHashResult takes it as is; hashing `buffer` again gives the same answer). kUnknown:
  // hash `buffer` (out-of-order arrival that the prefix never caught up with, web-seed pieces).
  enum class Verdict : uint8_t { kUnknown, kMatched, kMismatched };
  Verdict verdict = Verdict::kUnknown;
  // kHashPiece with kUnknown: `hasher` already holds SHA-1 of the buffer's first `begin` bytes
  // (hashed in chunks or on arrival); continuing it over the rest gives the piece's digest. A
  // consumer may also ignore both and hash the whole buffer. kHashChunk: the running state to
  // continue over `chunk`, handed back with HandleHashChunk.
  Sha1Hasher hasher;
  // kHashChunk: bytes of a piece buffer the engine keeps (the piece's received prefix). They stay
  // valid and unchanged until HandleHashChunk for that piece, or until the engine is destroyed,
  // so the consumer must be done with them (or dropped) before that.
  absl::Span<const uint8_t> chunk;
  CloseReason reason = CloseReason::kNone;
  uint64_t pin = 0;  // kReleaseBlock: io's handle of the block's memory
  std::string message;
  bool verbose = false;  // kLog: only shown with -v
};

struct TorrentStats {
  int64_t downloaded_payload = 0;  // bytes of blocks accepted, web-seed bytes included
  int64_t web_seed_payload = 0;    // bytes accepted from web seeds
  int64_t uploaded_payload = 0;
  int64_t verified_bytes = 0;  // bytes of pieces verified and on disk
  int64_t wasted_bytes = 0;    // duplicate or unrequested blocks, failed pieces
  uint32_t pieces_have = 0;
  uint32_t pieces_failed = 0;
  uint32_t peers_connected = 0;
  uint32_t peers_closed_for_protocol_errors = 0;
};

// What NextTimeout() answers when no timer is pending.
inline constexpr Instant kNoTimeout{INT64_MAX};

// One block of a piece, as in the wire protocol's request, piece and cancel messages.
struct BlockRequest {
  uint32_t piece;
  uint32_t begin;
  uint32_t length;
  friend bool operator==(const BlockRequest&, const BlockRequest&) = default;
};

}  // namespace torrenty::engine
