#include "engine/base/types.h"

namespace torrenty::engine {

PeerAddress PeerAddress::V6(const std::array<uint8_t, 16>& bytes, uint16_t port) {
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  PeerAddress a;
  a.port = port;
  if (std::equal(bytes.begin(), bytes.begin() + 12, kMapped)) {
    a.ip = (uint32_t{bytes[12]} << 24) | (uint32_t{bytes[13]} << 16) | (uint32_t{bytes[14]} << 8) |
           bytes[15];
    return a;
  }
  a.v6 = true;
  a.ip6 = bytes;
  return a;
}

bool PeerAddress::IsLoopback() const {
  if (!v6) return (ip >> 24) == 127;
  for (int i = 0; i < 15; ++i)
    if (ip6[i] != 0) return false;
  return ip6[15] == 1;
}

std::string PeerAddress::IpString() const {
  if (!v6) {
    return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
           std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
  }
  uint16_t groups[8];
  for (int i = 0; i < 8; ++i) groups[i] = static_cast<uint16_t>((ip6[2 * i] << 8) | ip6[2 * i + 1]);
  // RFC 5952: the longest run of two or more zero groups (the first of equals) becomes "::".
  int best = -1, best_len = 1;
  for (int i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && groups[j] == 0) ++j;
    if (j - i > best_len) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out.push_back(':');
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      const int d = (groups[i] >> shift) & 15;
      if (d != 0 || started || shift == 0) {
        out.push_back(kDigits[d]);
        started = true;
      }
    }
  }
  return out;
}

std::string PeerAddress::ToString() const {
  return v6 ? "[" + IpString() + "]:" + std::to_string(port)
            : IpString() + ":" + std::to_string(port);
}

void AppendHex(const uint8_t* data, size_t len, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out->reserve(out->size() + 2 * len);
  for (size_t i = 0; i < len; ++i) {
    out->push_back(kDigits[data[i] >> 4]);
    out->push_back(kDigits[data[i] & 15]);
  }
}

std::string ToHex(const uint8_t* data, size_t len) {
  std::string out;
  AppendHex(data, len, &out);
  return out;
}

}  // namespace torrenty::engine
