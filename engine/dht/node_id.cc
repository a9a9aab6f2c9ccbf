#include "engine/dht/node_id.h"

#include <cstring>

namespace torrenty::engine::dht {

bool CloserTo(const NodeId& target, const NodeId& a, const NodeId& b) {
  for (size_t i = 0; i < target.size(); ++i) {
    const uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
    if (da != db) return da < db;
  }
  return false;
}

int CommonPrefixBits(const NodeId& a, const NodeId& b) {
  for (size_t i = 0; i < a.size(); ++i) {
    const uint8_t x = a[i] ^ b[i];
    if (x != 0) return static_cast<int>(i) * 8 + __builtin_clz(x) - 24;
  }
  return 160;
}

NodeId NodeIdFromBytes(std::string_view bytes) {
  NodeId id{};
  std::memcpy(id.data(), bytes.data(), id.size());
  return id;
}

bool IsPublicIpv4(uint32_t ip) {
  const uint8_t a = ip >> 24, b = (ip >> 16) & 255;
  if (a == 0 || a == 10 || a == 127 || a >= 224)
    return false;                                  // this, private, loopback, multicast
  if (a == 100 && (b & 0xC0) == 64) return false;  // carrier-grade NAT
  if (a == 169 && b == 254) return false;          // link-local
  if (a == 172 && (b & 0xF0) == 16) return false;
  if (a == 192 && b == 168) return false;
  return true;
}

bool IsPublicIpv6(const std::array<uint8_t, 16>& ip) {
  if ((ip[0] & 0xE0) != 0x20) return false;
  return !(ip[0] == 0x20 && ip[1] == 0x01 && ip[2] == 0x0D && ip[3] == 0xB8);
}

bool IsPublic(const PeerAddress& a) { return a.v6 ? IsPublicIpv6(a.ip6) : IsPublicIpv4(a.ip); }

uint32_t Crc32c(const uint8_t* data, size_t len) {
  uint32_t crc = 0xFFFFFFFF;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78 & (0u - (crc & 1)));
  }
  return ~crc;
}

namespace {

uint32_t Bep42Prefix(uint32_t ip, uint8_t r) {
  const uint32_t masked = (ip & 0x030F3FFF) | (uint32_t{r & 7u} << 29);
  const uint8_t bytes[4] = {static_cast<uint8_t>(masked >> 24), static_cast<uint8_t>(masked >> 16),
                            static_cast<uint8_t>(masked >> 8), static_cast<uint8_t>(masked)};
  return Crc32c(bytes, 4);
}

uint32_t Bep42Prefix6(const std::array<uint8_t, 16>& ip, uint8_t r) {
  static constexpr uint8_t kMask[8] = {0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff};
  uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = ip[i] & kMask[i];
  bytes[0] |= static_cast<uint8_t>((r & 7u) << 5);
  return Crc32c(bytes, 8);
}

NodeId IdWithPrefix(uint32_t crc, uint8_t r, const NodeId& random) {
  NodeId id = random;
  id[0] = static_cast<uint8_t>(crc >> 24);
  id[1] = static_cast<uint8_t>(crc >> 16);
  id[2] = static_cast<uint8_t>(((crc >> 8) & 0xF8) | (random[2] & 7));
  id[19] = r;
  return id;
}

bool MatchesPrefix(uint32_t crc, const NodeId& id) {
  return id[0] == static_cast<uint8_t>(crc >> 24) && id[1] == static_cast<uint8_t>(crc >> 16) &&
         (id[2] & 0xF8) == static_cast<uint8_t>((crc >> 8) & 0xF8);
}

}  // namespace

NodeId Bep42Id(uint32_t ip, uint8_t r, const NodeId& random) {
  return IdWithPrefix(Bep42Prefix(ip, r), r, random);
}

bool Bep42Valid(uint32_t ip, const NodeId& id) {
  if (!IsPublicIpv4(ip)) return true;
  return MatchesPrefix(Bep42Prefix(ip, id[19]), id);
}

NodeId Bep42Id(const PeerAddress& ip, uint8_t r, const NodeId& random) {
  if (!ip.v6) return Bep42Id(ip.ip, r, random);
  return IdWithPrefix(Bep42Prefix6(ip.ip6, r), r, random);
}

bool Bep42Valid(const PeerAddress& ip, const NodeId& id) {
  if (!ip.v6) return Bep42Valid(ip.ip, id);
  if (!IsPublicIpv6(ip.ip6)) return true;
  return MatchesPrefix(Bep42Prefix6(ip.ip6, id[19]), id);
}

}  // namespace torrenty::engine::dht
