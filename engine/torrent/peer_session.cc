#include "engine/torrent/peer_session.h"

#include <algorithm>
#include <cstring>

#include "engine/codec/extension.h"

namespace torrenty::engine {

PeerSession::PeerSession(PeerKey peer_key, PeerAddress peer_address, bool is_outgoing,
                         uint32_t num_pieces, Instant now, std::vector<Action>* actions)
    : key(peer_key),
      address(peer_address),
      outgoing(is_outgoing),
      has(num_pieces),
      connected_at(now),
      last_received(now),
      last_sent(now),
      actions_(actions) {}

CloseReason PeerSession::CheckHandshake(absl::Span<const uint8_t> bytes, const InfoHash& info_hash,
                                        const PeerId& self_id, std::string* error) {
  absl::StatusOr<wire::Handshake> hs = wire::ParseHandshake(bytes);
  if (!hs.ok()) {
    *error = std::string(hs.status().message());
    return CloseReason::kProtocolError;
  }
  if (hs->info_hash != info_hash) return CloseReason::kWrongInfoHash;
  if (hs->peer_id == self_id) return CloseReason::kSelfConnection;
  id = hs->peer_id;
  fast = wire::SupportsFast(hs->reserved);
  extensions = (hs->reserved[ext::kReservedByte] & ext::kReservedBit) != 0;
  return CloseReason::kNone;
}

bool PeerSession::HasRequestOut(const BlockRequest& r) const {
  return std::find(requests_out.begin(), requests_out.end(), r) != requests_out.end();
}

bool PeerSession::TakeRequestOut(const BlockRequest& r) {
  auto it = std::find(requests_out.begin(), requests_out.end(), r);
  if (it == requests_out.end()) return false;
  requests_out.erase(it);
  return true;
}

void PeerSession::CancelRequest(const BlockRequest& r) {
  if (TakeRequestOut(r)) SendCancel(r);
}

void PeerSession::CancelPiece(uint32_t piece) {
  for (auto r = requests_out.begin(); r != requests_out.end();) {
    if (r->piece != piece) {
      ++r;
      continue;
    }
    SendCancel(*r);
    r = requests_out.erase(r);
  }
}

void PeerSession::ForgetPiece(uint32_t piece) {
  requests_out.erase(std::remove_if(requests_out.begin(), requests_out.end(),
                                    [&](const BlockRequest& r) { return r.piece == piece; }),
                     requests_out.end());
}

uint8_t* PeerSession::Append(size_t n) {
  const bool was_idle = send_queue_bytes() == 0;
  const size_t old = pending_.size();
  pending_.resize(old + n);
  if (was_idle) {
    Action a;
    a.type = Action::Type::kFlush;
    a.peer = key;
    actions_->push_back(std::move(a));
  }
  return pending_.data() + old;
}

void PeerSession::SendHandshake(const InfoHash& info_hash, const PeerId& self_id) {
  std::array<uint8_t, 8> reserved{};
  reserved[wire::kFastReservedByte] |= wire::kFastReservedBit;
  reserved[ext::kReservedByte] |= ext::kReservedBit;
  wire::EncodeHandshake(info_hash, self_id, reserved, Append(wire::kHandshakeSize));
}

void PeerSession::SendBitfield(const Bitfield& have) {
  wire::EncodeBitfield(have.bytes(), Append(wire::kBitfieldHeaderSize + have.bytes().size()));
}

void PeerSession::SendSimple(wire::MsgType type) { wire::EncodeSimple(type, Append(5)); }

void PeerSession::SendHave(uint32_t piece) { wire::EncodeHave(piece, Append(9)); }

void PeerSession::SendRequest(const BlockRequest& r) {
  wire::EncodeRequest(r.piece, r.begin, r.length, Append(17));
}

void PeerSession::SendCancel(const BlockRequest& r) {
  wire::EncodeCancel(r.piece, r.begin, r.length, Append(17));
}

void PeerSession::SendKeepAlive() { wire::EncodeKeepAlive(Append(4)); }

void PeerSession::SendReject(const BlockRequest& r) {
  wire::EncodeReject(r.piece, r.begin, r.length, Append(17));
}

void PeerSession::SendAllowedFast(uint32_t piece) { wire::EncodeAllowedFast(piece, Append(9)); }

void PeerSession::SendBlock(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data) {
  uint8_t* out = Append(wire::kPieceHeaderSize + data.size());
  wire::EncodePieceHeader(piece, begin, static_cast<uint32_t>(data.size()), out);
  std::memcpy(out + wire::kPieceHeaderSize, data.data(), data.size());
}

void PeerSession::SendBlockRef(uint32_t piece, uint32_t begin, absl::Span<const uint8_t> data,
                               uint64_t pin) {
  // Append first: it sees the queue as it was (a kFlush when it was empty).
  uint8_t* out = Append(wire::kPieceHeaderSize);
  wire::EncodePieceHeader(piece, begin, static_cast<uint32_t>(data.size()), out);
  pending_refs_.push_back(
      BlockRef{pending_.size(), data.data(), static_cast<uint32_t>(data.size()), pin});
  pending_ref_bytes_ += data.size();
}

void PeerSession::Release(uint64_t pin) {
  Action a;
  a.type = Action::Type::kReleaseBlock;
  a.peer = key;
  a.pin = pin;
  actions_->push_back(std::move(a));
}

void PeerSession::ReleaseBlocks() {
  for (size_t i = sent_refs_; i < sending_refs_.size(); ++i) Release(sending_refs_[i].pin);
  for (const BlockRef& r : pending_refs_) Release(r.pin);
  // The peer is being dropped: nothing queued will be sent.
  sending_.clear();
  pending_.clear();
  sending_refs_.clear();
  pending_refs_.clear();
  sending_offset_ = sent_bytes_ = sent_refs_ = ref_sent_ = 0;
  sending_ref_bytes_ = pending_ref_bytes_ = 0;
}

void PeerSession::SendExtended(uint8_t ext_id, absl::Span<const uint8_t> payload,
                               absl::Span<const uint8_t> tail) {
  uint8_t* out = Append(ext::kHeaderSize + payload.size() + tail.size());
  ext::EncodeHeader(ext_id, payload.size() + tail.size(), out);
  if (!payload.empty()) std::memcpy(out + ext::kHeaderSize, payload.data(), payload.size());
  if (!tail.empty()) std::memcpy(out + ext::kHeaderSize + payload.size(), tail.data(), tail.size());
}

absl::Span<const uint8_t> PeerSession::NextSend() {
  absl::Span<const uint8_t> part;
  return NextSendParts(absl::MakeSpan(&part, 1)) == 1 ? part : absl::Span<const uint8_t>();
}

size_t PeerSession::NextSendParts(absl::Span<absl::Span<const uint8_t>> out) {
  if (sending_offset_ == sending_.size() + sending_ref_bytes_) {
    if (pending_.empty()) return 0;
    sending_.clear();
    sending_refs_.clear();
    sending_.swap(pending_);
    sending_refs_.swap(pending_refs_);
    sending_ref_bytes_ = pending_ref_bytes_;
    pending_ref_bytes_ = 0;
    sending_offset_ = sent_bytes_ = sent_refs_ = ref_sent_ = 0;
  }
  size_t n = 0, b = sent_bytes_, r = sent_refs_, rp = ref_sent_;
  while (n < out.size()) {
    if (r < sending_refs_.size() && b == sending_refs_[r].at) {
      const BlockRef& ref = sending_refs_[r];
      if (rp < ref.length) out[n++] = absl::MakeConstSpan(ref.data + rp, ref.length - rp);
      ++r;
      rp = 0;
      continue;
    }
    const size_t end = r < sending_refs_.size() ? sending_refs_[r].at : sending_.size();
    if (b == end) break;
    out[n++] = absl::MakeConstSpan(sending_.data() + b, end - b);
    b = end;
  }
  return n;
}

void PeerSession::HandleSent(size_t bytes, Instant now) {
  bytes = std::min(bytes, sending_.size() + sending_ref_bytes_ - sending_offset_);
  sending_offset_ += bytes;
  for (;;) {
    if (sent_refs_ < sending_refs_.size() && sent_bytes_ == sending_refs_[sent_refs_].at) {
      const BlockRef& ref = sending_refs_[sent_refs_];
      const size_t take = std::min(bytes, size_t{ref.length} - ref_sent_);
      ref_sent_ += take;
      bytes -= take;
      if (ref_sent_ < ref.length) break;
      Release(ref.pin);
      ++sent_refs_;
      ref_sent_ = 0;
      continue;
    }
    if (bytes == 0) break;
    const size_t end =
        sent_refs_ < sending_refs_.size() ? sending_refs_[sent_refs_].at : sending_.size();
    const size_t take = std::min(bytes, end - sent_bytes_);
    sent_bytes_ += take;
    bytes -= take;
    if (take == 0) break;
  }
  last_sent = now;
}

}  // namespace torrenty::engine
