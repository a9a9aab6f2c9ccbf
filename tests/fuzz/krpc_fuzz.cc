// Fuzzes the DHT: DecodeMessage over the whole input (a datagram from anyone), and a dht::Node
// fed the input as a script of datagrams and clock steps. Whatever arrives, the node answers
// with well-formed KRPC, keeps every structure within its configured bounds, and never answers
// a datagram with more than a few.
//
// Script: records of <op><len:1><len bytes>: op % 3 == 0: a datagram as is, from 10.0.0.1-4 or
// (BEP 32) fd00::1-4 by op / 3;
// 1: the same with its transaction id replaced by the last one we sent (to get past the id
// check); 2: advance the clock by len * 50 ms and tick.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/dht/dht_node.h"
#include "engine/dht/krpc.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace dht = torrenty::engine::dht;
using torrenty::engine::Instant;
using torrenty::engine::PeerAddress;

void CheckDecode(std::string_view d) {
  absl::StatusOr<dht::Message> m = dht::DecodeMessage(d);
  if (!m.ok()) return;
  FUZZ_CHECK(d.size() <= dht::kMaxDatagramBytes);
  FUZZ_CHECK(m->transaction.size() <= dht::kMaxTransactionBytes);
  FUZZ_CHECK(m->token.size() <= dht::kMaxTokenBytes);
  FUZZ_CHECK(m->nodes.size() <= dht::kMaxNodesPerMessage);
  FUZZ_CHECK(m->nodes6.size() <= dht::kMaxNodesPerMessage);
  for (const dht::NodeInfo& n : m->nodes) FUZZ_CHECK(!n.addr.v6 && n.addr.port != 0);
  for (const dht::NodeInfo& n : m->nodes6) FUZZ_CHECK(n.addr.v6 && n.addr.port != 0);
  FUZZ_CHECK(m->values.size() <= dht::kMaxValuesPerMessage);
  for (const PeerAddress& p : m->values) FUZZ_CHECK(p.port != 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  CheckDecode(input);

  dht::NodeConfig config;
  config.max_outstanding = 32;
  config.max_hashes = 4;
  config.max_peers_per_hash = 4;
  config.max_tracked_ips = 8;
  dht::NodeId self{};
  self[0] = 0x42;
  dht::Node node(self, config, 1, Instant{1'000'000});
  Instant now{1'000'000};
  const auto from = [](size_t n) {
    if (n < 4) return PeerAddress{static_cast<uint32_t>(0x0A000001 + n), 6881};
    std::array<uint8_t, 16> ip{};
    ip[0] = 0xFD;
    ip[15] = static_cast<uint8_t>(n - 3);
    return PeerAddress::V6(ip, 6881);
  };
  node.AddBootstrap(from(0), now);
  node.AddBootstrap(from(4), now);
  std::vector<dht::Outgoing> out;
  std::vector<dht::Event> events;
  std::string last_tid;
  const auto drain = [&] {
    node.TakeOutgoing(&out);
    for (const dht::Outgoing& o : out) {
      absl::StatusOr<dht::Message> m = dht::DecodeMessage(o.bytes);
      FUZZ_CHECK(m.ok());
      if (m->kind == dht::Message::Kind::kQuery) last_tid = m->transaction;
    }
    node.TakeEvents(&events);
    FUZZ_CHECK(node.outstanding() <= config.max_outstanding);
    FUZZ_CHECK(node.stored_hashes() <= config.max_hashes);
    FUZZ_CHECK(node.stored_peers() <= config.max_hashes * config.max_peers_per_hash);
    FUZZ_CHECK(node.tracked_ips() <= config.max_tracked_ips);
    FUZZ_CHECK(node.table().size() <= 160 * 8);
    FUZZ_CHECK(node.table6().size() <= 160 * 8);
  };
  drain();
  size_t pos = 0;
  int records = 0;
  while (pos + 2 <= size && records++ < 256) {
    const uint8_t op = data[pos];
    const size_t len = data[pos + 1];
    pos += 2;
    if (op % 3 == 2) {
      now.ms += static_cast<int64_t>(len) * 50;
      node.HandleTick(now);
      drain();
      continue;
    }
    const size_t n = std::min(len, size - pos);
    std::string d(input.substr(pos, n));
    pos += n;
    if (op % 3 == 1 && !last_tid.empty()) {
      const size_t t = d.find("1:t2:");
      if (t != std::string::npos && t + 7 <= d.size()) d.replace(t + 5, 2, last_tid);
    }
    CheckDecode(d);
    node.HandleDatagram(from((op / 3) % 8), d, now);
    drain();
  }
  if (size > 0 && data[0] == 'G') node.GetPeers(dht::NodeId{}, 1, now);
  drain();
  return 0;
}
