// Plain value types shared by every engine module. No I/O, no clock, no threads.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace torrenty::engine {

// BEP 3: clients request 16 KiB blocks; larger requests are commonly refused.
inline constexpr uint32_t kBlockSize = 16 * 1024;

using Sha1Digest = std::array<uint8_t, 20>;
using InfoHash = Sha1Digest;
using PeerId = std::array<uint8_t, 20>;

// Monotonic time handed in by io/; the engine never reads a clock itself.
struct Instant {
  int64_t ms = 0;
  friend bool operator<(Instant a, Instant b) { return a.ms < b.ms; }
  friend bool operator<=(Instant a, Instant b) { return a.ms <= b.ms; }
  friend bool operator==(Instant a, Instant b) { return a.ms == b.ms; }
};

// A peer's endpoint: IPv4 in host byte order, or (v6) IPv6 in network byte order. Kept by
// value per peer and candidate, never per block. An IPv4-mapped IPv6 address is stored as IPv4.
struct PeerAddress {
  uint32_t ip = 0;
  uint16_t port = 0;
  bool v6 = false;
  std::array<uint8_t, 16> ip6{};
  friend bool operator==(const PeerAddress&, const PeerAddress&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const PeerAddress& a) {
    return H::combine(std::move(h), a.ip, a.port, a.v6, a.ip6);
  }
  static PeerAddress V6(const std::array<uint8_t, 16>& bytes, uint16_t port);
  bool IsLoopback() const;
  // "1.2.3.4" or "2001:db8::1" (RFC 5952 form).
  std::string IpString() const;
  // "1.2.3.4:6881" or "[2001:db8::1]:6881".
  std::string ToString() const;
};

// Lowercase hex, two digits a byte: the one hex encoder (info-hashes, escapes).
void AppendHex(const uint8_t* data, size_t len, std::string* out);
std::string ToHex(const uint8_t* data, size_t len);
inline std::string ToHex(const Sha1Digest& d) { return ToHex(d.data(), d.size()); }

}  // namespace torrenty::engine
