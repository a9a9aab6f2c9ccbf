// BEP 15 codec and exchange state machine; see udp_tracker.h.
#include "engine/tracker/udp_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace torrenty::engine {
namespace {

void Put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

void Put64(uint8_t* p, uint64_t v) {
  Put32(p, static_cast<uint32_t>(v >> 32));
  Put32(p + 4, static_cast<uint32_t>(v));
}

uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

uint64_t Get64(const uint8_t* p) { return (uint64_t{Get32(p)} << 32) | Get32(p + 4); }

uint32_t EventCode(AnnounceEvent event) {
  switch (event) {
    case AnnounceEvent::kNone:
      return 0;
    case AnnounceEvent::kCompleted:
      return 1;
    case AnnounceEvent::kStarted:
      return 2;
    case AnnounceEvent::kStopped:
      return 3;
  }
  return 0;
}

uint64_t NonNegative(int64_t v) { return v < 0 ? 0 : static_cast<uint64_t>(v); }

}  // namespace

void EncodeConnectRequest(uint32_t tid, uint8_t out[kUdpConnectRequestSize]) {
  Put64(out, kUdpTrackerProtocolId);
  Put32(out + 8, static_cast<uint32_t>(UdpAction::kConnect));
  Put32(out + 12, tid);
}

void EncodeAnnounceRequest(uint64_t connection_id, uint32_t tid, const AnnounceParams& params,
                           uint32_t key, uint8_t out[kUdpAnnounceRequestSize]) {
  Put64(out, connection_id);
  Put32(out + 8, static_cast<uint32_t>(UdpAction::kAnnounce));
  Put32(out + 12, tid);
  std::copy(params.info_hash.begin(), params.info_hash.end(), out + 16);
  std::copy(params.peer_id.begin(), params.peer_id.end(), out + 36);
  Put64(out + 56, NonNegative(params.downloaded));
  Put64(out + 64, NonNegative(params.left));
  Put64(out + 72, NonNegative(params.uploaded));
  Put32(out + 80, EventCode(params.event));
  Put32(out + 84, 0);  // ip: use the packet's source address
  Put32(out + 88, key);
  Put32(out + 92, params.numwant < 0 ? 0xFFFFFFFFu : static_cast<uint32_t>(params.numwant));
  out[96] = static_cast<uint8_t>(params.port >> 8);
  out[97] = static_cast<uint8_t>(params.port);
}

absl::StatusOr<UdpTrackerResponse> ParseUdpTrackerResponse(absl::Span<const uint8_t> datagram) {
  const size_t size = datagram.size();
  if (size < 8) {
    return absl::InvalidArgumentError(absl::StrCat("UDP tracker datagram of ", size, " bytes"));
  }
  const uint8_t* p = datagram.data();
  UdpTrackerResponse r;
  const uint32_t action = Get32(p);
  r.transaction_id = Get32(p + 4);
  switch (action) {
    case static_cast<uint32_t>(UdpAction::kConnect):
      if (size != kUdpConnectResponseSize) {
        return absl::InvalidArgumentError(
            absl::StrCat("UDP connect response of ", size, " bytes (want 16)"));
      }
      r.action = UdpAction::kConnect;
      r.connection_id = Get64(p + 8);
      return r;
    case static_cast<uint32_t>(UdpAction::kAnnounce): {
      if (size < kUdpAnnounceResponseHeaderSize ||
          (size - kUdpAnnounceResponseHeaderSize) % 6 != 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("UDP announce response of ", size, " bytes (want 20 + 6n)"));
      }
      r.action = UdpAction::kAnnounce;
      r.announce.interval = Get32(p + 8);
      r.announce.incomplete = Get32(p + 12);
      r.announce.complete = Get32(p + 16);
      const size_t count =
          std::min((size - kUdpAnnounceResponseHeaderSize) / 6, kMaxPeersPerAnnounce);
      r.announce.peers.reserve(count);
      const uint8_t* q = p + kUdpAnnounceResponseHeaderSize;
      for (size_t i = 0; i < count; ++i, q += 6) {
        PeerAddress addr;
        addr.ip = Get32(q);
        addr.port = static_cast<uint16_t>((q[4] << 8) | q[5]);
        if (addr.port == 0) continue;
        r.announce.peers.push_back(addr);
      }
      return r;
    }
    case static_cast<uint32_t>(UdpAction::kError): {
      r.action = UdpAction::kError;
      const size_t len = std::min(size - 8, kMaxTrackerMessageBytes);
      r.error_message.assign(reinterpret_cast<const char*>(p + 8), len);
      return r;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat("unexpected UDP tracker action ", action));
  }
}

absl::StatusOr<UdpTrackerEndpoint> ParseUdpTrackerUrl(std::string_view url) {
  constexpr std::string_view kScheme = "udp://";
  const auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad UDP tracker URL '", absl::string_view(url.data(), url.size()),
                     "': ", absl::string_view(why.data(), why.size())));
  };
  if (!absl::StartsWithIgnoreCase(absl::string_view(url.data(), url.size()),
                                  absl::string_view(kScheme.data(), kScheme.size()))) {
    return bad("not udp://");
  }
  std::string_view rest = url.substr(kScheme.size());
  rest = rest.substr(0, rest.find_first_of("/?#"));
  UdpTrackerEndpoint ep;
  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) return bad("unterminated [");
    ep.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') return bad("missing port");
    port_text = rest.substr(1);
  } else {
    const size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos) return bad("missing port");
    ep.host = std::string(rest.substr(0, colon));
    // An IPv6 literal must be bracketed.
    if (ep.host.find(':') != std::string::npos) return bad("bad host");
    port_text = rest.substr(colon + 1);
  }
  if (ep.host.empty()) return bad("missing host");
  if (ep.host.find_first_of("@ \t") != std::string::npos) return bad("bad host");
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5 ||
      !absl::SimpleAtoi(absl::string_view(port_text.data(), port_text.size()), &port) ||
      port == 0 || port > 65535 ||
      !std::all_of(port_text.begin(), port_text.end(), absl::ascii_isdigit)) {
    return bad("bad port");
  }
  ep.port = static_cast<uint16_t>(port);
  return ep;
}

// ---------------------------------------------------------------------------------------------

UdpTrackerExchange::UdpTrackerExchange(uint64_t seed, uint32_t key) : rng_(seed), key_(key) {}

uint32_t UdpTrackerExchange::NewTid() {
  uint32_t tid;
  do {
    tid = static_cast<uint32_t>(rng_());
  } while (tid == tid_);  // A late answer to the previous packet must not match.
  return tid;
}

std::optional<uint64_t> UdpTrackerExchange::connection_id(Instant now) const {
  if (connection_id_.has_value() && now < connection_id_expiry_) return connection_id_;
  return std::nullopt;
}

absl::Span<const uint8_t> UdpTrackerExchange::Start(const AnnounceParams& params, Instant now,
                                                    int max_retransmits) {
  params_ = params;
  max_retransmits_ = std::clamp(max_retransmits, 0, kMaxRetransmits);
  attempt_ = 0;
  packets_sent_ = 0;
  if (connection_id(now).has_value()) return SendAnnounce(now);
  return SendConnect(now);
}

absl::Span<const uint8_t> UdpTrackerExchange::SendConnect(Instant now) {
  state_ = State::kConnecting;
  tid_ = NewTid();
  EncodeConnectRequest(tid_, packet_);
  packet_len_ = kUdpConnectRequestSize;
  deadline_ = Instant{now.ms + (kBaseTimeoutMs << attempt_)};
  ++packets_sent_;
  return absl::MakeConstSpan(packet_, packet_len_);
}

absl::Span<const uint8_t> UdpTrackerExchange::SendAnnounce(Instant now) {
  state_ = State::kAnnouncing;
  tid_ = NewTid();
  EncodeAnnounceRequest(*connection_id_, tid_, params_, key_, packet_);
  packet_len_ = kUdpAnnounceRequestSize;
  deadline_ = Instant{now.ms + (kBaseTimeoutMs << attempt_)};
  ++packets_sent_;
  return absl::MakeConstSpan(packet_, packet_len_);
}

UdpTrackerExchange::Step UdpTrackerExchange::Finish(absl::StatusOr<AnnounceResponse> result) {
  state_ = State::kIdle;
  deadline_ = kNever;
  Step step;
  step.kind = Step::Kind::kDone;
  step.result = std::move(result);
  return step;
}

void UdpTrackerExchange::Abandon() {
  state_ = State::kIdle;
  deadline_ = kNever;
}

UdpTrackerExchange::Step UdpTrackerExchange::HandleDatagram(absl::Span<const uint8_t> datagram,
                                                            Instant now) {
  if (state_ == State::kIdle) return Step();
  absl::StatusOr<UdpTrackerResponse> parsed = ParseUdpTrackerResponse(datagram);
  if (!parsed.ok()) {
    // Garbage from the tracker's address: fail only if it answers our transaction.
    if (datagram.size() >= 8 && Get32(datagram.data() + 4) == tid_) {
      return Finish(parsed.status());
    }
    return Step();
  }
  if (parsed->transaction_id != tid_) return Step();
  switch (parsed->action) {
    case UdpAction::kError: {
      // The connection id may be what it objects to; do not reuse it.
      connection_id_.reset();
      AnnounceResponse r;
      r.failure_reason =
          parsed->error_message.empty() ? "(no message)" : std::move(parsed->error_message);
      return Finish(std::move(r));
    }
    case UdpAction::kConnect: {
      if (state_ != State::kConnecting) return Step();
      connection_id_ = parsed->connection_id;
      connection_id_expiry_ = Instant{now.ms + kConnectionIdLifetimeMs};
      Step step;
      step.kind = Step::Kind::kSend;
      step.packet = SendAnnounce(now);
      return step;
    }
    case UdpAction::kAnnounce:
      if (state_ != State::kAnnouncing) return Step();
      return Finish(std::move(parsed->announce));
    case UdpAction::kScrape:
      break;
  }
  return Step();
}

UdpTrackerExchange::Step UdpTrackerExchange::HandleTimeout(Instant now) {
  if (state_ == State::kIdle || now < deadline_) return Step();
  if (attempt_ >= max_retransmits_) {
    return Finish(absl::DeadlineExceededError(
        absl::StrCat("no answer from UDP tracker after ", packets_sent_, " packet(s)")));
  }
  ++attempt_;
  Step step;
  step.kind = Step::Kind::kSend;
  if (state_ == State::kAnnouncing && !connection_id(now).has_value()) {
    step.packet = SendConnect(now);  // The connection id expired while we waited.
  } else {
    // Same packet, same transaction id: a late answer to the first copy is still welcome.
    deadline_ = Instant{now.ms + (kBaseTimeoutMs << attempt_)};
    ++packets_sent_;
    step.packet = absl::MakeConstSpan(packet_, packet_len_);
  }
  return step;
}

}  // namespace torrenty::engine
