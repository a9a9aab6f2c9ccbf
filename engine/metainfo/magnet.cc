#include "engine/metainfo/magnet.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace torrenty::engine {
namespace {

absl::Status Error(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("magnet: ", what));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query values are percent-encoded and '+' stands for a space (form encoding, which some
// clients write in dn).
absl::StatusOr<std::string> PercentDecode(absl::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return Error("truncated %-escape");
      const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return Error("bad %-escape");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

bool DecodeHexHash(absl::string_view hex, InfoHash* out) {
  for (size_t i = 0; i < out->size(); ++i) {
    const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    (*out)[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

// RFC 4648 base32 without padding: 32 characters carry exactly 160 bits.
bool DecodeBase32Hash(absl::string_view b32, InfoHash* out) {
  uint64_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : b32) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a';
    } else if (c >= '2' && c <= '7') {
      v = c - '2' + 26;
    } else {
      return false;
    }
    acc = (acc << 5) | static_cast<uint64_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      (*out)[n++] = static_cast<uint8_t>(acc >> bits);
    }
  }
  return n == out->size();
}

bool SameIgnoringCase(absl::string_view a, absl::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return (x | 0x20) == (y | 0x20);
         });
}

void PercentEncode(absl::string_view in, std::string* out) {
  for (unsigned char c : in) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~';
    if (plain) {
      out->push_back(static_cast<char>(c));
    } else {
      // Upper-case hex, as RFC 3986 recommends.
      constexpr char kDigits[] = "0123456789ABCDEF";
      out->push_back('%');
      out->push_back(kDigits[c >> 4]);
      out->push_back(kDigits[c & 15]);
    }
  }
}

}  // namespace

bool IsMagnetUri(absl::string_view text) {
  return text.size() >= 8 && SameIgnoringCase(text.substr(0, 8), "magnet:?");
}

absl::StatusOr<MagnetPeer> ParseMagnetPeer(absl::string_view text) {
  absl::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Error(absl::StrCat("peer '", text, "' is not [IPV6]:PORT"));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.empty() || host.find_first_not_of("0123456789abcdefABCDEF:.") != host.npos) {
      return Error(absl::StrCat("peer '", text, "' has a bad IPv6 address"));
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos || colon == 0) {
      return Error(absl::StrCat("peer '", text, "' is not HOST:PORT"));
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != host.npos) {
      return Error(absl::StrCat("peer '", text, "': an IPv6 address needs brackets"));
    }
  }
  uint32_t p = 0;
  if (!absl::SimpleAtoi(port, &p) || p == 0 || p > 65535 ||
      port.find_first_not_of("0123456789") != port.npos) {
    return Error(absl::StrCat("peer '", text, "' has a bad port"));
  }
  return MagnetPeer{std::string(host), static_cast<uint16_t>(p)};
}

absl::StatusOr<MagnetLink> ParseMagnet(absl::string_view uri) {
  if (uri.size() > kMaxMagnetLength) return Error("link longer than 64 KiB");
  if (!IsMagnetUri(uri)) return Error("not a magnet link (must start with 'magnet:?')");
  MagnetLink link;
  bool have_hash = false;
  for (absl::string_view param : absl::StrSplit(uri.substr(8), '&')) {
    if (param.empty()) continue;
    const size_t eq = param.find('=');
    if (eq == absl::string_view::npos) continue;  // a bare key carries nothing we use
    const absl::string_view key = param.substr(0, eq);
    absl::StatusOr<std::string> value = PercentDecode(param.substr(eq + 1));
    if (!value.ok()) return value.status();
    // "xt.1", "tr.2": BEP 9 allows numbered repeats of the same key.
    const absl::string_view base = key.substr(0, key.find('.') == 2 ? 2 : key.size());
    if (base == "xt") {
      constexpr absl::string_view kBtih = "urn:btih:";
      if (value->size() < kBtih.size() ||
          !SameIgnoringCase(value->substr(0, kBtih.size()), kBtih)) {
        continue;  // another kind of hash (urn:btmh: of BitTorrent v2, ed2k...): not ours
      }
      const absl::string_view hash = absl::string_view(*value).substr(kBtih.size());
      InfoHash h{};
      if (!(hash.size() == 40 && DecodeHexHash(hash, &h)) &&
          !(hash.size() == 32 && DecodeBase32Hash(hash, &h))) {
        return Error(absl::StrCat("info-hash '", hash,
                                  "' is neither 40 hex digits nor 32 base32 characters"));
      }
      if (have_hash && h != link.info_hash) return Error("two different btih info-hashes");
      link.info_hash = h;
      have_hash = true;
    } else if (key == "dn") {
      link.name = std::move(*value);
    } else if (base == "tr") {
      if (value->empty()) continue;
      if (std::find(link.trackers.begin(), link.trackers.end(), *value) != link.trackers.end()) {
        continue;
      }
      if (link.trackers.size() >= kMaxMagnetTrackers) return Error("more than 64 trackers");
      link.trackers.push_back(std::move(*value));
    } else if (key == "x.pe") {
      absl::StatusOr<MagnetPeer> peer = ParseMagnetPeer(*value);
      if (!peer.ok()) return peer.status();
      if (std::find(link.peers.begin(), link.peers.end(), *peer) != link.peers.end()) continue;
      if (link.peers.size() >= kMaxMagnetPeers) return Error("more than 256 x.pe peers");
      link.peers.push_back(std::move(*peer));
    }
  }
  if (!have_hash) return Error("no xt=urn:btih: info-hash");
  return link;
}

std::string MakeMagnet(const Metainfo& meta) {
  std::string out = absl::StrCat("magnet:?xt=urn:btih:", ToHex(meta.info_hash));
  if (!meta.name.empty()) {
    out += "&dn=";
    PercentEncode(meta.name, &out);
  }
  for (const auto& tier : meta.trackers) {
    for (const std::string& url : tier) {
      out += "&tr=";
      PercentEncode(url, &out);
    }
  }
  return out;
}

}  // namespace torrenty::engine
