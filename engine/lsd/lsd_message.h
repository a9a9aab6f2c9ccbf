// BEP 14 local service discovery: the BT-SEARCH announce, an HTTP-like request sent as one UDP
// datagram to a multicast group.
//
//   BT-SEARCH * HTTP/1.1\r\n
//   Host: 239.192.152.143:6771\r\n
//   Port: <listening port>\r\n
//   Infohash: <40 hex digits>\r\n      (one line per torrent; BEP 14 allows several)
//   cookie: <opaque token>\r\n         (optional; lets a sender drop its own looped-back copy)
//   \r\n
//
// Everything on the group is hostile input: the parser takes a bounded datagram, header names
// case-insensitively, ignores headers it does not know, and refuses anything malformed (a
// missing or bad Port, an info-hash that is not 40 hex digits, too many headers or info-hashes)
// as a whole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/base/types.h"

namespace torrenty::engine::lsd {

inline constexpr uint16_t kLsdPort = 6771;
inline constexpr char kLsdGroupV4[] = "239.192.152.143";
inline constexpr char kLsdHostV4[] = "239.192.152.143:6771";
inline constexpr char kLsdHostV6[] = "[ff15::efc0:988f]:6771";

// Longer datagrams are refused unread (BEP 14 keeps messages within one Ethernet frame).
inline constexpr size_t kMaxMessageBytes = 1400;
// Bounds on what one datagram may carry.
inline constexpr size_t kMaxHeaders = 48;
inline constexpr size_t kMaxInfoHashes = 24;
inline constexpr size_t kMaxCookieBytes = 64;
inline constexpr size_t kMaxHostBytes = 64;

struct LsdAnnounce {
  std::string host;  // may be empty on input; some senders leave it out
  uint16_t port = 0;
  std::vector<InfoHash> info_hashes;  // 1..kMaxInfoHashes, in message order
  std::string cookie;                 // empty when absent
};

// The datagram for `a`. Every field must be within the bounds above (checked: the result is
// InvalidArgument otherwise), so whatever we send, our own parser accepts.
[[nodiscard]] absl::StatusOr<std::string> EncodeLsdAnnounce(const LsdAnnounce& a);

// Bytes one more info-hash line adds to a message (for packing several into one datagram).
inline constexpr size_t kInfoHashLineBytes = 10 + 40 + 2;  // "Infohash: " + hex + CRLF

[[nodiscard]] absl::StatusOr<LsdAnnounce> ParseLsdAnnounce(absl::Span<const uint8_t> datagram);

}  // namespace torrenty::engine::lsd
