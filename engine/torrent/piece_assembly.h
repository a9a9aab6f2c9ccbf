// The pieces one shard is fetching: their buffers (within the torrent's memory budget), which
// blocks are free, requested or received, which peer to ask for which block (started pieces
// first, then the rarest new one, then endgame duplicates and pieces other shards are slow on),
// and smart ban (who sent which block of a piece that failed its hash).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/base/piece_buffer.h"
#include "engine/base/types.h"
#include "engine/metainfo/file_map.h"
#include "engine/metainfo/metainfo.h"
#include "engine/torrent/peer_session.h"
#include "engine/torrent/piece_claims.h"
#include "engine/torrent/piece_memory.h"
#include "engine/torrent/piece_picker.h"
#include "engine/torrent/torrent_types.h"

namespace torrenty::engine {

class PieceAssembly {
 public:
  // Everything but `claims` is owned by the torrent, which outlives this object. `claims` null
  // gives the assembly a private table.
  PieceAssembly(const Metainfo& meta, const TorrentConfig& config, PieceClaims* claims,
                PiecePicker& picker, const Bitfield& have, PeerMap& peers, TorrentStats& stats,
                std::vector<Action>& actions);
  ~PieceAssembly();
  PieceAssembly(const PieceAssembly&) = delete;
  PieceAssembly& operator=(const PieceAssembly&) = delete;

  bool empty() const { return in_flight_.empty(); }
  // Bytes of piece buffers held, in use or kept for reuse.
  int64_t buffer_bytes() const { return buffer_bytes_; }
  // A piece verified on disk, here or before start-up.
  void MarkHave(uint32_t piece) { claims_->MarkHave(piece); }

  // The next block to ask `peer` for; false when there is none it can help with.
  bool PickBlock(PeerSession& peer, BlockRequest* out);
  // The peer no longer serves what we asked for (choke, snub, close): its blocks are free again.
  void ReleaseRequests(PeerSession& peer);
  // One block the peer refused (BEP 6 reject), already taken from its requests_out.
  void ReleaseRequest(const BlockRequest& r) {
    ReleaseBlock(r);
    MaybeAbandonPiece(r.piece);
  }
  // A piece being fetched from this peer alone starts over without it.
  void DropSingleSource(const PeerSession& peer);

  enum class BlockResult { kStored, kWasted, kWrongLength };
  // A block `peer` sent; `requested` says whether it still owed it to us.
  BlockResult AcceptBlock(PeerSession& peer, const BlockRequest& r, bool requested,
                          absl::Span<const uint8_t> block);
  // `buffer` is the one kHashPiece took. Emits kWritePiece with it for a good piece. A bad one
  // starts over (returns true) and the peers to ban are added to `to_ban`, now or once a later
  // copy verifies.
  bool HandleHashResult(uint32_t piece, bool ok, PieceBuffer buffer,
                        std::vector<PeerAddress>* to_ban);
  // A kHashChunk came back with the piece's updated state: the next ready chunk goes out, or the
  // rest of a complete piece with kHashPiece. While a chunk is out its piece keeps its buffer:
  // whatever would drop or restart the piece (remote have, single-source restart) waits for this.
  void HandleHashChunk(uint32_t piece, Sha1Hasher state);
  // The piece is on disk (or failed to get there, reported by the torrent) and `buffer`, the one
  // kWritePiece took, is back; false when we were not fetching it.
  bool HandlePieceWritten(uint32_t piece, bool ok, PieceBuffer buffer);
  // Another shard has the piece: stop fetching it unless our copy is being hashed or written
  // (its buffer is out with that operation until the result brings it back).
  void HandleRemoteHave(uint32_t piece);
  // Web seeds (engine/webseed): a piece fetched whole over HTTP. StartWebPiece claims it and
  // takes a buffer within the budget (false: claimed elsewhere, or no memory); its bytes come
  // through AcceptWebData (false: not a web piece in progress, or out of bounds) and it is
  // hashed once all are in. CancelWebPiece gives up one whose bytes are not all in.
  bool StartWebPiece(uint32_t piece);
  bool AcceptWebData(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data);
  void CancelWebPiece(uint32_t piece);
  bool IsWebPiece(uint32_t piece) const;
  PieceClaims::State ClaimState(uint32_t piece) const { return claims_->Get(piece); }
  // What peers announced, for the web seeds of whichever shard drives them.
  void NotePeerHas(uint32_t piece) { claims_->NotePeerHas(piece); }
  void NotePeerHas(const Bitfield& has) {
    for (uint32_t p = 0; p < has.size(); ++p)
      if (has.Get(p)) claims_->NotePeerHas(p);
  }
  bool PeerHasAnywhere(uint32_t piece) const { return claims_->PeerHas(piece); }
  // Gives the buffers kept for reuse back to the memory budget.
  void FreeBuffers();
  // The same, when another shard is short of piece memory.
  void FreeBuffersIfWanted();
  // Buffers kept for reuse that another shard may want back (FreeBuffersIfWanted).
  bool HoldsSharedIdleBuffers() const { return memory_ != nullptr && !free_buffers_.empty(); }

 private:
  struct PieceInFlight;
  struct FailedBlock;

  PieceInFlight* StartPiece(uint32_t piece, bool owns_claim, PieceBuffer buffer);
  bool MayFetchFrom(const PieceInFlight& pf, const PeerSession& peer) const;
  PeerAddress TopSender(uint32_t piece) const;
  bool TakeBuffer(PieceBuffer* out);
  // A buffer back from an operation for a piece we no longer fetch.
  void Recycle(PieceBuffer buffer);
  void ResetBlocks(PieceInFlight& pf);
  bool StealPiece(const PeerSession& peer, BlockRequest* out);
  void DropInFlight(uint32_t piece);
  void ReleaseBlock(const BlockRequest& r);
  void MaybeAbandonPiece(uint32_t piece);
  // Hashes received blocks that extend the piece's hashed prefix.
  void AdvanceHash(PieceInFlight& pf);
  // kHashPiece with the piece's buffer, and the verdict when every block was hashed on arrival.
  void EmitHash(PieceInFlight& pf);
  // Chunked pool hashing: kHashChunk for the received prefix beyond the hashed one, once it is a
  // chunk long and no chunk of the piece is out.
  void AdvanceChunk(PieceInFlight& pf);

  const Metainfo& meta_;
  const uint32_t pieces_in_flight_max_;
  const bool hash_on_arrival_;
  // Blocks per kHashChunk; 0: pieces are not hashed in chunks (TorrentConfig::hash_chunk_bytes).
  const uint32_t chunk_blocks_;
  PieceMemory* const memory_;                // null: bounded by pieces_in_flight_max_ alone
  std::unique_ptr<PieceClaims> own_claims_;  // when no shared table was given
  PieceClaims* claims_;
  PiecePicker& picker_;
  const Bitfield& have_;
  PeerMap& peers_;
  TorrentStats& stats_;
  std::vector<Action>& actions_;

  absl::flat_hash_map<uint32_t, std::unique_ptr<PieceInFlight>> in_flight_;
  // Pieces in the order they were started, so partial pieces are finished oldest first. The
  // entries of in_flight_ themselves: PickBlock walks this for every block it requests, and with
  // one-block pieces a map lookup per piece in flight was most of its time.
  std::vector<PieceInFlight*> in_flight_order_;
  // Pieces another shard claimed when we wanted them; candidates for stealing in endgame.
  std::vector<uint32_t> claimed_elsewhere_;
  std::vector<PieceBuffer> free_buffers_;
  // Every buffer allocated and not yet freed, also those out with a hash or write operation.
  int64_t buffer_bytes_ = 0;
  int64_t buffer_size_ = 0;  // one piece buffer: the piece length rounded up to the alignment
  // Pad files (BEP 47): blocks entirely inside them are zeros that are never requested.
  FileMap file_map_;
  bool has_pad_ = false;
  std::vector<FileSlice> slices_;
  // A failed piece that several peers contributed to: each block's digest and sender. When the
  // piece later passes, the senders of blocks that differ from the good data are banned.
  absl::flat_hash_map<uint32_t, std::vector<FailedBlock>> failed_blocks_;
};

}  // namespace torrenty::engine
