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

void PeerSession::SendExtended(uint8_t ext_id, absl::Span<const uint8_t> payload,
                               absl::Span<const uint8_t> tail) {
  uint8_t* out = Append(ext::kHeaderSize + payload.size() + tail.size());
  ext::EncodeHeader(ext_id, payload.size() + tail.size(), out);
  if (!payload.empty()) std::memcpy(out + ext::kHeaderSize, payload.data(), payload.size());
  if (!tail.empty()) std::memcpy(out + ext::kHeaderSize + payload.size(), tail.data(), tail.size());
}

absl::Span<const uint8_t> PeerSession::NextSend() {
  if (sending_offset_ < sending_.size()) {
    return absl::MakeConstSpan(sending_).subspan(sending_offset_);
  }
  if (pending_.empty()) return {};
  sending_.clear();
  sending_offset_ = 0;
  sending_.swap(pending_);
  return absl::MakeConstSpan(sending_);
}

void PeerSession::HandleSent(size_t bytes, Instant now) {
  sending_offset_ = std::min(sending_.size(), sending_offset_ + bytes);
  last_sent = now;
}

}  // namespace torrenty::engine
