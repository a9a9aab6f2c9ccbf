// KRPC (BEP 5): the bencoded query/response/error messages of the DHT, decoded from one UDP
// datagram with strict bounds (a datagram is hostile input from anyone on the internet) and
// encoded into a reusable string. BEP 32: IPv4 nodes are 26 bytes in "nodes", IPv6 nodes 38 in
// "nodes6"; peers in "values" are 6 or 18 bytes; "want" asks for either family's nodes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/base/types.h"
#include "engine/dht/node_id.h"

namespace torrenty::engine::dht {

// Bigger datagrams are not KRPC anyone sends (libtorrent stays under 1500 bytes).
inline constexpr size_t kMaxDatagramBytes = 2048;
inline constexpr size_t kMaxTransactionBytes = 16;
inline constexpr size_t kMaxTokenBytes = 64;
inline constexpr size_t kMaxNodesPerMessage = 32;
inline constexpr size_t kMaxValuesPerMessage = 256;
inline constexpr size_t kCompactNodeBytes = 26;
inline constexpr size_t kCompactNode6Bytes = 38;
// "want" (BEP 32) as bits; 0 when the query has none (the answer then follows the query's family).
inline constexpr uint8_t kWantN4 = 1;
inline constexpr uint8_t kWantN6 = 2;

enum class Method : uint8_t { kPing, kFindNode, kGetPeers, kAnnouncePeer, kUnknown };

struct Message {
  enum class Kind : uint8_t { kQuery, kResponse, kError };
  Kind kind = Kind::kQuery;
  std::string transaction;  // "t", at most kMaxTransactionBytes
  bool read_only = false;   // "ro" (BEP 43): the sender answers no queries
  // Queries ("a") and responses ("r") both carry the sender's id.
  NodeId id{};
  Method method = Method::kUnknown;  // queries
  NodeId target{};                   // find_node
  uint8_t want = 0;                  // find_node, get_peers: kWantN4 | kWantN6
  InfoHash info_hash{};              // get_peers, announce_peer
  uint16_t port = 0;                 // announce_peer
  bool implied_port = false;         // announce_peer: use the datagram's source port
  std::string token;                 // announce_peer, get_peers response
  std::vector<NodeInfo> nodes;       // responses: compact "nodes" (port 0 entries dropped)
  std::vector<NodeInfo> nodes6;      // responses: compact "nodes6" (BEP 32)
  std::vector<PeerAddress> values;   // get_peers response, either family (port 0 entries dropped)
  bool has_ip = false;               // BEP 42 "ip": our address as the responder saw it
  PeerAddress ip;
  int64_t error_code = 0;  // errors ("e")
  std::string error_message;
};

// Decodes one datagram. Unknown keys are ignored (extensions, "v"); a query with an unknown
// method decodes with Method::kUnknown so it can be answered with error 204.
[[nodiscard]] absl::StatusOr<Message> DecodeMessage(std::string_view datagram);

// Encoders append nothing but the message: each clears `out` first.
void EncodePing(std::string_view tid, const NodeId& self, std::string* out);
// `want` (kWantN4 | kWantN6) is sent as BEP 32's "want" list; 0 leaves it out.
void EncodeFindNode(std::string_view tid, const NodeId& self, const NodeId& target,
                    std::string* out, uint8_t want = 0);
void EncodeGetPeers(std::string_view tid, const NodeId& self, const InfoHash& info_hash,
                    std::string* out, uint8_t want = 0);
void EncodeAnnouncePeer(std::string_view tid, const NodeId& self, const InfoHash& info_hash,
                        uint16_t port, std::string_view token, std::string* out);
// A response; `nodes`, `token` and `values` are left out when empty. IPv4 nodes go in "nodes",
// IPv6 ones in "nodes6". `requester` goes in "ip".
void EncodeResponse(std::string_view tid, const NodeId& self, const std::vector<NodeInfo>& nodes,
                    std::string_view token, const std::vector<PeerAddress>& values,
                    const PeerAddress& requester, std::string* out);
void EncodeError(std::string_view tid, int code, std::string_view message, std::string* out);

// 6 bytes for IPv4, 18 for IPv6; a node is its 20-byte id and then its address.
void AppendCompactPeer(const PeerAddress& a, std::string* out);
void AppendCompactNode(const NodeInfo& n, std::string* out);
PeerAddress ReadCompactPeer(const uint8_t* p);
PeerAddress ReadCompactPeer6(const uint8_t* p);

}  // namespace torrenty::engine::dht
