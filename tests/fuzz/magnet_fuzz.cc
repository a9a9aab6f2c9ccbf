// Fuzzes the magnet link parser: a link comes from the command line or an RPC client. Whatever it
// holds, a parsed link respects the caps, and the peers and trackers it yields survive a write
// and re-parse.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/metainfo/magnet.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace engine = torrenty::engine;
  const std::string input(reinterpret_cast<const char*>(data), size);
  for (const std::string& uri : {input, "magnet:?" + input}) {
    absl::StatusOr<engine::MagnetLink> m = engine::ParseMagnet(uri);
    if (!m.ok()) continue;
    FUZZ_CHECK(m->trackers.size() <= engine::kMaxMagnetTrackers);
    FUZZ_CHECK(m->peers.size() <= engine::kMaxMagnetPeers);
    for (const engine::MagnetPeer& p : m->peers) FUZZ_CHECK(p.port != 0 && !p.host.empty());
    engine::Metainfo meta;
    meta.info_hash = m->info_hash;
    meta.name = m->name;
    for (const std::string& t : m->trackers) meta.trackers.push_back({t});
    absl::StatusOr<engine::MagnetLink> again = engine::ParseMagnet(engine::MakeMagnet(meta));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->info_hash == m->info_hash);
    FUZZ_CHECK(again->name == m->name);
    FUZZ_CHECK(again->trackers == m->trackers);
  }
  (void)engine::ParseMagnetPeer(input);
  return 0;
}
