// The sans-I/O state machine of one torrent on one shard. It ties the peer sessions
// (engine/torrent/peer_session.h) to piece assembly (engine/torrent/piece_assembly.h) and owns
// what concerns the whole torrent: the wire protocol's dispatch, interest, serving, choking, the
// peer candidate list and bans. It is fed bytes, I/O results and time by io/, and answers with
// Actions; it never touches a socket, file or clock.
//
// Call protocol (quinn-proto style): after every Handle*() call, drain TakeActions() and execute
// the actions in order; for every peer named by a kFlush action, call NextSend() until it returns
// an empty span or a send is already in flight, and report completed sends with HandleSent().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/base/types.h"
#include "engine/metainfo/metainfo.h"
#include "engine/pex/ut_pex.h"
#include "engine/torrent/choker.h"
#include "engine/torrent/peer_session.h"
#include "engine/torrent/piece_assembly.h"
#include "engine/torrent/piece_claims.h"
#include "engine/torrent/piece_memory.h"
#include "engine/torrent/piece_picker.h"
#include "engine/torrent/super_seed.h"
#include "engine/torrent/torrent_types.h"

namespace torrenty::engine {

// Peer addresses remembered for dialling. Trackers may hand out 10 000 peers per announce
// (kMaxPeersPerAnnounce) every 30 s; without a cap a hostile tracker grows the list (and memory)
// without bound. When full, candidates that failed and are not connected are dropped first.
inline constexpr size_t kMaxPeerCandidates = 20'000;

class Torrent {
 public:
  // `claims` is shared by every shard that downloads this torrent (see
  // engine/torrent/piece_claims.h); null gives the torrent a private one.
  Torrent(const Metainfo& meta, TorrentConfig config, PieceClaims* claims = nullptr);
  ~Torrent();
  Torrent(const Torrent&) = delete;
  Torrent& operator=(const Torrent&) = delete;

  // --- state ---
  const Bitfield& have() const { return have_; }
  bool complete() const { return have_.all(); }
  // Every wanted piece (file selection; all of them unless SetWanted narrowed the set) is
  // verified and on disk. Implied by complete(); a done torrent still serves what it has.
  bool done() const { return wanted_left_ == 0; }
  const Bitfield& wanted() const { return wanted_; }
  int64_t bytes_left() const;
  const TorrentStats& stats() const { return stats_; }
  size_t num_peers() const { return peers_.size(); }
  size_t num_candidates() const { return candidates_.size(); }
  bool IsConnected(PeerKey key) const { return peers_.contains(key); }
  // True once the peer's handshake was accepted.
  bool IsHandshaken(PeerKey key) const;
  // The peer id from the handshake; nullopt before it (or for an unknown peer).
  std::optional<PeerId> PeerIdOf(PeerKey key) const;
  // True when piece data may flow on the connection: one side is interested and not choked by
  // the other.
  bool IsActive(PeerKey key) const;
  // Bytes of piece buffers this torrent holds, in use or kept for reuse.
  int64_t piece_buffer_bytes() const { return assembly_.buffer_bytes(); }
  bool IsBanned(PeerAddress address) const;

  // --- inputs ---
  // Pieces already verified on disk (from a recheck). Call before any peer connects.
  void SetHave(const Bitfield& have);
  // File selection (engine/metainfo/file_map.h WantedPieces): only these pieces are requested
  // and make us interested in a peer, and kComplete comes when they are all had. Call before any
  // peer connects; a different set means a new Torrent.
  void SetWanted(const Bitfield& wanted);
  // Addresses from a tracker or the command line. Duplicates and our own address are ignored.
  // A known address that failed is retried at once, unless `from_pex` (any connected peer may
  // repeat an address every minute: its backoff stands).
  void AddPeerCandidates(absl::Span<const PeerAddress> peers, Instant now, bool from_pex = false);
  // BEP 11 across shards: this engine sees only its shard's connections, so io relays each
  // shard's LocalPexPeers() to the others, and ut_pex messages list both.
  [[nodiscard]] std::vector<pex::PexPeer> LocalPexPeers() const;
  void SetOtherShardsPexPeers(std::vector<pex::PexPeer> peers);
  // Moves whenever the peers LocalPexPeers() would list may have changed.
  uint64_t pex_generation() const { return pex_generation_; }
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
  // `buffer` is the one the kHashPiece / kWritePiece action carried, handed back.
  void HandleHashResult(uint32_t piece, bool ok, PieceBuffer buffer, Instant now);
  // `state` is the hasher a kHashChunk action carried, continued over its chunk.
  void HandleHashChunk(uint32_t piece, Sha1Hasher state, Instant now);
  void HandlePieceWritten(uint32_t piece, const absl::Status& status, PieceBuffer buffer,
                          Instant now);
  // Data for a kReadBlock action. An error status drops the request (and is reported as kFatal).
  // With a `pin` (not 0) the data is lent, not copied: it must stay valid and unchanged until a
  // kReleaseBlock action with that pin hands it back (exactly one comes for each pin).
  void HandleBlockRead(PeerKey key, uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data,
                       const absl::Status& status, Instant now, uint64_t pin = 0);
  // Timers: keep-alives, timeouts, snubbing, choking rotation, reconnects. Call when
  // NextTimeout() has come (or, simply, about once a second).
  void HandleTick(Instant now);
  // Closes every connection (kClose actions), e.g. on SIGTERM.
  void Shutdown();

  // --- web seeds (engine/webseed; torrent_webseed.cc) ---
  // Wanted, not had, and no shard is fetching it.
  bool WebSeedFetchable(uint32_t piece) const;
  // Peers here that have the piece, or 1 when only a peer of another shard announced it.
  uint32_t Availability(uint32_t piece) const {
    const uint32_t here = picker_.Availability(piece);
    return here > 0 ? here : (assembly_.PeerHasAnywhere(piece) ? 1 : 0);
  }
  // Claims the piece and takes its buffer within the memory budget; false: not now.
  bool StartWebSeedPiece(uint32_t piece);
  // Bytes of a started piece; once all are in it is hashed (kHashPiece), and its outcome is
  // reported with kWebPieceHashed after the usual handling.
  void HandleWebSeedData(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data);
  void CancelWebSeedPiece(uint32_t piece);

  // --- outputs ---
  // The earliest time HandleTick has work to do: handshake, idle and snub timeouts, keep-alives,
  // the choke round and optimistic rotation, reconnect backoff, asking the tracker for peers;
  // kNoTimeout when nothing is pending (a complete torrent without peers needs no timer).
  // Timeouts are exact to the millisecond. What other shards change (a claim given up, piece
  // memory wanted back) and blocks freed for peers that still have room for requests are picked
  // up by a poll 1 s after the last tick, while such a peer or idle buffer exists. Right after
  // HandleTick(now) it is later than `now`. O(peers): call it once per loop turn.
  [[nodiscard]] Instant NextTimeout() const;
  void TakeActions(std::vector<Action>* out);
  // The next bytes to hand to send() for `key`; empty when nothing is pending. The span stays
  // valid and unchanged until HandleSent reports it fully sent (or the peer is closed).
  absl::Span<const uint8_t> NextSend(PeerKey key);
  // The same bytes as up to out.size() spans for one gathered send (the header of a lent block,
  // then the block where it lies, ...); returns how many it filled. HandleSent takes the total.
  size_t NextSendParts(PeerKey key, absl::Span<absl::Span<const uint8_t>> out);

 private:
  PeerSession* FindPeer(PeerKey key);
  void Emit(Action action) { actions_.push_back(std::move(action)); }
  void EmitFatal(uint32_t piece, const absl::Status& status);
  void Close(PeerSession& peer, CloseReason reason, std::string message = {});
  void ForgetPeer(PeerSession& peer);

  bool HandleHandshake(PeerSession& peer, absl::Span<const uint8_t> bytes);
  bool HandleMessage(PeerSession& peer, const wire::Message& msg, Instant now);
  // BEP 10 (engine/torrent/extensions.h): id 20 messages, dispatched by our local ids.
  void SendExtHandshake(PeerSession& peer);
  bool HandleExtended(PeerSession& peer, absl::Span<const uint8_t> body, Instant now);
  bool HandleUtMetadata(PeerSession& peer, absl::Span<const uint8_t> payload);
  // BEP 11 ut_pex (engine/torrent/torrent_pex.cc); never for a private torrent (BEP 27).
  bool PexAllowed() const { return config_.pex && !meta_.is_private; }
  void PexHandshake(PeerSession& peer, uint16_t listen_port);
  bool HandleUtPex(PeerSession& peer, absl::Span<const uint8_t> payload, Instant now);
  void SendPex(Instant now);
  Instant NextPexDue() const;
  bool HandleBitfield(PeerSession& peer, absl::Span<const uint8_t> bits);
  bool HandleHave(PeerSession& peer, uint32_t piece);
  bool HandleRequest(PeerSession& peer, const BlockRequest& r);
  bool HandlePiece(PeerSession& peer, uint32_t piece, uint32_t begin,
                   absl::Span<const uint8_t> block, Instant now);
  void HandleCancel(PeerSession& peer, const BlockRequest& r);
  void HandlePeerChoked(PeerSession& peer);
  // BEP 6 Fast extension.
  bool HandleHaveAllNone(PeerSession& peer, bool all);
  bool HandleReject(PeerSession& peer, const BlockRequest& r);
  bool HandleAllowedFast(PeerSession& peer, uint32_t piece, Instant now);
  void MaybeSendAllowedFast(PeerSession& peer);
  bool AllowedFastOut(const PeerSession& peer, uint32_t piece) const;
  void Reject(PeerSession& peer, const BlockRequest& r);
  // BEP 16 (engine/torrent/torrent_super_seed.cc).
  bool SuperSeeded(const PeerSession& peer) const {
    return super_seed_ != nullptr && super_seed_->Tracks(peer.key);
  }
  // At the handshake of a peer of a complete super-seeding torrent: have_none (or nothing)
  // instead of the bitfield, then its first piece. False when the peer is served normally.
  bool SuperSeedStart(PeerSession& peer);
  // `repeat`: the peer may be shown a piece the swarm already has (it has been idle too long).
  void SuperSeedAdvance(PeerSession& peer, bool repeat = false);
  // Some super-seeded peer has nothing shown to it; SuperSeedTick looks at them again.
  bool SuperSeedWaiting() const;
  void SuperSeedTick(Instant now);
  // `from` announced `piece` (a have), or with nullopt its whole set (a bitfield, have all/none):
  // peers whose current piece is among them, `from` included, are shown their next one.
  void SuperSeedSeen(PeerSession& from, std::optional<uint32_t> piece);
  void LogPeer(const PeerSession& peer, std::string_view what);
  void Ban(const std::vector<PeerAddress>& addresses);
  void AddHave(uint32_t piece);
  void RecountWanted();

  // Requesting.
  void FillRequests(PeerSession& peer);
  bool PeerHasWanted(const PeerSession& peer) const;
  void UpdateInterest(PeerSession& peer);

  // Serving.
  void ServeRequests(PeerSession& peer);
  void Unchoke(PeerSession& peer, Instant now);
  void Choke(PeerSession& peer);
  void FillUnchokeSlots(Instant now);
  void RunChoker(Instant now);

  // Connection management.
  void DialCandidates(Instant now);
  // Requests kept outstanding with `peer` when it serves us.
  size_t RequestDepth(const PeerSession& peer) const;

  const Metainfo& meta_;
  TorrentConfig config_;
  uint32_t num_pieces_;
  uint32_t max_message_len_;
  Bitfield have_;
  Bitfield wanted_;
  uint32_t wanted_left_;  // wanted pieces not had
  PiecePicker picker_;
  TorrentStats stats_;
  std::vector<Action> actions_;
  PeerMap peers_;
  PieceAssembly assembly_;

  struct Candidate {
    int failures = 0;
    bool connected = false;
    Instant next_attempt{};
  };
  absl::flat_hash_map<PeerAddress, Candidate> candidates_;
  uint32_t connecting_ = 0;
  // The earliest next_attempt of a candidate not yet due when it was last looked at.
  Instant next_dial_at_ = kNoTimeout;
  // Due candidates were left undialled for want of a connection slot.
  bool dial_pending_ = false;
  Instant need_peers_at_{INT64_MIN / 2};  // when kNeedPeers was last emitted

  std::vector<PeerAddress> banned_;

  // BEP 11, per peer whose extension handshake came (for a torrent that allows PEX). `polled`
  // is the pex_generation_ the peer was last found up to date with: the connected set has not
  // changed since, so it has nothing to send and needs no timer.
  struct PexLink {
    pex::PexState state;
    uint64_t polled = 0;
  };
  absl::flat_hash_map<PeerKey, PexLink> pex_;
  // Bumped whenever the set of connected listen addresses may have changed.
  uint64_t pex_generation_ = 1;
  std::vector<pex::PexPeer> other_shards_pex_;

  Choker choker_;
  Instant last_choke_round_{};
  std::vector<PeerKey> last_unchoked_;  // the choker's previous decision, for change logging
  Instant last_tick_{INT64_MIN / 2};
  // The peer's pieces narrowed to its allowed-fast set, to pick from while it chokes us.
  Bitfield allowed_fast_mask_;
  std::unique_ptr<SuperSeed> super_seed_;  // null unless config_.super_seed
};

}  // namespace torrenty::engine
