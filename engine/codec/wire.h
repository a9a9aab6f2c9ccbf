// BEP 3 peer wire codec: handshake and length-prefixed messages, big-endian.
// Parsing borrows the caller's buffer and encoders write into caller-owned memory, so the
// per-message hot path never allocates.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/base/types.h"

namespace torrenty::engine::wire {

inline constexpr size_t kHandshakeSize = 68;
inline constexpr std::string_view kProtocolString = "BitTorrent protocol";

enum class MsgType : uint8_t {
  kChoke = 0,
  kUnchoke = 1,
  kInterested = 2,
  kNotInterested = 3,
  kHave = 4,
  kBitfield = 5,
  kRequest = 6,
  kPiece = 7,
  kCancel = 8,
  kPort = 9,
  // BEP 6 Fast extension.
  kSuggest = 13,
  kHaveAll = 14,
  kHaveNone = 15,
  kRejectRequest = 16,
  kAllowedFast = 17,
  kKeepAlive = 254,
  // Any other id (extensions such as BEP 10): the caller may look at raw_id/payload or skip it;
  // it is not an error.
  kUnknown = 255,
};

// For logs and test failure messages.
std::string_view MsgTypeName(MsgType type);

struct Message {
  MsgType type = MsgType::kKeepAlive;
  uint8_t raw_id = 0;
  // request/cancel/reject: all three. piece: index, begin, and length == payload.size().
  // have/suggest/allowed fast: index.
  uint32_t index = 0, begin = 0, length = 0;
  uint16_t port = 0;
  // Bitfield bytes, block data of a piece, or the body of an unknown message. Borrows the input.
  absl::Span<const uint8_t> payload;
};

struct Handshake {
  std::array<uint8_t, 8> reserved{};
  InfoHash info_hash{};
  PeerId peer_id{};
};

// Writes kHandshakeSize bytes with all reserved bits clear.
void EncodeHandshake(const InfoHash& info_hash, const PeerId& peer_id, uint8_t* out);
// Same, with caller-chosen reserved bits (e.g. BEP 10 sets reserved[5] |= 0x10).
void EncodeHandshake(const InfoHash& info_hash, const PeerId& peer_id,
                     const std::array<uint8_t, 8>& reserved, uint8_t* out);

// `in` must hold >= kHandshakeSize bytes (extra bytes are ignored); error unless pstrlen is 19
// and pstr is "BitTorrent protocol".
[[nodiscard]] absl::StatusOr<Handshake> ParseHandshake(absl::Span<const uint8_t> in);

// Parses one message at the front of `in`. Returns the number of bytes consumed, 0 when `in`
// holds only part of a message (need more), or an error when the message is malformed: length
// prefix > max_message_len, or a fixed-size message with a wrong length (choke..not interested
// must be 1, have 5, request/cancel 13, port 3, piece >= 9; BEP 6: have all/have none 1,
// suggest/allowed fast 5, reject 13). The oversize check fires as soon
// as the 4-byte prefix is available, so a hostile peer cannot make us buffer a huge message.
[[nodiscard]] absl::StatusOr<size_t> ParseMessage(absl::Span<const uint8_t> in,
                                                  uint32_t max_message_len, Message* out);

inline constexpr size_t kPieceHeaderSize = 13;  // <len><7><index><begin>
inline constexpr size_t kSimpleSize = 5;
inline constexpr size_t kKeepAliveSize = 4;
inline constexpr size_t kHaveSize = 9;
inline constexpr size_t kRequestSize = 17;
inline constexpr size_t kCancelSize = 17;
inline constexpr size_t kPortSize = 7;
inline constexpr size_t kBitfieldHeaderSize = 5;

// choke/unchoke/interested/not interested, have all/have none: 5 bytes.
size_t EncodeSimple(MsgType type, uint8_t* out);
size_t EncodeKeepAlive(uint8_t* out);                                                 // 4 bytes
size_t EncodeHave(uint32_t index, uint8_t* out);                                      // 9 bytes
size_t EncodeRequest(uint32_t index, uint32_t begin, uint32_t length, uint8_t* out);  // 17
size_t EncodeCancel(uint32_t index, uint32_t begin, uint32_t length, uint8_t* out);   // 17
// 13 bytes; the caller sends block_len bytes of block data right after.
size_t EncodePieceHeader(uint32_t index, uint32_t begin, uint32_t block_len, uint8_t* out);
size_t EncodeBitfield(absl::Span<const uint8_t> bits, uint8_t* out);  // 5 + bits.size()
size_t EncodePort(uint16_t port, uint8_t* out);                       // 7 bytes
// BEP 6: 9 bytes (suggest, allowed fast) and 17 bytes (reject request).
size_t EncodeSuggest(uint32_t index, uint8_t* out);
size_t EncodeAllowedFast(uint32_t index, uint8_t* out);
size_t EncodeReject(uint32_t index, uint32_t begin, uint32_t length, uint8_t* out);

// BEP 6 reserved bit: reserved[7] & 0x04.
inline constexpr uint8_t kFastReservedByte = 7;
inline constexpr uint8_t kFastReservedBit = 0x04;
inline bool SupportsFast(const std::array<uint8_t, 8>& reserved) {
  return (reserved[kFastReservedByte] & kFastReservedBit) != 0;
}

// max(9 + kBlockSize, 1 + ceil(num_pieces / 8)): the limit a session passes to ParseMessage.
uint32_t MaxMessageLen(uint32_t num_pieces);

}  // namespace torrenty::engine::wire
