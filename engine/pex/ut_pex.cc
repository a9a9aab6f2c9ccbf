#include "engine/pex/ut_pex.h"

#include <algorithm>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engine/codec/bencode.h"

namespace torrenty::engine::pex {
namespace {

constexpr size_t kV4Bytes = 6;
constexpr size_t kV6Bytes = 18;

absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("ut_pex: ", why));
}

uint16_t Port(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

PexEndpoint ReadEndpoint(const uint8_t* p, bool v6) {
  PexEndpoint e;
  e.v6 = v6;
  const size_t n = v6 ? 16 : 4;
  std::copy(p, p + n, e.ip.begin());
  e.port = Port(p + n);
  return e;
}

void AppendEndpoint(const PexEndpoint& e, std::string* out) {
  out->append(reinterpret_cast<const char*>(e.ip.data()), e.v6 ? 16 : 4);
  out->push_back(static_cast<char>(e.port >> 8));
  out->push_back(static_cast<char>(e.port & 0xff));
}

// The string under `key`, empty when absent; an error for another type.
absl::StatusOr<std::string_view> OptionalString(const bencode::Value& dict, std::string_view key) {
  const bencode::Value* v = dict.Find(key);
  if (v == nullptr) return std::string_view();
  if (!v->is_string()) return Bad(absl::StrCat(Sv(key), " is not a string"));
  return v->string;
}

absl::Status ReadAdded(const bencode::Value& dict, bool v6, size_t max, PexMessage* out) {
  absl::StatusOr<std::string_view> list = OptionalString(dict, v6 ? "added6" : "added");
  if (!list.ok()) return list.status();
  absl::StatusOr<std::string_view> flags = OptionalString(dict, v6 ? "added6.f" : "added.f");
  if (!flags.ok()) return flags.status();
  const size_t width = v6 ? kV6Bytes : kV4Bytes;
  if (list->size() % width != 0) return Bad("added list is not whole entries");
  const size_t count = list->size() / width;
  const bool use_flags = flags->size() == count;
  const auto* p = reinterpret_cast<const uint8_t*>(list->data());
  for (size_t i = 0; i < count && out->added.size() < max; ++i) {
    PexPeer peer{ReadEndpoint(p + i * width, v6), 0};
    if (peer.endpoint.port == 0) continue;
    if (use_flags) peer.flags = static_cast<uint8_t>((*flags)[i]);
    out->added.push_back(peer);
  }
  return absl::OkStatus();
}

absl::Status ReadDropped(const bencode::Value& dict, bool v6, size_t max, PexMessage* out) {
  absl::StatusOr<std::string_view> list = OptionalString(dict, v6 ? "dropped6" : "dropped");
  if (!list.ok()) return list.status();
  const size_t width = v6 ? kV6Bytes : kV4Bytes;
  if (list->size() % width != 0) return Bad("dropped list is not whole entries");
  const auto* p = reinterpret_cast<const uint8_t*>(list->data());
  for (size_t i = 0; i < list->size() / width && out->dropped.size() < max; ++i) {
    PexEndpoint e = ReadEndpoint(p + i * width, v6);
    if (e.port != 0) out->dropped.push_back(e);
  }
  return absl::OkStatus();
}

}  // namespace

PexEndpoint PexEndpoint::FromV4(PeerAddress a) {
  PexEndpoint e;
  e.ip[0] = static_cast<uint8_t>(a.ip >> 24);
  e.ip[1] = static_cast<uint8_t>(a.ip >> 16);
  e.ip[2] = static_cast<uint8_t>(a.ip >> 8);
  e.ip[3] = static_cast<uint8_t>(a.ip);
  e.port = a.port;
  return e;
}

PexEndpoint PexEndpoint::FromV6(const std::array<uint8_t, 16>& ip, uint16_t port) {
  PexEndpoint e;
  e.v6 = true;
  e.ip = ip;
  e.port = port;
  return e;
}

PeerAddress PexEndpoint::v4() const {
  return PeerAddress{
      (uint32_t{ip[0]} << 24) | (uint32_t{ip[1]} << 16) | (uint32_t{ip[2]} << 8) | uint32_t{ip[3]},
      port};
}

std::string PexEndpoint::ToString() const {
  if (!v6) return v4().ToString();
  std::string s = "[";
  for (int i = 0; i < 16; i += 2) {
    if (i > 0) s += ':';
    absl::StrAppend(&s, absl::Hex((ip[i] << 8) | ip[i + 1]));
  }
  absl::StrAppend(&s, "]:", port);
  return s;
}

std::string EncodePex(const PexMessage& m) {
  std::string added4, flags4, added6, flags6, dropped4, dropped6;
  for (size_t i = 0; i < m.added.size() && i < kMaxPexAdded; ++i) {
    const PexPeer& p = m.added[i];
    AppendEndpoint(p.endpoint, p.endpoint.v6 ? &added6 : &added4);
    (p.endpoint.v6 ? flags6 : flags4).push_back(static_cast<char>(p.flags));
  }
  for (size_t i = 0; i < m.dropped.size() && i < kMaxPexDropped; ++i) {
    const PexEndpoint& e = m.dropped[i];
    AppendEndpoint(e, e.v6 ? &dropped6 : &dropped4);
  }
  bencode::Encoder enc;
  enc.BeginDict();
  // Keys in byte order: "added" < "added.f" < "added6" < "added6.f" < "dropped" < "dropped6".
  const auto put = [&enc](std::string_view key, const std::string& value) {
    if (value.empty()) return;
    enc.String(key);
    enc.String(value);
  };
  put("added", added4);
  put("added.f", flags4);
  put("added6", added6);
  put("added6.f", flags6);
  put("dropped", dropped4);
  put("dropped6", dropped6);
  enc.End();
  return enc.Take();
}

absl::StatusOr<PexMessage> ParsePex(absl::Span<const uint8_t> payload) {
  if (payload.size() > kMaxPexPayloadBytes) return Bad("message over 8 KiB");
  bencode::DecodeLimits limits;
  limits.max_depth = 4;
  limits.max_input_bytes = kMaxPexPayloadBytes;
  limits.max_items = 256;
  absl::StatusOr<bencode::Value> v = bencode::Decode(
      std::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()), limits);
  if (!v.ok()) return Bad(v.status().message());
  if (!v->is_dict()) return Bad("not a dictionary");
  PexMessage m;
  for (bool v6 : {false, true}) {
    if (absl::Status st = ReadAdded(*v, v6, kMaxPexAdded, &m); !st.ok()) return st;
    if (absl::Status st = ReadDropped(*v, v6, kMaxPexDropped, &m); !st.ok()) return st;
  }
  return m;
}

PexState::PexState(bool torrent_is_private, PexEndpoint remote)
    : PexState(torrent_is_private, remote, Config{}) {}

PexState::PexState(bool torrent_is_private, PexEndpoint remote, Config config)
    : private_(torrent_is_private), remote_(remote), config_(config) {
  config_.max_added = std::min(config_.max_added, kMaxPexAdded);
  config_.max_dropped = std::min(config_.max_dropped, kMaxPexDropped);
}

Instant PexState::NextDue() const {
  if (private_) return kNever;
  return sent_any_ ? Instant{last_sent_.ms + config_.interval_ms} : Instant{0};
}

std::optional<std::string> PexState::Poll(Instant now, absl::Span<const PexPeer> connected) {
  if (private_ || now.ms < NextDue().ms) return std::nullopt;
  scratch_.clear();
  PexMessage m;
  for (const PexPeer& p : connected) {
    if (p.endpoint == remote_ || p.endpoint.port == 0) continue;
    if (!scratch_.insert(p.endpoint).second) continue;  // listed twice
    if (!sent_.contains(p.endpoint) && m.added.size() < config_.max_added) m.added.push_back(p);
  }
  for (const PexEndpoint& e : sent_) {
    if (m.dropped.size() == config_.max_dropped) break;
    if (!scratch_.contains(e)) m.dropped.push_back(e);
  }
  if (m.added.empty() && m.dropped.empty()) return std::nullopt;
  for (const PexPeer& p : m.added) sent_.insert(p.endpoint);
  for (const PexEndpoint& e : m.dropped) sent_.erase(e);
  sent_any_ = true;
  last_sent_ = now;
  return EncodePex(m);
}

absl::StatusOr<PexMessage> PexState::HandleMessage(absl::Span<const uint8_t> payload, Instant now) {
  // BEP 27: a private torrent takes peers from its trackers only.
  if (private_ || (received_any_ && now.ms - last_received_.ms < config_.min_receive_interval_ms)) {
    ++dropped_messages_;
    return PexMessage{};
  }
  absl::StatusOr<PexMessage> m = ParsePex(payload);
  if (!m.ok()) return m.status();
  received_any_ = true;
  last_received_ = now;
  return m;
}

}  // namespace torrenty::engine::pex
