// Fuzzes the HTTP tracker response parser (and, with the same bytes, announce URL building).
// A tracker is an untrusted server: whatever it sends, the response must respect the documented
// caps (peer count, message sizes) and never carry a port-0 peer or negative interval.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/tracker/http_announce.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using torrenty::engine::kMaxPeersPerAnnounce;
  using torrenty::engine::kMaxTrackerMessageBytes;
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  absl::StatusOr<torrenty::engine::AnnounceResponse> r =
      torrenty::engine::ParseAnnounceResponse(input);
  if (r.ok()) {
    if (!r->failure_reason.empty()) {
      FUZZ_CHECK(r->failure_reason.size() <= kMaxTrackerMessageBytes);
      FUZZ_CHECK(r->peers.empty());
    }
    FUZZ_CHECK(r->warning_message.size() <= kMaxTrackerMessageBytes);
    FUZZ_CHECK(r->tracker_id.size() <= kMaxTrackerMessageBytes);
    FUZZ_CHECK(r->interval >= 0 && r->min_interval >= 0);
    FUZZ_CHECK(r->complete >= -1 && r->incomplete >= -1);
    FUZZ_CHECK(r->peers.size() <= kMaxPeersPerAnnounce);
    for (const auto& p : r->peers) {
      FUZZ_CHECK(p.port != 0);
      // BEP 7 peers6: an IPv4-mapped entry is kept as IPv4, and every address prints.
      FUZZ_CHECK(!p.v6 || !(p.ip6[10] == 0xFF && p.ip6[11] == 0xFF &&
                            std::all_of(p.ip6.begin(), p.ip6.begin() + 10,
                                        [](uint8_t b) { return b == 0; })));
      FUZZ_CHECK(!p.ToString().empty());
    }
  }

  // The same bytes as an announce URL, with the tracker id (if any) echoed back as a tracker
  // would make us do.
  torrenty::engine::AnnounceParams params;
  params.port = 6881;
  params.left = -5;
  if (r.ok()) params.tracker_id = r->tracker_id;
  absl::StatusOr<std::string> url = torrenty::engine::BuildAnnounceUrl(input, params);
  if (url.ok()) {
    FUZZ_CHECK(torrenty::engine::IsHttpTrackerUrl(*url));
    FUZZ_CHECK(url->find_first_of(" \r\n\t#") == std::string::npos);
    FUZZ_CHECK(url->find("&left=0&") != std::string::npos);
  }
  return 0;
}
