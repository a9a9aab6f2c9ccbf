#include "engine/torrent/piece_assembly.h"

#include <algorithm>
#include <cstring>

#include "engine/base/sha1.h"

namespace torrenty::engine {
namespace {

// Endgame: at most this many peers are asked for the same block at once.
constexpr uint8_t kEndgameRequestersMax = 2;
// Blocks hashed at most per arrival when a late block closes a gap in the hashed prefix. Blocks
// that waited longer than this have likely left the L2 cache, and hashing them would stall the
// ring thread: a piece whose prefix stays behind is hashed whole on the pool instead.
constexpr uint32_t kCatchUpBlocksMax = 32;

}  // namespace

struct PieceAssembly::PieceInFlight {
  enum BlockState : uint8_t { kFree, kRequested, kReceived };
  uint32_t piece = 0;
  uint32_t size = 0;
  PieceBuffer buffer;
  std::vector<BlockState> state;
  uint32_t free_blocks = 0;         // blocks in kFree
  uint32_t first_free = 0;          // no kFree block below this index
  std::vector<uint8_t> requesters;  // how many peers hold a request for each block
  uint32_t received = 0;
  bool hashing = false;  // all blocks in; verification or write pending
  // False when another shard claimed the piece and we fetch it too (endgame): then we must not
  // release a claim that is not ours.
  bool owns_claim = true;
  absl::InlinedVector<PeerAddress, 4> contributors;
  std::vector<PeerAddress> block_from;  // who sent each received block
  // Blocks [0, hashed) are in `hasher`. Each block is hashed right after its copy, while it is
  // still in cache, when it extends this prefix; a complete piece then only compares digests
  // instead of rereading its buffer from memory (4-16 MiB pieces do not fit the caches).
  Sha1Hasher hasher;
  uint32_t hashed = 0;
  // Chunked pool hashing: blocks [0, prefix) are received; blocks [hashed, chunk_end) are being
  // hashed on the pool (chunk_out), which reads them from `buffer` meanwhile, so the piece must
  // neither drop nor restart, and those blocks are never written, until the chunk comes back.
  uint32_t prefix = 0;
  uint32_t chunk_end = 0;
  bool chunk_out = false;
  // What waits for the chunk: dropping the piece (another shard has it) or starting it over
  // (its single source went away). Either also sets `hashing` so no block is taken meanwhile.
  bool drop_after_chunk = false;
  bool reset_after_chunk = false;
  // The piece failed its hash with several senders (smart ban): until it verifies, all of its
  // blocks come from one peer, `source`, so a further failure names the guilty one.
  bool single_source = false;
  PeerAddress source{};
  // Who gets to be the source while connected and not choking us: the peer that sent the most
  // blocks of the failed copies. A peer racing honest ones with a block here and there sent few,
  // and one that sent many must then send the whole piece and be judged by it.
  PeerAddress preferred{};
  // Fetched whole from a web seed (engine/webseed): its blocks are never offered to peers and
  // `web_left` bytes are still to come.
  bool web = false;
  int64_t web_left = 0;

  // Marks block `b` requested from `peer` and describes it in `out`.
  void Take(uint32_t b, const PeerSession& peer, BlockRequest* out) {
    if (state[b] == kFree) {
      --free_blocks;
      first_free = b + 1;
    }
    state[b] = kRequested;
    ++requesters[b];
    if (single_source) source = peer.address;
    out->piece = piece;
    out->begin = b * kBlockSize;
    out->length = std::min<uint32_t>(kBlockSize, size - out->begin);
  }
};

struct PieceAssembly::FailedBlock {
  uint32_t block;
  PeerAddress from;
  Sha1Digest digest;
};

PieceAssembly::PieceAssembly(const Metainfo& meta, const TorrentConfig& config, PieceClaims* claims,
                             PiecePicker& picker, const Bitfield& have, PeerMap& peers,
                             TorrentStats& stats, std::vector<Action>& actions)
    : meta_(meta),
      pieces_in_flight_max_(config.pieces_in_flight_max),
      hash_on_arrival_(config.hash_on_arrival),
      // A piece no longer than a chunk is hashed whole, as before; so is every piece when blocks
      // are hashed on arrival.
      chunk_blocks_(!config.hash_on_arrival && config.hash_chunk_bytes >= kBlockSize &&
                            meta.piece_length > config.hash_chunk_bytes
                        ? config.hash_chunk_bytes / kBlockSize
                        : 0),
      memory_(config.piece_memory),
      own_claims_(claims == nullptr ? std::make_unique<LocalPieceClaims>(meta.num_pieces())
                                    : nullptr),
      claims_(claims == nullptr ? own_claims_.get() : claims),
      picker_(picker),
      have_(have),
      peers_(peers),
      stats_(stats),
      actions_(actions),
      buffer_size_((meta.piece_length + static_cast<int64_t>(PieceBuffer::kAlignment) - 1) &
                   ~static_cast<int64_t>(PieceBuffer::kAlignment - 1)),
      file_map_(meta) {
  for (const FileEntry& f : meta.files) has_pad_ |= f.pad && f.length > 0;
}

PieceAssembly::~PieceAssembly() {
  if (memory_ != nullptr) memory_->Release(buffer_bytes_);
}

void PieceAssembly::AdvanceHash(PieceInFlight& pf) {
  if (pf.web || !hash_on_arrival_) return;  // web bytes are not blocks; the pool hashes those
  const uint32_t blocks = static_cast<uint32_t>(pf.state.size());
  const uint32_t stop = std::min(blocks, pf.hashed + kCatchUpBlocksMax);
  while (pf.hashed < stop && pf.state[pf.hashed] == PieceInFlight::kReceived) {
    const uint32_t begin = pf.hashed * kBlockSize;
    pf.hasher.Update(absl::MakeConstSpan(pf.buffer.data() + begin,
                                         std::min<uint32_t>(kBlockSize, pf.size - begin)));
    ++pf.hashed;
  }
}

void PieceAssembly::AdvanceChunk(PieceInFlight& pf) {
  if (chunk_blocks_ == 0 || pf.web || pf.chunk_out || pf.hashing) return;
  const uint32_t blocks = static_cast<uint32_t>(pf.state.size());
  while (pf.prefix < blocks && pf.state[pf.prefix] == PieceInFlight::kReceived) ++pf.prefix;
  // The piece's last bytes go with kHashPiece once it is complete, so a chunk never ends it.
  if (pf.prefix == blocks || pf.prefix - pf.hashed < chunk_blocks_) return;
  const uint32_t begin = pf.hashed * kBlockSize;
  Action a;
  a.type = Action::Type::kHashChunk;
  a.piece = pf.piece;
  a.begin = begin;
  a.length = pf.prefix * kBlockSize - begin;  // all that is ready: fewer round trips
  a.chunk = absl::MakeConstSpan(pf.buffer.data() + begin, a.length);
  a.hasher = std::move(pf.hasher);
  pf.chunk_end = pf.prefix;
  pf.chunk_out = true;
  actions_.push_back(std::move(a));
}

void PieceAssembly::HandleHashChunk(uint32_t piece, Sha1Hasher state) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end() || !it->second->chunk_out) return;  // not ours (cannot happen)
  PieceInFlight& pf = *it->second;
  pf.chunk_out = false;
  if (pf.drop_after_chunk || have_.Get(piece)) {
    DropInFlight(piece);
    return;
  }
  if (pf.reset_after_chunk) {
    pf.reset_after_chunk = false;
    ResetBlocks(pf);
    return;
  }
  pf.hasher = std::move(state);
  pf.hashed = pf.chunk_end;
  if (pf.hashing) {
    EmitHash(pf);  // complete while the chunk was out
  } else {
    AdvanceChunk(pf);
  }
}

void PieceAssembly::EmitHash(PieceInFlight& pf) {
  if (pf.chunk_out) return;  // HandleHashChunk emits it once the piece's state is back
  Action a;
  a.type = Action::Type::kHashPiece;
  a.piece = pf.piece;
  if (hash_on_arrival_ && !pf.web && pf.hashed == pf.state.size()) {
    a.verdict = pf.hasher.Finish() == meta_.piece_hashes[pf.piece] ? Action::Verdict::kMatched
                                                                   : Action::Verdict::kMismatched;
  } else if (!pf.web && pf.hashed > 0) {
    // The prefix hashed in chunks (or on arrival before it fell behind) is not hashed again.
    a.begin = pf.hashed * kBlockSize;
    a.hasher = std::move(pf.hasher);
  }
  pf.buffer.set_size(pf.size);
  a.buffer = std::move(pf.buffer);
  actions_.push_back(std::move(a));
}

// ---------------------------------------------------------------------------------------------
// Buffers

bool PieceAssembly::TakeBuffer(PieceBuffer* out) {
  if (!free_buffers_.empty()) {
    *out = std::move(free_buffers_.back());
    free_buffers_.pop_back();
    return true;
  }
  if (memory_ != nullptr && !memory_->TryReserve(buffer_size_)) return false;
  const auto size = static_cast<size_t>(buffer_size_);
  *out = memory_ != nullptr ? memory_->Allocate(size) : PieceBuffer::Allocate(size);
  buffer_bytes_ += buffer_size_;
  return true;
}

void PieceAssembly::Recycle(PieceBuffer buffer) {
  if (!buffer.empty()) free_buffers_.push_back(std::move(buffer));
}

void PieceAssembly::FreeBuffers() {
  const int64_t bytes = static_cast<int64_t>(free_buffers_.size()) * buffer_size_;
  free_buffers_.clear();
  buffer_bytes_ -= bytes;
  if (memory_ != nullptr) memory_->Release(bytes);
}

void PieceAssembly::FreeBuffersIfWanted() {
  if (memory_ != nullptr && memory_->wanted()) FreeBuffers();
}

// ---------------------------------------------------------------------------------------------
// Pieces

void PieceAssembly::ResetBlocks(PieceInFlight& pf) {
  std::fill(pf.state.begin(), pf.state.end(), PieceInFlight::kFree);
  std::fill(pf.requesters.begin(), pf.requesters.end(), 0);
  std::fill(pf.block_from.begin(), pf.block_from.end(), PeerAddress{});
  pf.free_blocks = static_cast<uint32_t>(pf.state.size());
  pf.first_free = 0;
  pf.received = 0;
  pf.hashing = false;
  pf.contributors.clear();
  pf.source = PeerAddress{};
  pf.hasher.Reset();
  pf.hashed = 0;
  pf.prefix = 0;
  pf.chunk_end = 0;
  if (!has_pad_) return;
  // Pad bytes are zeros by definition: write them into the buffer, and count blocks that lie
  // wholly in pad files (adjacent pad files merged) as received, so they are never requested.
  slices_.clear();
  file_map_.MapPiece(pf.piece, &slices_);
  for (size_t i = 0; i < slices_.size(); ++i) {
    if (!slices_[i].pad) continue;
    const int64_t from = slices_[i].range_offset;
    int64_t to = from + slices_[i].length;
    while (i + 1 < slices_.size() && slices_[i + 1].pad) to += slices_[++i].length;
    std::memset(pf.buffer.data() + from, 0, static_cast<size_t>(to - from));
    for (int64_t b = (from + kBlockSize - 1) / kBlockSize;
         b < static_cast<int64_t>(pf.state.size()); ++b) {
      const int64_t block_end = std::min<int64_t>((b + 1) * kBlockSize, pf.size);
      if (block_end > to) break;
      pf.state[b] = PieceInFlight::kReceived;
      --pf.free_blocks;
      ++pf.received;
    }
  }
  AdvanceHash(pf);  // a piece may start with pad
}

PieceAssembly::PieceInFlight* PieceAssembly::StartPiece(uint32_t piece, bool owns_claim,
                                                        PieceBuffer buffer) {
  auto pf = std::make_unique<PieceInFlight>();
  pf->piece = piece;
  pf->owns_claim = owns_claim;
  pf->size = meta_.PieceSize(piece);
  pf->buffer = std::move(buffer);
  const uint32_t blocks = (pf->size + kBlockSize - 1) / kBlockSize;
  pf->state.assign(blocks, PieceInFlight::kFree);
  pf->requesters.assign(blocks, 0);
  pf->block_from.assign(blocks, PeerAddress{});
  pf->single_source = failed_blocks_.contains(piece);
  if (pf->single_source) pf->preferred = TopSender(piece);
  ResetBlocks(*pf);
  picker_.SetInProgress(piece, true);
  PieceInFlight* raw = pf.get();
  in_flight_[piece] = std::move(pf);
  in_flight_order_.push_back(raw);
  if (raw->received == raw->state.size()) {  // nothing but pad: already complete
    raw->hashing = true;
    EmitHash(*raw);
  }
  return raw;
}

void PieceAssembly::DropInFlight(uint32_t piece) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) return;
  for (auto& [key, peer] : peers_) peer->CancelPiece(piece);
  Recycle(std::move(it->second->buffer));
  in_flight_order_.erase(
      std::find(in_flight_order_.begin(), in_flight_order_.end(), it->second.get()));
  in_flight_.erase(it);
}

bool PieceAssembly::MayFetchFrom(const PieceInFlight& pf, const PeerSession& peer) const {
  if (!pf.single_source) return true;
  if (pf.source == PeerAddress{}) {
    return !peer.snubbed && (pf.preferred == PeerAddress{} || pf.preferred == peer.address);
  }
  return pf.source == peer.address;
}

PeerAddress PieceAssembly::TopSender(uint32_t piece) const {
  auto f = failed_blocks_.find(piece);
  if (f == failed_blocks_.end()) return {};
  absl::flat_hash_map<PeerAddress, uint32_t> counts;
  PeerAddress top{};
  uint32_t most = 0;
  for (const FailedBlock& fb : f->second) {
    const uint32_t n = ++counts[fb.from];
    if (n > most) {
      most = n;
      top = fb.from;
    }
  }
  // Only a peer we are connected to can be waited for.
  for (const auto& [key, peer] : peers_) {
    if (peer->address == top && peer->handshaken && !peer->peer_choking && !peer->snubbed) {
      return top;
    }
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Requests

bool PieceAssembly::PickBlock(PeerSession& peer, BlockRequest* out) {
  auto take_free = [&](PieceInFlight& pf) {
    if (pf.hashing || pf.free_blocks == 0 || !MayFetchFrom(pf, peer)) return false;
    for (uint32_t b = pf.first_free; b < pf.state.size(); ++b) {
      if (pf.state[b] == PieceInFlight::kFree) {
        pf.Take(b, peer, out);
        return true;
      }
    }
    return false;
  };
  // 1. Finish pieces already started, oldest first, so memory is freed early.
  for (PieceInFlight* pf : in_flight_order_) {
    if (pf->free_blocks != 0 && peer.has.Get(pf->piece) && take_free(*pf)) return true;
  }
  // 2. Start the rarest piece this peer has (among equals, the next one of the extent it is in),
  // if the memory budget allows and no other shard of this torrent has claimed it.
  while (in_flight_.size() < pieces_in_flight_max_) {
    std::optional<uint32_t> piece = picker_.Pick(peer.has, peer.pick_extent);
    if (!piece.has_value()) break;
    peer.pick_extent = picker_.ExtentOf(*piece);
    if (!claims_->TryClaim(*piece)) {
      picker_.SetInProgress(*piece, true);  // another shard has it (or just finished it)
      claimed_elsewhere_.push_back(*piece);
      continue;
    }
    PieceBuffer buffer;
    if (!TakeBuffer(&buffer)) {
      claims_->Release(*piece);
      break;
    }
    if (take_free(*StartPiece(*piece, /*owns_claim=*/true, std::move(buffer)))) return true;
  }
  // 3. Endgame: nothing left to start, so ask this peer too for blocks others are slow on,
  // first whole pieces another shard is still fetching, then blocks of our own pieces.
  if (picker_.num_pickable() == 0) {
    if (StealPiece(peer, out)) return true;
    for (PieceInFlight* in_flight : in_flight_order_) {
      PieceInFlight& pf = *in_flight;
      const uint32_t piece = pf.piece;
      if (pf.hashing || !peer.has.Get(piece) || !MayFetchFrom(pf, peer)) continue;
      for (uint32_t b = 0; b < pf.state.size(); ++b) {
        if (pf.state[b] != PieceInFlight::kRequested || pf.requesters[b] >= kEndgameRequestersMax)
          continue;
        const BlockRequest r{piece, b * kBlockSize,
                             std::min<uint32_t>(kBlockSize, pf.size - b * kBlockSize)};
        if (peer.HasRequestOut(r)) continue;
        pf.Take(b, peer, out);
        return true;
      }
    }
  }
  return false;
}

bool PieceAssembly::StealPiece(const PeerSession& peer, BlockRequest* out) {
  if (claimed_elsewhere_.empty() || in_flight_.size() >= pieces_in_flight_max_) return false;
  for (size_t i = 0; i < claimed_elsewhere_.size();) {
    const uint32_t piece = claimed_elsewhere_[i];
    const PieceClaims::State state = claims_->Get(piece);
    if (state == PieceClaims::State::kHave || have_.Get(piece)) {
      // Done elsewhere; its remote have is on the way.
      claimed_elsewhere_[i] = claimed_elsewhere_.back();
      claimed_elsewhere_.pop_back();
      continue;
    }
    if (!peer.has.Get(piece) || in_flight_.contains(piece)) {
      ++i;
      continue;
    }
    PieceBuffer buffer;
    if (!TakeBuffer(&buffer)) return false;
    // A piece the other shard gave up is ours to claim; otherwise fetch a duplicate and let the
    // first to verify it win.
    const bool owns = state == PieceClaims::State::kFree && claims_->TryClaim(piece);
    claimed_elsewhere_[i] = claimed_elsewhere_.back();
    claimed_elsewhere_.pop_back();
    PieceInFlight& pf = *StartPiece(piece, owns, std::move(buffer));
    if (pf.hashing || pf.free_blocks == 0 || !MayFetchFrom(pf, peer)) continue;
    for (uint32_t b = 0; b < pf.state.size(); ++b) {
      if (pf.state[b] != PieceInFlight::kFree) continue;
      pf.Take(b, peer, out);
      return true;
    }
  }
  return false;
}

void PieceAssembly::ReleaseBlock(const BlockRequest& r) {
  auto it = in_flight_.find(r.piece);
  if (it == in_flight_.end()) return;
  PieceInFlight& pf = *it->second;
  const uint32_t b = r.begin / kBlockSize;
  if (b >= pf.state.size()) return;
  if (pf.requesters[b] > 0) --pf.requesters[b];
  if (pf.state[b] == PieceInFlight::kRequested && pf.requesters[b] == 0) {
    pf.state[b] = PieceInFlight::kFree;
    ++pf.free_blocks;
    pf.first_free = std::min(pf.first_free, b);
  }
}

void PieceAssembly::ReleaseRequests(PeerSession& peer) {
  std::vector<uint32_t> touched;
  for (const BlockRequest& r : peer.requests_out) {
    ReleaseBlock(r);
    if (touched.empty() || touched.back() != r.piece) touched.push_back(r.piece);
  }
  peer.requests_out.clear();
  for (uint32_t piece : touched) MaybeAbandonPiece(piece);
}

void PieceAssembly::MaybeAbandonPiece(uint32_t piece) {
  // An untouched piece nobody is fetching holds a buffer for nothing; give the slot back so
  // another piece (perhaps one a remaining peer has) can use it.
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) return;
  PieceInFlight& pf = *it->second;
  if (pf.received != 0 || pf.hashing || pf.chunk_out) return;
  for (uint8_t n : pf.requesters)
    if (n != 0) return;
  if (pf.owns_claim) {
    claims_->Release(piece);
    picker_.SetInProgress(piece, false);
  } else {
    claimed_elsewhere_.push_back(piece);  // still another shard's; stays stealable
  }
  DropInFlight(piece);
}

void PieceAssembly::DropSingleSource(const PeerSession& peer) {
  // A piece fetched from this peer alone cannot be finished by others without mixing senders
  // again: what it sent is discarded and the next peer starts the piece over.
  for (PieceInFlight* in_flight : in_flight_order_) {
    PieceInFlight& pf = *in_flight;
    if (!pf.single_source) continue;
    if (pf.preferred == peer.address) pf.preferred = PeerAddress{};
    if (pf.hashing || pf.source != peer.address) continue;
    stats_.wasted_bytes += static_cast<int64_t>(pf.received) * kBlockSize;
    if (pf.chunk_out) {  // the pool still reads the buffer: restart once the chunk is back
      pf.reset_after_chunk = true;
      pf.hashing = true;
      continue;
    }
    ResetBlocks(pf);
  }
}

// ---------------------------------------------------------------------------------------------
// Blocks in, pieces out

PieceAssembly::BlockResult PieceAssembly::AcceptBlock(PeerSession& peer, const BlockRequest& r,
                                                      bool requested,
                                                      absl::Span<const uint8_t> block) {
  auto it = in_flight_.find(r.piece);
  const bool block_aligned = r.begin % kBlockSize == 0;
  // Only a block this peer still owes us goes into a piece buffer: an unrequested block would let
  // a hostile peer write garbage into pieces being fetched from honest peers, so those pieces fail
  // their hash check and the honest peers are blamed (tests/e2e/test_malicious_peers.py,
  // bad_piece). A block sent just before a choke or snub released its request is wasted instead.
  if (!requested || it == in_flight_.end() || it->second->hashing || !block_aligned) {
    // Cancelled, duplicate from endgame, or never asked for: not an error, just waste.
    stats_.wasted_bytes += static_cast<int64_t>(block.size());
    return BlockResult::kWasted;
  }
  PieceInFlight& pf = *it->second;
  const uint32_t b = r.begin / kBlockSize;
  const uint32_t expected_len = std::min<uint32_t>(kBlockSize, pf.size - r.begin);
  if (block.size() != expected_len) return BlockResult::kWrongLength;
  if (pf.requesters[b] > 0) --pf.requesters[b];
  if (pf.state[b] == PieceInFlight::kReceived) {
    stats_.wasted_bytes += static_cast<int64_t>(block.size());
    return BlockResult::kWasted;
  }
  if (pf.state[b] == PieceInFlight::kFree) {
    --pf.free_blocks;  // arrived without a live request (e.g. sent before a choke)
  }
  // The one copy on the download path: socket buffer -> piece buffer.
  std::memcpy(pf.buffer.data() + r.begin, block.data(), block.size());
  pf.state[b] = PieceInFlight::kReceived;
  pf.block_from[b] = peer.address;
  ++pf.received;
  AdvanceHash(pf);
  AdvanceChunk(pf);
  peer.bytes_downloaded += static_cast<int64_t>(block.size());
  stats_.downloaded_payload += static_cast<int64_t>(block.size());
  if (std::find(pf.contributors.begin(), pf.contributors.end(), peer.address) ==
      pf.contributors.end()) {
    pf.contributors.push_back(peer.address);
  }
  // Endgame: other peers were asked for the same block; tell them not to bother.
  if (pf.requesters[b] > 0) {
    for (auto& [key, other] : peers_) {
      if (other.get() != &peer) other->CancelRequest(r);
    }
    pf.requesters[b] = 0;
  }
  if (pf.received == pf.state.size()) {
    pf.hashing = true;
    EmitHash(pf);
  }
  return BlockResult::kStored;
}

bool PieceAssembly::HandleHashResult(uint32_t piece, bool ok, PieceBuffer buffer,
                                     std::vector<PeerAddress>* to_ban) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) {
    Recycle(std::move(buffer));
    return false;
  }
  PieceInFlight& pf = *it->second;
  pf.buffer = std::move(buffer);
  if (have_.Get(piece)) {  // another shard finished it while we were hashing our copy
    DropInFlight(piece);
    return false;
  }
  auto block_digest = [&](uint32_t b) {
    const uint32_t begin = b * kBlockSize;
    return Sha1(absl::MakeConstSpan(pf.buffer.data() + begin,
                                    std::min<uint32_t>(kBlockSize, pf.size - begin)));
  };
  auto add_ban = [&](PeerAddress a) {
    if (std::find(to_ban->begin(), to_ban->end(), a) == to_ban->end()) to_ban->push_back(a);
  };
  if (ok) {
    Action a;
    a.type = Action::Type::kWritePiece;
    a.piece = piece;
    // Smart ban: whoever sent a block of an earlier, failed copy that differs from the good
    // data sent corrupt data.
    if (auto f = failed_blocks_.find(piece); f != failed_blocks_.end()) {
      for (const FailedBlock& fb : f->second) {
        if (fb.digest != block_digest(fb.block)) add_ban(fb.from);
      }
      failed_blocks_.erase(f);
    }
    a.buffer = std::move(pf.buffer);
    actions_.push_back(std::move(a));
    return false;
  }
  ++stats_.pieces_failed;
  stats_.wasted_bytes += pf.size;
  if (pf.contributors.size() == 1) {
    add_ban(pf.contributors[0]);  // the only sender: certainly the one who lied
  } else if (!pf.contributors.empty()) {
    // Several peers sent blocks, so some of them may be innocent. Keep each block's digest and
    // judge the senders once the piece passes. Until then the piece is fetched from one peer at
    // a time: a peer that races honest ones with one corrupt block per piece otherwise made the
    // piece fail forever and was never judged. So a piece fails with several senders at most
    // once, and every later failure bans its only sender.
    std::vector<FailedBlock>& stash = failed_blocks_[piece];
    for (uint32_t b = 0; b < pf.state.size() && stash.size() < 1024; ++b) {
      if (pf.block_from[b] == PeerAddress{}) continue;  // pad: zeros we wrote ourselves
      stash.push_back(FailedBlock{b, pf.block_from[b], block_digest(b)});
    }
    pf.single_source = true;
  }
  if (pf.single_source) pf.preferred = TopSender(piece);
  if (pf.web) {
    // The web seed is judged by its own driver (engine/webseed); the piece is free again for
    // peers and servers alike.
    claims_->Release(piece);
    picker_.SetInProgress(piece, false);
    DropInFlight(piece);
    return true;
  }
  // Start the piece over; its blocks go back to the picker.
  ResetBlocks(pf);
  for (auto& [key, peer] : peers_) peer->ForgetPiece(piece);
  return true;
}

bool PieceAssembly::HandlePieceWritten(uint32_t piece, bool ok, PieceBuffer buffer) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) {
    Recycle(std::move(buffer));
    return false;
  }
  it->second->buffer = std::move(buffer);
  if (ok) DropInFlight(piece);
  return true;
}

bool PieceAssembly::StartWebPiece(uint32_t piece) {
  if (in_flight_.size() >= pieces_in_flight_max_ || in_flight_.contains(piece)) return false;
  if (!claims_->TryClaim(piece)) return false;
  PieceBuffer buffer;
  if (!TakeBuffer(&buffer)) {
    claims_->Release(piece);
    return false;
  }
  PieceInFlight& pf = *StartPiece(piece, /*owns_claim=*/true, std::move(buffer));
  if (pf.hashing) return true;  // nothing but pad
  // Every block counts as received, so no peer is asked for one; web_left tracks the bytes.
  pf.web = true;
  pf.web_left = pf.size;
  pf.single_source = false;
  std::fill(pf.state.begin(), pf.state.end(), PieceInFlight::kReceived);
  pf.free_blocks = 0;
  pf.received = static_cast<uint32_t>(pf.state.size());
  return true;
}

bool PieceAssembly::AcceptWebData(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end() || !it->second->web || it->second->hashing) return false;
  PieceInFlight& pf = *it->second;
  if (begin > pf.size || data.size() > pf.size - begin ||
      static_cast<int64_t>(data.size()) > pf.web_left) {
    return false;
  }
  std::memcpy(pf.buffer.data() + begin, data.data(), data.size());
  pf.web_left -= static_cast<int64_t>(data.size());
  stats_.downloaded_payload += static_cast<int64_t>(data.size());
  stats_.web_seed_payload += static_cast<int64_t>(data.size());
  if (pf.web_left == 0) {
    pf.hashing = true;
    EmitHash(pf);
  }
  return true;
}

void PieceAssembly::CancelWebPiece(uint32_t piece) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end() || !it->second->web || it->second->hashing) return;
  stats_.wasted_bytes += it->second->size - it->second->web_left;
  claims_->Release(piece);
  picker_.SetInProgress(piece, false);
  DropInFlight(piece);
}

bool PieceAssembly::IsWebPiece(uint32_t piece) const {
  auto it = in_flight_.find(piece);
  return it != in_flight_.end() && it->second->web;
}

void PieceAssembly::HandleRemoteHave(uint32_t piece) {
  auto it = in_flight_.find(piece);
  if (it == in_flight_.end()) return;
  PieceInFlight& pf = *it->second;
  if (pf.chunk_out) {  // the pool still reads the buffer: drop once the chunk is back
    for (auto& [key, peer] : peers_) peer->CancelPiece(piece);
    pf.drop_after_chunk = true;
    pf.hashing = true;
    return;
  }
  if (!pf.hashing) DropInFlight(piece);
}

}  // namespace torrenty::engine
