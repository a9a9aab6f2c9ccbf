// One peer connection as the engine sees it: the handshake, what each side has said (choke,
// interest, the peer's pieces), the requests in both directions and the send buffer. The torrent
// (engine/torrent/torrent.h) decides what to say and when; a PeerSession encodes it and holds the
// bytes until io/ has sent them.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "engine/base/bitfield.h"
#include "engine/base/types.h"
#include "engine/codec/wire.h"
#include "engine/torrent/extensions.h"
#include "engine/torrent/request_depth.h"
#include "engine/torrent/torrent_types.h"

namespace torrenty::engine {

class PeerSession {
 public:
  // `actions` receives a kFlush whenever the send buffer goes from empty to non-empty.
  PeerSession(PeerKey peer_key, PeerAddress peer_address, bool is_outgoing, uint32_t num_pieces,
              Instant now, std::vector<Action>* actions);

  // The wire state is open to the torrent and piece assembly, which act on it; only the send
  // buffer is kept behind methods, because a send in flight pins its memory.
  PeerKey key = 0;
  PeerAddress address{};
  bool outgoing = false;
  bool handshaken = false;
  PeerId id{};
  bool am_choking = true;
  bool am_interested = false;
  bool peer_choking = true;
  bool peer_interested = false;
  bool snubbed = false;
  // BEP 6: both handshakes set the Fast bit, so have all/none, reject and allowed fast apply.
  bool fast = false;
  // BEP 10: the peer set the extension bit; its ids for the extensions we know (0: not offered).
  bool extensions = false;
  std::array<uint8_t, kNumExtensions> ext_ids{};
  // The port the peer accepts connections on: from its extension handshake's `p`, 0 if unknown.
  uint16_t listen_port = 0;
  Bitfield has;
  // BEP 6: pieces the peer lets us request while it chokes us (bounded by
  // kAllowedFastInMax), and the pieces we let it request while we choke it.
  std::vector<uint32_t> allowed_fast_in;
  std::vector<uint32_t> allowed_fast_out;
  bool allowed_fast_sent = false;
  std::vector<BlockRequest> requests_out;  // blocks we asked this peer for
  RequestDepth request_depth;              // how many of them to keep outstanding
  // The extent (PiecePicker::ExtentOf) of the last piece we started fetching from this peer: its
  // next new piece comes from there while that extent has one of the rarest it can give.
  uint32_t pick_extent = UINT32_MAX;
  std::deque<BlockRequest> requests_in;  // blocks this peer asked us for, not yet read
  uint32_t reads_in_flight = 0;
  Instant connected_at{};
  Instant last_received{};
  Instant last_sent{};
  Instant last_block{};
  Instant unchoked_at{};
  int64_t bytes_downloaded = 0;
  int64_t bytes_uploaded = 0;
  // Totals at the last choke round, to turn the totals into per-round rates.
  int64_t round_downloaded = 0;
  int64_t round_uploaded = 0;

  // Checks the remote handshake against our torrent and our own id and takes the peer's id.
  // Returns kNone when it is acceptable, else the reason to close (with `*error` for a malformed
  // one). Duplicate connections are the torrent's business: it sees every peer.
  CloseReason CheckHandshake(absl::Span<const uint8_t> bytes, const InfoHash& info_hash,
                             const PeerId& self_id, std::string* error);

  // --- our requests ---
  bool HasRequestOut(const BlockRequest& r) const;
  // Removes `r` from the requests we hold with this peer; false when it was not there.
  bool TakeRequestOut(const BlockRequest& r);
  // Removes `r` if we hold it and tells the peer not to send it.
  void CancelRequest(const BlockRequest& r);
  // Cancels every request for `piece` (we no longer need it).
  void CancelPiece(uint32_t piece);
  // Forgets every request for `piece` without telling the peer (the piece starts over).
  void ForgetPiece(uint32_t piece);

  // --- sending ---
  size_t send_queue_bytes() const {
    return sending_.size() + sending_ref_bytes_ - sending_offset_ + pending_.size() +
           pending_ref_bytes_;
  }
  // Room for `n` more bytes at the end of the send buffer.
  uint8_t* Append(size_t n);
  void SendHandshake(const InfoHash& info_hash, const PeerId& self_id);
  void SendBitfield(const Bitfield& have);
  void SendSimple(wire::MsgType type);
  void SendHave(uint32_t piece);
  void SendRequest(const BlockRequest& r);
  void SendCancel(const BlockRequest& r);
  void SendKeepAlive();
  void SendReject(const BlockRequest& r);
  void SendAllowedFast(uint32_t piece);
  void SendBlock(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data);
  // The same message without copying `data`: it is sent from where it is, and a kReleaseBlock
  // with `pin` is emitted once its last byte has been sent or the peer is dropped.
  void SendBlockRef(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data, uint64_t pin);
  // Emits kReleaseBlock for every lent block still queued (the peer is being dropped).
  void ReleaseBlocks();
  // <len><20><id><payload>, then `tail` (the bytes of a ut_metadata piece after its dict).
  void SendExtended(uint8_t id, absl::Span<const uint8_t> payload,
                    absl::Span<const uint8_t> tail = {});
  // See Torrent::NextSend and Torrent::NextSendParts.
  absl::Span<const uint8_t> NextSend();
  size_t NextSendParts(absl::Span<absl::Span<const uint8_t>> out);
  void HandleSent(size_t bytes, Instant now);

 private:
  // A lent block's bytes go into the stream right after byte `at` of their batch's buffer.
  struct BlockRef {
    size_t at;
    const uint8_t* data;
    uint32_t length;
    uint64_t pin;
  };
  void Release(uint64_t pin);

  std::vector<Action>* actions_;
  // Double buffer: the kernel reads `sending_` while new messages go to `pending_`, so an append
  // can never move memory a send is using. Each batch is its bytes with its lent blocks spliced
  // in; sending_offset_ counts both.
  std::vector<uint8_t> sending_;
  std::vector<BlockRef> sending_refs_;
  size_t sending_ref_bytes_ = 0;
  size_t sending_offset_ = 0;
  // Where sending_offset_ is: bytes of sending_ passed, lent blocks passed, bytes into the next.
  size_t sent_bytes_ = 0, sent_refs_ = 0, ref_sent_ = 0;
  std::vector<uint8_t> pending_;
  std::vector<BlockRef> pending_refs_;
  size_t pending_ref_bytes_ = 0;
};

// A peer may announce any number of allowed-fast pieces; more than this are ignored.
inline constexpr size_t kAllowedFastInMax = 32;

using PeerMap = absl::flat_hash_map<PeerKey, std::unique_ptr<PeerSession>>;

}  // namespace torrenty::engine
