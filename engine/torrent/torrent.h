// The sans-I/O state machine of one torrent: peer wire sessions, block requests, piece assembly,
// verification hand-off, serving, choking and the peer candidate list. It is fed bytes, I/O
// results and time by io/, and answers with Actions; it never touches a socket, file or clock.
//
// Call protocol (quinn-proto style): after every Handle*() call, drain TakeActions() and execute
// the actions in order; for every peer named by a kFlush action, call NextSend() until it returns
// an empty span or a send is already in flight, and report completed sends with HandleSent().
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/torrent/choker.h"
#include "engine/metainfo/file_map.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/piece_claims.h"
#include "engine/torrent/piece_memory.h"
#include "engine/torrent/piece_picker.h"
#include "engine/base/types.h"
#include "engine/codec/wire.h"

namespace torrenty::engine {

// Piece buffers are aligned so a later O_DIRECT write path can use them as they are.
struct PieceBufferDelete {
  static constexpr size_t kAlignment = 4096;
  void operator()(uint8_t* p) const { ::operator delete[](p, std::align_val_t(kAlignment)); }
};
using PieceBuffer = std::unique_ptr<uint8_t[], PieceBufferDelete>;

// Chosen by io/ when it opens a connection; never reused while the peer is known to the engine.
using PeerKey = uint32_t;

// Peer addresses remembered for dialling. Trackers may hand out 10 000 peers per announce
// (kMaxPeersPerAnnounce) every 30 s; without a cap a hostile tracker grows the list (and memory)
// without bound. When full, candidates that failed and are not connected are dropped first.
inline constexpr size_t kMaxPeerCandidates = 20'000;

struct TorrentConfig {
  PeerId self_id{};
  uint16_t listen_port = 0;
  // Requests kept outstanding per unchoked peer. 128 x 16 KiB = 2 MiB in flight: enough to keep a
  // loopback or LAN link busy, below the request-queue limits of libtorrent (2000) and others.
  uint32_t requests_per_peer_max = 128;
  // Bounded piece-assembly memory: at most this many pieces are being downloaded at once.
  uint32_t pieces_in_flight_max = 48;
  // The torrent's memory budget for piece buffers, shared by its shards (engine/piece_memory.h);
  // null: bounded by pieces_in_flight_max alone.
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
    kFlush,       // peer has bytes to send: drain NextSend(peer)
    kClose,       // close the peer's socket; the engine has already forgotten it
    kConnect,     // dial address; report HandlePeerConnected / HandleConnectFailed
    kHashPiece,   // verify data against piece's hash, then HandleHashResult
    kWritePiece,  // write verified data to disk, then HandlePieceWritten
    kReadBlock,   // read [begin, begin+length) of verified piece, then HandleBlockRead
    kPieceDone,   // piece verified and on disk (for progress and resume)
    kComplete,    // every piece is verified and on disk
    kNeedPeers,   // out of connectable peers: ask the tracker for more
    kFatal,       // unrecoverable (disk error): stop with `message`
    kLog,         // a notable decision worth one log line (`message`)
  };
  Type type = Type::kFlush;
  PeerKey peer = 0;
  PeerAddress address{};
  uint32_t piece = 0;
  uint32_t begin = 0;
  uint32_t length = 0;
  absl::Span<const uint8_t> data;
  CloseReason reason = CloseReason::kNone;
  std::string message;
};

struct TorrentStats {
  int64_t downloaded_payload = 0;  // bytes of blocks accepted
  int64_t uploaded_payload = 0;
  int64_t verified_bytes = 0;  // bytes of pieces verified and on disk
  int64_t wasted_bytes = 0;    // duplicate or unrequested blocks, failed pieces
  uint32_t pieces_have = 0;
  uint32_t pieces_failed = 0;
  uint32_t peers_connected = 0;
  uint32_t peers_closed_for_protocol_errors = 0;
};

class Torrent {
 public:
  // `claims` is shared by every shard that downloads this torrent (see engine/piece_claims.h);
  // null gives the torrent a private one.
  Torrent(const Metainfo& meta, TorrentConfig config, PieceClaims* claims = nullptr);
  ~Torrent();
  Torrent(const Torrent&) = delete;
  Torrent& operator=(const Torrent&) = delete;

  // --- state ---
  const Bitfield& have() const { return have_; }
  bool complete() const { return have_.all(); }
  int64_t bytes_left() const;
  const TorrentStats& stats() const { return stats_; }
  size_t num_peers() const { return peers_.size(); }
  size_t num_candidates() const { return candidates_.size(); }
  bool IsConnected(PeerKey key) const { return peers_.contains(key); }
  // True once the peer's handshake was accepted.
  bool IsHandshaken(PeerKey key) const;
  // The peer id from the handshake; nullopt before it (or for an unknown peer).
  std::optional<PeerId> PeerIdOf(PeerKey key) const;
  // Bytes of piece buffers this torrent holds, in use or kept for reuse.
  int64_t piece_buffer_bytes() const { return buffer_bytes_; }
  bool IsBanned(PeerAddress address) const;

  // --- inputs ---
  // Pieces already verified on disk (from a recheck). Call before any peer connects.
  void SetHave(const Bitfield& have);
  // Addresses from a tracker or the command line. Duplicates and our own address are ignored.
  void AddPeerCandidates(absl::Span<const PeerAddress> peers, Instant now);
  void HandlePeerConnected(PeerKey key, PeerAddress address, bool outgoing, Instant now);
  void HandleConnectFailed(PeerAddress address, Instant now);
  // Bytes received from a peer. Returns how many were consumed; the caller keeps the rest and
  // passes them again with more data. A protocol violation closes the peer (kClose action).
  size_t HandleBytes(PeerKey key, absl::Span<const uint8_t> bytes, Instant now);
  void HandlePeerClosed(PeerKey key, Instant now);
  // Another shard verified and wrote `piece` (its kPieceDone). Tells our peers with `have`,
  // and drops our own copy of it if we were fetching it too.
  void HandleRemoteHave(uint32_t piece, Instant now);
  void HandleSent(PeerKey key, size_t bytes, Instant now);
  void HandleHashResult(uint32_t piece, bool ok, Instant now);
  void HandlePieceWritten(uint32_t piece, const absl::Status& status, Instant now);
  // Data for a kReadBlock action. An error status drops the request (and is reported as kFatal).
  void HandleBlockRead(PeerKey key, uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data,
                       const absl::Status& status, Instant now);
  // Timers: keep-alives, timeouts, snubbing, choking rotation, reconnects. Call about once a
  // second.
  void HandleTick(Instant now);
  // Closes every connection (kClose actions), e.g. on SIGTERM.
  void Shutdown();

  // --- outputs ---
  void TakeActions(std::vector<Action>* out);
  // The next bytes to hand to send() for `key`; empty when nothing is pending. The span stays
  // valid and unchanged until HandleSent reports it fully sent (or the peer is closed).
  absl::Span<const uint8_t> NextSend(PeerKey key);

 private:
  struct BlockRequest {
    uint32_t piece;
    uint32_t begin;
    uint32_t length;
    friend bool operator==(const BlockRequest&, const BlockRequest&) = default;
  };
  struct Peer;
  struct PieceInFlight;

  Peer* FindPeer(PeerKey key);
  void Emit(Action action) { actions_.push_back(std::move(action)); }
  void EmitFatal(uint32_t piece, const absl::Status& status);
  void Close(Peer& peer, CloseReason reason, std::string message = {});
  void ForgetPeer(Peer& peer);

  bool HandleHandshake(Peer& peer, absl::Span<const uint8_t> bytes, Instant now);
  bool HandleMessage(Peer& peer, const wire::Message& msg, Instant now);
  bool HandleBitfield(Peer& peer, absl::Span<const uint8_t> bits);
  bool HandleHave(Peer& peer, uint32_t piece);
  bool HandleRequest(Peer& peer, const BlockRequest& r);
  bool HandlePiece(Peer& peer, uint32_t piece, uint32_t begin, absl::Span<const uint8_t> block,
                   Instant now);
  void HandleCancel(Peer& peer, const BlockRequest& r);
  void HandlePeerChoked(Peer& peer);
  void Ban(const std::vector<PeerAddress>& addresses);

  // Request pipeline.
  void FillRequests(Peer& peer);
  bool PickBlock(Peer& peer, BlockRequest* out);
  PieceInFlight* StartPiece(uint32_t piece, bool owns_claim, PieceBuffer buffer);
  bool MayFetchFrom(PieceInFlight& pf, const Peer& peer) const;
  PeerAddress TopSender(uint32_t piece) const;
  bool TakeBuffer(PieceBuffer* out);
  void FreeBuffers();
  void ResetBlocks(PieceInFlight& pf);
  void DropSingleSource(const Peer& peer);
  bool StealPiece(Peer& peer, BlockRequest* out);
  void DropInFlight(uint32_t piece);
  void AddHave(uint32_t piece);
  void ReleaseRequests(Peer& peer);
  void ReleaseRequest(Peer& peer, const BlockRequest& r);
  void MaybeAbandonPiece(uint32_t piece);
  bool PeerHasWanted(const Peer& peer) const;
  void UpdateInterest(Peer& peer);

  // Serving.
  void ServeRequests(Peer& peer);
  void Unchoke(Peer& peer, Instant now);
  void Choke(Peer& peer);
  void FillUnchokeSlots(Instant now);
  void RunChoker(Instant now);

  // Connection management.
  void DialCandidates(Instant now);

  // Outgoing bytes.
  uint8_t* AppendSend(Peer& peer, size_t n);
  void SendSimple(Peer& peer, uint8_t type);
  void SendHave(Peer& peer, uint32_t piece);
  void SendRequest(Peer& peer, const BlockRequest& r);
  void SendCancel(Peer& peer, const BlockRequest& r);

  const Metainfo& meta_;
  TorrentConfig config_;
  uint32_t num_pieces_;
  uint32_t max_message_len_;
  Bitfield have_;
  PiecePicker picker_;
  std::unique_ptr<PieceClaims> own_claims_;  // when no shared table was given
  PieceClaims* claims_;
  // Pieces another shard claimed when we wanted them; candidates for stealing in endgame.
  std::vector<uint32_t> claimed_elsewhere_;
  TorrentStats stats_;
  std::vector<Action> actions_;

  absl::flat_hash_map<PeerKey, std::unique_ptr<Peer>> peers_;
  absl::flat_hash_map<uint32_t, std::unique_ptr<PieceInFlight>> in_flight_;
  // Pieces in the order they were started, so partial pieces are finished oldest first.
  std::vector<uint32_t> in_flight_order_;
  std::vector<PieceBuffer> free_buffers_;
  int64_t buffer_bytes_ = 0;  // every buffer allocated and not yet freed
  int64_t buffer_size_ = 0;   // one piece buffer: the piece length rounded up to the alignment
  // Pad files (BEP 47): blocks entirely inside them are zeros that are never requested.
  FileMap file_map_;
  bool has_pad_ = false;
  std::vector<FileSlice> slices_;

  struct Candidate {
    int failures = 0;
    bool connected = false;
    Instant next_attempt{};
  };
  absl::flat_hash_map<PeerAddress, Candidate> candidates_;
  uint32_t connecting_ = 0;
  Instant need_peers_at_{INT64_MIN / 2};  // when kNeedPeers was last emitted

  std::vector<PeerAddress> banned_;
  // A failed piece that several peers contributed to: each block's digest and sender. When the
  // piece later passes, the senders of blocks that differ from the good data are banned.
  struct FailedBlock {
    uint32_t block;
    PeerAddress from;
    Sha1Digest digest;
  };
  absl::flat_hash_map<uint32_t, std::vector<FailedBlock>> failed_blocks_;

  Choker choker_;
  Instant last_choke_round_{};
  std::vector<PeerKey> last_unchoked_;  // the choker's previous decision, for change logging
};

}  // namespace torrenty::engine
