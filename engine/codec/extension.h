// BEP 10 extension protocol and BEP 9 ut_metadata messages. Both ride in wire message id 20:
// <len><20><extended id><payload>, where extended id 0 is the extension handshake and any other
// id names an extension by the number the *receiver* assigned it in its handshake's `m`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace torrenty::engine::ext {

inline constexpr uint8_t kExtendedMsgId = 20;
inline constexpr uint8_t kHandshakeId = 0;
// reserved[5] & 0x10 in the BEP 3 handshake says the peer speaks BEP 10.
inline constexpr size_t kReservedByte = 5;
inline constexpr uint8_t kReservedBit = 0x10;

// Bounds on what a peer may tell us in its handshake. libtorrent sends about 200 bytes; a
// handshake that needs more is garbage or an attack.
inline constexpr size_t kMaxHandshakeSize = 16 << 10;
inline constexpr size_t kMaxExtensions = 64;
inline constexpr size_t kMaxNameLength = 64;
inline constexpr size_t kMaxClientLength = 256;

// BEP 9: metadata travels in 16 KiB pieces. The info dict of the largest real torrents (a few
// million pieces) stays well under 16 MiB; a bigger metadata_size is refused.
inline constexpr uint32_t kMetadataPieceSize = 16 << 10;
inline constexpr int64_t kMaxMetadataSize = int64_t{16} << 20;

struct Handshake {
  // `m`: extension name -> the id the sender wants to receive it under (0 = disabled).
  std::vector<std::pair<std::string, uint8_t>> m;
  std::string client;          // `v`
  uint16_t listen_port = 0;    // `p`; 0 when absent
  uint32_t reqq = 0;           // `reqq`; 0 when absent
  std::string yourip;          // `yourip`: 4 or 16 raw bytes, or empty
  int64_t metadata_size = -1;  // `metadata_size`; -1 when absent

  // The id the sender gave `name`, 0 when absent or disabled.
  uint8_t IdOf(absl::string_view name) const;
};

// The payload of an extended message with id 0 (after <20><0>). Unknown keys are ignored;
// a value of the wrong type for a known key, or past the limits above, is an error.
[[nodiscard]] absl::StatusOr<Handshake> ParseHandshake(absl::Span<const uint8_t> payload);
std::string EncodeHandshake(const Handshake& h);

// <len><20><ext id>: the 6 bytes before an extended message's payload.
inline constexpr size_t kHeaderSize = 6;
void EncodeHeader(uint8_t ext_id, size_t payload_len, uint8_t* out);

// --- BEP 9 ut_metadata ---
enum class MetadataType : uint8_t { kRequest = 0, kData = 1, kReject = 2 };

struct MetadataMessage {
  MetadataType type = MetadataType::kRequest;
  uint32_t piece = 0;
  int64_t total_size = -1;         // data only
  absl::Span<const uint8_t> data;  // data only; borrows the input
};

uint32_t MetadataPieceCount(int64_t total_size);
uint32_t MetadataPieceLength(int64_t total_size, uint32_t piece);

// Checks everything that can be checked without knowing the torrent: the type, the piece
// number within kMaxMetadataSize, and for data, 0 < total_size <= kMaxMetadataSize, the piece
// inside total_size and exactly MetadataPieceLength bytes after the dict.
[[nodiscard]] absl::StatusOr<MetadataMessage> ParseMetadataMessage(
    absl::Span<const uint8_t> payload);
std::string EncodeMetadataRequest(uint32_t piece);
std::string EncodeMetadataReject(uint32_t piece);
// The dict of a data message; the caller appends the piece's bytes.
std::string EncodeMetadataDataHeader(uint32_t piece, int64_t total_size);

}  // namespace torrenty::engine::ext
