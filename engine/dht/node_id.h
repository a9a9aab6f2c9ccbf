// DHT node ids (BEP 5): 160-bit ids compared by XOR distance, and the BEP 42 rule that ties an id
// to the node's address (IPv4, or the /64 of an IPv6 one) so that one host cannot place itself
// next to any target it likes.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "engine/base/types.h"

namespace torrenty::engine::dht {

using NodeId = std::array<uint8_t, 20>;

struct NodeInfo {
  NodeId id{};
  PeerAddress addr;
  friend bool operator==(const NodeInfo&, const NodeInfo&) = default;
};

// True if a is closer to target than b (XOR metric).
bool CloserTo(const NodeId& target, const NodeId& a, const NodeId& b);
// Leading bits a and b share (160 when equal).
int CommonPrefixBits(const NodeId& a, const NodeId& b);
NodeId NodeIdFromBytes(std::string_view bytes);  // bytes.size() must be 20

// Addresses that BEP 42 exempts: loopback, private, link-local and other non-routable ranges,
// where many nodes share an address or the address says nothing about the host.
bool IsPublicIpv4(uint32_t ip);
// Global unicast (2000::/3) outside the documentation range: loopback, link-local, unique local,
// multicast and the rest are exempt.
bool IsPublicIpv6(const std::array<uint8_t, 16>& ip);
bool IsPublic(const PeerAddress& a);
// CRC32-C (Castagnoli), which BEP 42 uses.
uint32_t Crc32c(const uint8_t* data, size_t len);
// A BEP 42 id for `ip` with random byte `r` (only its low 3 bits go into the prefix) and the
// other 17 random bytes from `random`.
NodeId Bep42Id(uint32_t ip, uint8_t r, const NodeId& random);
// True if `id` is a valid BEP 42 id for `ip` (always true for non-public addresses).
bool Bep42Valid(uint32_t ip, const NodeId& id);
// The same for either family: for IPv6 the CRC is over the first 8 bytes masked with
// 0x0103070f1f3f7fff, with r in the top 3 bits.
NodeId Bep42Id(const PeerAddress& ip, uint8_t r, const NodeId& random);
bool Bep42Valid(const PeerAddress& ip, const NodeId& id);

}  // namespace torrenty::engine::dht
