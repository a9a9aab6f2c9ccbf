// BEP 3 peer wire codec implementation; see wire.h for the contract.
#include "engine/codec/wire.h"

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace torrenty::engine::wire {
namespace {

inline uint32_t LoadBE32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline uint16_t LoadBE16(const uint8_t* p) {
  return static_cast<uint16_t>((uint16_t{p[0]} << 8) | uint16_t{p[1]});
}

inline void StoreBE32(uint32_t v, uint8_t* p) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

inline void StoreBE16(uint16_t v, uint8_t* p) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Writes <len><id> and returns the header size.
inline size_t StoreHeader(uint32_t len, MsgType id, uint8_t* out) {
  StoreBE32(len, out);
  out[4] = static_cast<uint8_t>(id);
  return 5;
}

size_t EncodeTriple(MsgType id, uint32_t index, uint32_t begin, uint32_t length, uint8_t* out) {
  StoreHeader(13, id, out);
  StoreBE32(index, out + 5);
  StoreBE32(begin, out + 9);
  StoreBE32(length, out + 13);
  return 17;
}

absl::Status WrongLength(uint8_t id, uint32_t len) {
  // abseil here is built with its own string_view, distinct from std::string_view.
  const std::string_view name = MsgTypeName(static_cast<MsgType>(id));
  return absl::InvalidArgumentError(
      absl::StrCat("wire: message ", absl::string_view(name.data(), name.size()), " (id ",
                   static_cast<int>(id), ") has invalid length ", len));
}

}  // namespace

std::string_view MsgTypeName(MsgType type) {
  switch (type) {
    case MsgType::kChoke:
      return "choke";
    case MsgType::kUnchoke:
      return "unchoke";
    case MsgType::kInterested:
      return "interested";
    case MsgType::kNotInterested:
      return "not_interested";
    case MsgType::kHave:
      return "have";
    case MsgType::kBitfield:
      return "bitfield";
    case MsgType::kRequest:
      return "request";
    case MsgType::kPiece:
      return "piece";
    case MsgType::kCancel:
      return "cancel";
    case MsgType::kPort:
      return "port";
    case MsgType::kSuggest:
      return "suggest";
    case MsgType::kHaveAll:
      return "have_all";
    case MsgType::kHaveNone:
      return "have_none";
    case MsgType::kRejectRequest:
      return "reject_request";
    case MsgType::kAllowedFast:
      return "allowed_fast";
    case MsgType::kKeepAlive:
      return "keep_alive";
    case MsgType::kUnknown:
      return "unknown";
  }
  return "unknown";
}

void EncodeHandshake(const InfoHash& info_hash, const PeerId& peer_id, uint8_t* out) {
  EncodeHandshake(info_hash, peer_id, std::array<uint8_t, 8>{}, out);
}

void EncodeHandshake(const InfoHash& info_hash, const PeerId& peer_id,
                     const std::array<uint8_t, 8>& reserved, uint8_t* out) {
  out[0] = static_cast<uint8_t>(kProtocolString.size());
  std::memcpy(out + 1, kProtocolString.data(), kProtocolString.size());
  std::memcpy(out + 20, reserved.data(), reserved.size());
  std::memcpy(out + 28, info_hash.data(), info_hash.size());
  std::memcpy(out + 48, peer_id.data(), peer_id.size());
}

absl::StatusOr<Handshake> ParseHandshake(absl::Span<const uint8_t> in) {
  if (in.size() < kHandshakeSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("wire: handshake needs ", kHandshakeSize, " bytes, got ", in.size()));
  }
  if (in[0] != kProtocolString.size() ||
      std::memcmp(in.data() + 1, kProtocolString.data(), kProtocolString.size()) != 0) {
    return absl::InvalidArgumentError("wire: handshake is not \"BitTorrent protocol\"");
  }
  Handshake hs;
  std::memcpy(hs.reserved.data(), in.data() + 20, hs.reserved.size());
  std::memcpy(hs.info_hash.data(), in.data() + 28, hs.info_hash.size());
  std::memcpy(hs.peer_id.data(), in.data() + 48, hs.peer_id.size());
  return hs;
}

absl::StatusOr<size_t> ParseMessage(absl::Span<const uint8_t> in, uint32_t max_message_len,
                                    Message* out) {
  if (in.size() < 4) return size_t{0};
  const uint32_t len = LoadBE32(in.data());
  if (len > max_message_len) {
    return absl::InvalidArgumentError(
        absl::StrCat("wire: message length ", len, " exceeds limit ", max_message_len));
  }
  const size_t total = size_t{4} + len;
  if (in.size() < total) return size_t{0};

  *out = Message{};
  if (len == 0) {
    out->type = MsgType::kKeepAlive;
    return total;
  }
  const uint8_t* body = in.data() + 4;
  const uint8_t id = body[0];
  out->raw_id = id;
  switch (id) {
    case 0:
    case 1:
    case 2:
    case 3:
    case 14:
    case 15:
      if (len != 1) return WrongLength(id, len);
      out->type = static_cast<MsgType>(id);
      break;
    case 4:
    case 13:
    case 17:
      if (len != 5) return WrongLength(id, len);
      out->type = static_cast<MsgType>(id);
      out->index = LoadBE32(body + 1);
      break;
    case 5:
      // The byte count is checked against the torrent by Bitfield::AssignFromWire.
      out->type = MsgType::kBitfield;
      out->payload = absl::Span<const uint8_t>(body + 1, len - 1);
      break;
    case 6:
    case 8:
    case 16:
      if (len != 13) return WrongLength(id, len);
      out->type = static_cast<MsgType>(id);
      out->index = LoadBE32(body + 1);
      out->begin = LoadBE32(body + 5);
      out->length = LoadBE32(body + 9);
      break;
    case 7:
      if (len < 9) return WrongLength(id, len);
      out->type = MsgType::kPiece;
      out->index = LoadBE32(body + 1);
      out->begin = LoadBE32(body + 5);
      out->length = len - 9;
      out->payload = absl::Span<const uint8_t>(body + 9, len - 9);
      break;
    case 9:
      if (len != 3) return WrongLength(id, len);
      out->type = MsgType::kPort;
      out->port = LoadBE16(body + 1);
      break;
    default:
      out->type = MsgType::kUnknown;
      out->payload = absl::Span<const uint8_t>(body + 1, len - 1);
      break;
  }
  return total;
}

size_t EncodeSimple(MsgType type, uint8_t* out) { return StoreHeader(1, type, out); }

size_t EncodeKeepAlive(uint8_t* out) {
  StoreBE32(0, out);
  return 4;
}

size_t EncodeHave(uint32_t index, uint8_t* out) {
  StoreHeader(5, MsgType::kHave, out);
  StoreBE32(index, out + 5);
  return 9;
}

size_t EncodeRequest(uint32_t index, uint32_t begin, uint32_t length, uint8_t* out) {
  return EncodeTriple(MsgType::kRequest, index, begin, length, out);
}

size_t EncodeCancel(uint32_t index, uint32_t begin, uint32_t length, uint8_t* out) {
  return EncodeTriple(MsgType::kCancel, index, begin, length, out);
}

size_t EncodePieceHeader(uint32_t index, uint32_t begin, uint32_t block_len, uint8_t* out) {
  StoreHeader(9 + block_len, MsgType::kPiece, out);
  StoreBE32(index, out + 5);
  StoreBE32(begin, out + 9);
  return kPieceHeaderSize;
}

size_t EncodeBitfield(absl::Span<const uint8_t> bits, uint8_t* out) {
  StoreHeader(static_cast<uint32_t>(1 + bits.size()), MsgType::kBitfield, out);
  if (!bits.empty()) std::memcpy(out + 5, bits.data(), bits.size());
  return 5 + bits.size();
}

size_t EncodePort(uint16_t port, uint8_t* out) {
  StoreHeader(3, MsgType::kPort, out);
  StoreBE16(port, out + 5);
  return 7;
}

size_t EncodeSuggest(uint32_t index, uint8_t* out) {
  StoreHeader(5, MsgType::kSuggest, out);
  StoreBE32(index, out + 5);
  return 9;
}

size_t EncodeAllowedFast(uint32_t index, uint8_t* out) {
  StoreHeader(5, MsgType::kAllowedFast, out);
  StoreBE32(index, out + 5);
  return 9;
}

size_t EncodeReject(uint32_t index, uint32_t begin, uint32_t length, uint8_t* out) {
  return EncodeTriple(MsgType::kRejectRequest, index, begin, length, out);
}

uint32_t MaxMessageLen(uint32_t num_pieces) {
  const uint64_t bitfield_len = 1 + (uint64_t{num_pieces} + 7) / 8;
  return static_cast<uint32_t>(std::max<uint64_t>(9 + uint64_t{kBlockSize}, bitfield_len));
}

}  // namespace torrenty::engine::wire
