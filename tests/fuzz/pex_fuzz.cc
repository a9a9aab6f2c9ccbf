// Fuzzes the BEP 11 ut_pex codec and state. A peer controls the whole payload: a parsed message
// must respect the entry bounds and never carry port 0, survive an encode/parse round trip
// unchanged, and the peers it names, fed back as our connected set, must produce messages that
// parse and stay within the bounds.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "engine/pex/ut_pex.h"
#include "tests/fuzz/fuzz_check.h"

namespace pex = torrenty::engine::pex;
using torrenty::engine::Instant;

namespace {

void CheckBounds(const pex::PexMessage& m) {
  FUZZ_CHECK(m.added.size() <= pex::kMaxPexAdded);
  FUZZ_CHECK(m.dropped.size() <= pex::kMaxPexDropped);
  for (const pex::PexPeer& p : m.added) FUZZ_CHECK(p.endpoint.port != 0);
  for (const pex::PexEndpoint& e : m.dropped) FUZZ_CHECK(e.port != 0);
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Span<const uint8_t> in(data, size);
  absl::StatusOr<pex::PexMessage> m = pex::ParsePex(in);
  if (m.ok()) {
    FUZZ_CHECK(size <= pex::kMaxPexPayloadBytes);
    CheckBounds(*m);
    absl::StatusOr<pex::PexMessage> again = pex::ParsePex(Bytes(pex::EncodePex(*m)));
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->added == m->added && again->dropped == m->dropped);
  }

  pex::PexState state(/*torrent_is_private=*/false,
                      pex::PexEndpoint::FromV4(torrenty::engine::PeerAddress{0x7f000001, 6881}));
  absl::StatusOr<pex::PexMessage> got = state.HandleMessage(in, Instant{0});
  FUZZ_CHECK(got.ok() == m.ok());
  if (!got.ok()) return 0;
  // Whatever the peer named becomes our connected set, then half of it leaves.
  for (int round = 0; round < 2; ++round) {
    const size_t keep = round == 0 ? got->added.size() : got->added.size() / 2;
    std::optional<std::string> out = state.Poll(
        Instant{round * 60'000}, absl::Span<const pex::PexPeer>(got->added.data(), keep));
    if (!out.has_value()) continue;
    absl::StatusOr<pex::PexMessage> sent = pex::ParsePex(Bytes(*out));
    FUZZ_CHECK(sent.ok());
    CheckBounds(*sent);
    FUZZ_CHECK(!sent->added.empty() || !sent->dropped.empty());
  }
  FUZZ_CHECK(state.advertised() <= got->added.size());
  pex::PexState priv(/*torrent_is_private=*/true, pex::PexEndpoint{});
  FUZZ_CHECK(!priv.Poll(Instant{0}, got->added).has_value());
  return 0;
}
