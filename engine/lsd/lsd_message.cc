#include "engine/lsd/lsd_message.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace torrenty::engine::lsd {
namespace {

constexpr absl::string_view kRequestLine = "BT-SEARCH * HTTP/1.1";

bool IsTokenChar(char c) { return c > 0x20 && c < 0x7f && c != ':'; }

// Printable ASCII and spaces: what a Host or cookie value may hold, so a logged value needs no
// escaping and an encoded one cannot smuggle a line break.
bool IsPlainValue(absl::string_view v) {
  return std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool ParseInfoHash(absl::string_view v, InfoHash* out) {
  if (v.size() != 40) return false;
  for (size_t i = 0; i < 20; ++i) {
    const int hi = HexDigit(v[2 * i]), lo = HexDigit(v[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

bool ParsePort(absl::string_view v, uint16_t* out) {
  if (v.empty() || v.size() > 5) return false;
  uint32_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  if (n == 0 || n > 65535) return false;
  *out = static_cast<uint16_t>(n);
  return true;
}

absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

absl::Status Bad(absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("local discovery message: ", why));
}

}  // namespace

absl::StatusOr<std::string> EncodeLsdAnnounce(const LsdAnnounce& a) {
  if (a.port == 0) return absl::InvalidArgumentError("LSD announce without a port");
  if (a.info_hashes.empty() || a.info_hashes.size() > kMaxInfoHashes) {
    return absl::InvalidArgumentError("LSD announce needs 1 to 24 info-hashes");
  }
  if (a.host.size() > kMaxHostBytes || !IsPlainValue(a.host) || a.cookie.size() > kMaxCookieBytes ||
      !IsPlainValue(a.cookie) || Trim(a.cookie) != a.cookie || Trim(a.host) != a.host) {
    return absl::InvalidArgumentError("LSD announce host or cookie out of bounds");
  }
  std::string out;
  out.reserve(128 + a.info_hashes.size() * kInfoHashLineBytes);
  absl::StrAppend(&out, kRequestLine, "\r\n");
  if (!a.host.empty()) absl::StrAppend(&out, "Host: ", a.host, "\r\n");
  absl::StrAppend(&out, "Port: ", a.port, "\r\n");
  for (const InfoHash& ih : a.info_hashes) absl::StrAppend(&out, "Infohash: ", ToHex(ih), "\r\n");
  if (!a.cookie.empty()) absl::StrAppend(&out, "cookie: ", a.cookie, "\r\n");
  out += "\r\n\r\n";  // libtorrent ends its announces with an extra empty line; harmless
  if (out.size() > kMaxMessageBytes) {
    return absl::InvalidArgumentError("LSD announce longer than one datagram");
  }
  return out;
}

absl::StatusOr<LsdAnnounce> ParseLsdAnnounce(absl::Span<const uint8_t> datagram) {
  if (datagram.size() > kMaxMessageBytes) return Bad("longer than 1400 bytes");
  absl::string_view rest(reinterpret_cast<const char*>(datagram.data()), datagram.size());
  // Lines end in CRLF; a bare LF is taken too (a line's trailing CR is dropped).
  const auto next_line = [&rest](absl::string_view* line) {
    if (rest.empty()) return false;
    const size_t nl = rest.find('\n');
    *line = rest.substr(0, nl);
    rest = nl == absl::string_view::npos ? absl::string_view() : rest.substr(nl + 1);
    if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
    return true;
  };
  absl::string_view line;
  if (!next_line(&line) || line != kRequestLine) return Bad("not a BT-SEARCH request");
  LsdAnnounce a;
  bool have_port = false, have_host = false, have_cookie = false;
  size_t headers = 0;
  while (next_line(&line) && !line.empty()) {
    if (++headers > kMaxHeaders) return Bad("too many headers");
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos || colon == 0) return Bad("header without a name");
    const absl::string_view name = line.substr(0, colon);
    if (!std::all_of(name.begin(), name.end(), IsTokenChar)) return Bad("bad header name");
    const absl::string_view value = Trim(line.substr(colon + 1));
    if (absl::EqualsIgnoreCase(name, "Infohash")) {
      InfoHash ih;
      if (!ParseInfoHash(value, &ih)) return Bad("info-hash is not 40 hex digits");
      if (std::find(a.info_hashes.begin(), a.info_hashes.end(), ih) != a.info_hashes.end()) {
        continue;
      }
      if (a.info_hashes.size() == kMaxInfoHashes) return Bad("too many info-hashes");
      a.info_hashes.push_back(ih);
    } else if (absl::EqualsIgnoreCase(name, "Port")) {
      if (have_port) return Bad("two Port headers");
      if (!ParsePort(value, &a.port)) return Bad("bad Port");
      have_port = true;
    } else if (absl::EqualsIgnoreCase(name, "Host")) {
      if (have_host) return Bad("two Host headers");
      if (value.size() > kMaxHostBytes || !IsPlainValue(value)) return Bad("bad Host");
      a.host = std::string(value);
      have_host = true;
    } else if (absl::EqualsIgnoreCase(name, "cookie")) {
      if (have_cookie) return Bad("two cookie headers");
      if (value.size() > kMaxCookieBytes || !IsPlainValue(value)) return Bad("bad cookie");
      a.cookie = std::string(value);
      have_cookie = true;
    }
  }
  if (!have_port) return Bad("no Port");
  if (a.info_hashes.empty()) return Bad("no Infohash");
  return a;
}

}  // namespace torrenty::engine::lsd
