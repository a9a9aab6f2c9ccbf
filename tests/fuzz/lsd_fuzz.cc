// Fuzzes the BEP 14 local discovery parser and the session scheduler's receive path. Anyone on
// the LAN controls every datagram on the multicast group: a parsed announce must respect the
// documented bounds and survive an encode/parse round trip unchanged, and the scheduler must
// report only peers of torrents it holds, with the announced port.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/lsd/lsd_message.h"
#include "engine/lsd/lsd_scheduler.h"
#include "tests/fuzz/fuzz_check.h"

namespace lsd = torrenty::engine::lsd;
namespace engine = torrenty::engine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Span<const uint8_t> in(data, size);
  absl::StatusOr<lsd::LsdAnnounce> a = lsd::ParseLsdAnnounce(in);
  if (a.ok()) {
    FUZZ_CHECK(size <= lsd::kMaxMessageBytes);
    FUZZ_CHECK(a->port != 0);
    FUZZ_CHECK(!a->info_hashes.empty() && a->info_hashes.size() <= lsd::kMaxInfoHashes);
    FUZZ_CHECK(a->cookie.size() <= lsd::kMaxCookieBytes);
    FUZZ_CHECK(a->host.size() <= lsd::kMaxHostBytes);
    absl::StatusOr<std::string> wire = lsd::EncodeLsdAnnounce(*a);
    if (wire.ok()) {
      const absl::Span<const uint8_t> w(reinterpret_cast<const uint8_t*>(wire->data()),
                                        wire->size());
      absl::StatusOr<lsd::LsdAnnounce> b = lsd::ParseLsdAnnounce(w);
      FUZZ_CHECK(b.ok());
      FUZZ_CHECK(b->port == a->port && b->info_hashes == a->info_hashes && b->cookie == a->cookie &&
                 b->host == a->host);
    }
  }

  // The scheduler holds the torrents whose info-hash is all 0x00 or all 0x11 (the seeds use
  // them); torrent 3 is private.
  lsd::LsdScheduler::Config c;
  c.port = 6881;
  c.cookie = "self";
  c.max_recent_peers = 4;
  lsd::LsdScheduler s(c);
  engine::InfoHash h0{}, h1{}, h2{};
  h1.fill(0x11);
  h2.fill(0x22);
  s.AddTorrent(1, h0, false, engine::Instant{0});
  s.AddTorrent(2, h1, false, engine::Instant{0});
  s.AddTorrent(3, h2, true, engine::Instant{0});
  std::vector<lsd::LsdScheduler::Found> found;
  for (uint32_t ip = 1; ip <= 6; ++ip) {
    const absl::Status st = s.HandleDatagram(in, ip, engine::Instant{ip * 1000}, &found);
    FUZZ_CHECK(st.ok() == a.ok());
  }
  for (const lsd::LsdScheduler::Found& f : found) {
    FUZZ_CHECK(f.torrent == 1 || f.torrent == 2);
    FUZZ_CHECK(a.ok() && f.peer.port == a->port && f.peer.ip >= 1 && f.peer.ip <= 6);
    FUZZ_CHECK(a->cookie != "self");
  }
  std::optional<std::string> m = s.Poll(engine::Instant{0});
  FUZZ_CHECK(m.has_value());
  return 0;
}
