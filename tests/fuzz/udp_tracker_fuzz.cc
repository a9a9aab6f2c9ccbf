// Fuzzes the UDP tracker (BEP 15) code: ParseUdpTrackerResponse and ParseUdpTrackerUrl over the
// whole input, then a UdpTrackerExchange driven by a script of datagrams, timeouts and restarts
// decoded from the input. A hostile tracker (or anyone spoofing its address) controls every
// datagram; the exchange must stay within its retransmission budget and only ever send
// well-formed requests.
//
// Script: byte 0 is max_retransmits; then records of <op><len:2 big-endian><len bytes>:
//   op % 4 == 0: a datagram as is; 1: a datagram whose transaction id is replaced by the one
//   we last sent (so the fuzzer gets past the id check); 2: advance the clock by len * 100 ms
//   and call HandleTimeout (no bytes follow); 3: Abandon if len is odd, then Start (no bytes).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/types/span.h"
#include "engine/tracker/http_announce.h"
#include "engine/base/types.h"
#include "engine/tracker/udp_tracker.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

namespace engine = torrenty::engine;
using Exchange = engine::UdpTrackerExchange;

uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
uint64_t Get64(const uint8_t* p) { return (uint64_t{Get32(p)} << 32) | Get32(p + 4); }

void CheckAnnounce(const engine::AnnounceResponse& a) {
  FUZZ_CHECK(a.peers.size() <= engine::kMaxPeersPerAnnounce);
  for (const auto& p : a.peers) FUZZ_CHECK(p.port != 0);
  FUZZ_CHECK(a.failure_reason.size() <= engine::kMaxTrackerMessageBytes + 64);
}

void CheckParse(absl::Span<const uint8_t> d) {
  absl::StatusOr<engine::UdpTrackerResponse> r = engine::ParseUdpTrackerResponse(d);
  if (!r.ok()) return;
  FUZZ_CHECK(d.size() >= 8);
  FUZZ_CHECK(r->transaction_id == Get32(d.data() + 4));
  switch (r->action) {
    case engine::UdpAction::kConnect:
      FUZZ_CHECK(d.size() == engine::kUdpConnectResponseSize);
      FUZZ_CHECK(r->connection_id == Get64(d.data() + 8));
      break;
    case engine::UdpAction::kAnnounce:
      FUZZ_CHECK(d.size() >= engine::kUdpAnnounceResponseHeaderSize);
      FUZZ_CHECK((d.size() - engine::kUdpAnnounceResponseHeaderSize) % 6 == 0);
      FUZZ_CHECK(r->announce.peers.size() <= (d.size() - 20) / 6);
      CheckAnnounce(r->announce);
      break;
    case engine::UdpAction::kError:
      FUZZ_CHECK(r->error_message.size() <= engine::kMaxTrackerMessageBytes);
      FUZZ_CHECK(r->error_message.size() <= d.size() - 8);
      break;
    case engine::UdpAction::kScrape:
      FUZZ_CHECK(false);  // documented as an error
      break;
  }
}

class Driver {
 public:
  explicit Driver(int max_retransmits) : ex_(7, 0xC0FFEE), max_retransmits_(max_retransmits) {
    params_.info_hash.fill(0x11);
    params_.peer_id.fill(0x22);
    params_.port = 6881;
    params_.left = 1000;
  }

  void Start() {
    OnSend(ex_.Start(params_, now_, max_retransmits_));
    FUZZ_CHECK(ex_.busy());
  }
  void Abandon() {
    ex_.Abandon();
    FUZZ_CHECK(!ex_.busy());
  }
  void Datagram(std::vector<uint8_t> d, bool patch_tid) {
    if (patch_tid && d.size() >= 8) {
      for (int i = 0; i < 4; ++i) d[4 + i] = static_cast<uint8_t>(last_tid_ >> (24 - 8 * i));
    }
    // A connect response carries the connection id our next announce must use.
    if (d.size() == 16 && Get32(d.data()) == 0 && Get32(d.data() + 4) == last_tid_ && ex_.busy() &&
        last_sent_size_ == engine::kUdpConnectRequestSize) {
      expected_connection_id_ = Get64(d.data() + 8);
    }
    OnStep(ex_.HandleDatagram(d, now_));
  }
  void Timeout(int64_t ms) {
    now_.ms += ms;
    const bool was_busy = ex_.busy();
    const engine::Instant due = ex_.next_timeout();
    Exchange::Step s = ex_.HandleTimeout(now_);
    if (!was_busy || now_ < due) FUZZ_CHECK(s.kind == Exchange::Step::Kind::kNothing);
    OnStep(std::move(s));
  }

 private:
  void OnSend(absl::Span<const uint8_t> packet) {
    FUZZ_CHECK(packet.size() == engine::kUdpConnectRequestSize ||
               packet.size() == engine::kUdpAnnounceRequestSize);
    FUZZ_CHECK(ex_.packets_sent() <= 2 * (Exchange::kMaxRetransmits + 1));
    if (packet.size() == engine::kUdpConnectRequestSize) {
      FUZZ_CHECK(Get64(packet.data()) == engine::kUdpTrackerProtocolId);
      FUZZ_CHECK(Get32(packet.data() + 8) == 0);
    } else {
      FUZZ_CHECK(Get32(packet.data() + 8) == 1);
      if (expected_connection_id_.has_value()) {
        FUZZ_CHECK(Get64(packet.data()) == *expected_connection_id_);
      }
      FUZZ_CHECK(std::memcmp(packet.data() + 16, params_.info_hash.data(), 20) == 0);
    }
    last_tid_ = Get32(packet.data() + 12);
    last_sent_size_ = packet.size();
    FUZZ_CHECK(now_ < ex_.next_timeout());
  }

  void OnStep(Exchange::Step s) {
    switch (s.kind) {
      case Exchange::Step::Kind::kNothing:
        break;
      case Exchange::Step::Kind::kSend:
        FUZZ_CHECK(ex_.busy());
        OnSend(s.packet);
        break;
      case Exchange::Step::Kind::kDone:
        FUZZ_CHECK(!ex_.busy());
        FUZZ_CHECK(ex_.next_timeout() == Exchange::kNever);
        if (s.result.ok()) CheckAnnounce(*s.result);
        break;
    }
  }

  Exchange ex_;
  int max_retransmits_;
  engine::AnnounceParams params_;
  engine::Instant now_{10'000'000};
  uint32_t last_tid_ = 0;
  size_t last_sent_size_ = 0;
  std::optional<uint64_t> expected_connection_id_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::Span<const uint8_t> input(data, size);
  CheckParse(input);
  (void)engine::ParseUdpTrackerUrl(std::string_view(reinterpret_cast<const char*>(data), size));
  if (size == 0) return 0;

  Driver d(data[0] % 10);
  d.Start();
  size_t pos = 1;
  int records = 0;
  while (pos + 3 <= size && records++ < 256) {
    const uint8_t op = data[pos] % 4;
    const size_t len = (size_t{data[pos + 1]} << 8) | data[pos + 2];
    pos += 3;
    switch (op) {
      case 0:
      case 1: {
        const size_t n = std::min(len, size - pos);
        std::vector<uint8_t> datagram(data + pos, data + pos + n);
        pos += n;
        CheckParse(datagram);
        d.Datagram(std::move(datagram), op == 1);
        break;
      }
      case 2:
        d.Timeout(static_cast<int64_t>(len) * 100);
        break;
      case 3:
        if (len & 1) d.Abandon();
        d.Start();
        break;
    }
  }
  return 0;
}
