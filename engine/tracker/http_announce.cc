// HTTP tracker announce URL construction and response parsing (BEP 3, BEP 23).
#include "engine/tracker/http_announce.h"

#include <algorithm>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/base/text_escape.h"
#include "engine/codec/bencode.h"

namespace torrenty::engine {
namespace {

// This abseil build has its own string_view type, distinct from std::string_view.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

std::string Truncated(std::string_view s, size_t max) {
  return std::string(s.substr(0, std::min(s.size(), max)));
}

// Strict dotted-quad IPv4; hostnames and IPv6 literals return nullopt. Leading zeros are refused
// because some resolvers read them as octal.
std::optional<uint32_t> ParseIpv4(std::string_view s) {
  uint32_t ip = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (s.empty() || s.front() != '.') return std::nullopt;
      s.remove_prefix(1);
    }
    size_t digits = 0;
    uint32_t octet = 0;
    while (digits < s.size() && digits < 4 && absl::ascii_isdigit(s[digits])) {
      octet = octet * 10 + static_cast<uint32_t>(s[digits] - '0');
      ++digits;
    }
    if (digits == 0 || digits > 3 || octet > 255 || (digits > 1 && s[0] == '0')) {
      return std::nullopt;
    }
    s.remove_prefix(digits);
    ip = (ip << 8) | octet;
  }
  if (!s.empty()) return std::nullopt;
  return ip;
}

absl::Status ParseCompactPeers(std::string_view data, std::vector<PeerAddress>* out) {
  if (data.size() % 6 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("compact peer list length ", data.size(), " is not a multiple of 6"));
  }
  const size_t count = std::min(data.size() / 6, kMaxPeersPerAnnounce);
  out->reserve(count);
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  for (size_t i = 0; i < count; ++i, p += 6) {
    PeerAddress addr;
    addr.ip = (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    addr.port = static_cast<uint16_t>((p[4] << 8) | p[5]);
    if (addr.port == 0) continue;
    out->push_back(addr);
  }
  return absl::OkStatus();
}

// BEP 7 `peers6`: 18-byte entries, 16 address bytes then the port, both in network order.
absl::Status ParseCompactPeers6(std::string_view data, std::vector<PeerAddress>* out) {
  if (data.size() % 18 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("compact peers6 list length ", data.size(), " is not a multiple of 18"));
  }
  const size_t count = std::min(data.size() / 18, kMaxPeersPerAnnounce);
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  for (size_t i = 0; i < count && out->size() < kMaxPeersPerAnnounce; ++i, p += 18) {
    std::array<uint8_t, 16> bytes;
    std::copy(p, p + 16, bytes.begin());
    const PeerAddress addr = PeerAddress::V6(bytes, static_cast<uint16_t>((p[16] << 8) | p[17]));
    if (addr.port == 0) continue;
    out->push_back(addr);
  }
  return absl::OkStatus();
}

void ParseDictPeers(const std::vector<bencode::Value>& list, std::vector<PeerAddress>* out) {
  for (const bencode::Value& entry : list) {
    if (out->size() >= kMaxPeersPerAnnounce) break;
    const bencode::Value* ip = entry.Find("ip");
    const bencode::Value* port = entry.Find("port");
    if (ip == nullptr || !ip->is_string() || port == nullptr || !port->is_int()) continue;
    if (port->integer <= 0 || port->integer > 65535) continue;
    std::optional<uint32_t> addr = ParseIpv4(ip->string);
    if (!addr.has_value()) continue;  // IPv6 and hostnames are not supported yet.
    out->push_back(PeerAddress{*addr, static_cast<uint16_t>(port->integer)});
  }
}

// Reads an optional integer field; a present field of another type is an error.
absl::Status ReadInt(const bencode::Value& dict, std::string_view key, int64_t* out) {
  const bencode::Value* v = dict.Find(key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_int())
    return absl::InvalidArgumentError(absl::StrCat("'", Sv(key), "' is not an integer"));
  *out = v->integer;
  return absl::OkStatus();
}

}  // namespace

std::string_view AnnounceEventName(AnnounceEvent event) {
  switch (event) {
    case AnnounceEvent::kNone:
      return "";
    case AnnounceEvent::kStarted:
      return "started";
    case AnnounceEvent::kCompleted:
      return "completed";
    case AnnounceEvent::kStopped:
      return "stopped";
  }
  return "";
}

bool IsHttpTrackerUrl(std::string_view url) {
  return absl::StartsWithIgnoreCase(Sv(url), "http://") ||
         absl::StartsWithIgnoreCase(Sv(url), "https://");
}

absl::StatusOr<std::string> BuildAnnounceUrl(std::string_view announce_url,
                                             const AnnounceParams& params) {
  if (!IsHttpTrackerUrl(announce_url)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an http(s) tracker URL: ", Truncated(announce_url, 200)));
  }
  // The fragment is never sent to a server and would swallow our query if kept.
  std::string_view base = announce_url.substr(0, announce_url.find('#'));
  const std::string_view after_scheme = base.substr(base.find("://") + 3);
  const size_t host_end = after_scheme.find_first_of("/?");
  if (after_scheme.substr(0, host_end).empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tracker URL has no host: ", Truncated(announce_url, 200)));
  }
  if (base.find_first_of(" \r\n\t") != std::string_view::npos) {
    return absl::InvalidArgumentError("tracker URL contains whitespace");
  }

  std::string url(base);
  url.reserve(url.size() + 256);
  if (base.find('?') == std::string_view::npos) {
    url.push_back('?');
  } else if (base.back() != '?' && base.back() != '&') {
    url.push_back('&');
  }
  url += "info_hash=";
  AppendPercentEncoded(params.info_hash.data(), params.info_hash.size(), &url);
  url += "&peer_id=";
  AppendPercentEncoded(params.peer_id.data(), params.peer_id.size(), &url);
  absl::StrAppend(&url, "&port=", params.port, "&uploaded=", std::max<int64_t>(params.uploaded, 0),
                  "&downloaded=", std::max<int64_t>(params.downloaded, 0),
                  "&left=", std::max<int64_t>(params.left, 0),
                  "&compact=1&numwant=", std::max(params.numwant, 0));
  if (params.event != AnnounceEvent::kNone) {
    absl::StrAppend(&url, "&event=", Sv(AnnounceEventName(params.event)));
  }
  if (!params.tracker_id.empty()) {
    url += "&trackerid=";
    AppendPercentEncoded(params.tracker_id, &url);
  }
  return url;
}

absl::StatusOr<AnnounceResponse> ParseAnnounceResponse(std::string_view body) {
  absl::StatusOr<bencode::Value> decoded = bencode::Decode(body);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tracker response is not bencode: ", decoded.status().message()));
  }
  const bencode::Value& root = *decoded;
  if (!root.is_dict()) return absl::InvalidArgumentError("tracker response is not a dictionary");

  AnnounceResponse response;
  if (const bencode::Value* failure = root.Find("failure reason"); failure != nullptr) {
    if (!failure->is_string())
      return absl::InvalidArgumentError("'failure reason' is not a string");
    response.failure_reason = Truncated(failure->string, kMaxTrackerMessageBytes);
    // A tracker that says nothing useful still failed; keep the field non-empty so callers can
    // tell.
    if (response.failure_reason.empty()) response.failure_reason = "(empty failure reason)";
    return response;
  }
  if (const bencode::Value* warning = root.Find("warning message");
      warning != nullptr && warning->is_string()) {
    response.warning_message = Truncated(warning->string, kMaxTrackerMessageBytes);
  }
  if (absl::Status s = ReadInt(root, "interval", &response.interval); !s.ok()) return s;
  if (absl::Status s = ReadInt(root, "min interval", &response.min_interval); !s.ok()) return s;
  if (absl::Status s = ReadInt(root, "complete", &response.complete); !s.ok()) return s;
  if (absl::Status s = ReadInt(root, "incomplete", &response.incomplete); !s.ok()) return s;
  // Negative counts or intervals are nonsense; treat them as "not sent".
  response.interval = std::max<int64_t>(response.interval, 0);
  response.min_interval = std::max<int64_t>(response.min_interval, 0);
  response.complete = std::max<int64_t>(response.complete, -1);
  response.incomplete = std::max<int64_t>(response.incomplete, -1);
  if (const bencode::Value* id = root.Find("tracker id");
      id != nullptr && id->is_string() && id->string.size() <= kMaxTrackerMessageBytes) {
    // An over-long id is dropped rather than truncated: echoing a mangled id back is worse.
    response.tracker_id = std::string(id->string);
  }

  if (const bencode::Value* peers = root.Find("peers"); peers != nullptr) {
    if (peers->is_string()) {
      if (absl::Status s = ParseCompactPeers(peers->string, &response.peers); !s.ok()) return s;
    } else if (peers->is_list()) {
      ParseDictPeers(peers->list, &response.peers);
    } else {
      return absl::InvalidArgumentError("'peers' is neither a string nor a list");
    }
  }
  if (const bencode::Value* peers6 = root.Find("peers6");
      peers6 != nullptr && peers6->is_string()) {
    if (absl::Status s = ParseCompactPeers6(peers6->string, &response.peers); !s.ok()) return s;
  }
  return response;
}

}  // namespace torrenty::engine
