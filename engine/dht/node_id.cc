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

}  // namespace

NodeId Bep42Id(uint32_t ip, uint8_t r, const NodeId& random) {
  NodeId id = random;
  const uint32_t crc = Bep42Prefix(ip, r);
  id[0] = static_cast<uint8_t>(crc >> 24);
  id[1] = static_cast<uint8_t>(crc >> 16);
  id[2] = static_cast<uint8_t>(((crc >> 8) & 0xF8) | (random[2] & 7));
  id[19] = r;
  return id;
}

bool Bep42Valid(uint32_t ip, const NodeId& id) {
  if (!IsPublicIpv4(ip)) return true;
  const uint32_t crc = Bep42Prefix(ip, id[19]);
  return id[0] == static_cast<uint8_t>(crc >> 24) && id[1] == static_cast<uint8_t>(crc >> 16) &&
         (id[2] & 0xF8) == static_cast<uint8_t>((crc >> 8) & 0xF8);
}

}  // namespace torrenty::engine::dht
