#include "engine/base/peer_id.h"

#include <cstring>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"

namespace torrenty::engine {

PeerId MakePeerId(uint64_t random_a, uint64_t random_b) {
  PeerId id{};
  const char prefix[] = "-TY0001-";
  std::memcpy(id.data(), prefix, 8);
  for (size_t i = 8; i < id.size(); ++i) {
    uint64_t& r = i < 14 ? random_a : random_b;
    id[i] = static_cast<uint8_t>('0' + r % 10);
    r /= 10;
  }
  return id;
}

std::string ClientName(const PeerId& id) {
  auto printable = [](uint8_t b) { return b >= 0x21 && b < 0x7F; };
  if (id[0] == '-' && id[7] == '-' && printable(id[1]) && printable(id[2])) {
    static constexpr std::pair<std::string_view, std::string_view> kKnown[] = {
        {"qB", "qBittorrent"}, {"TR", "Transmission"}, {"LT", "libtorrent"},
        {"lt", "rTorrent"},    {"DE", "Deluge"},       {"UT", "uTorrent"},
        {"TY", "Torrenty"},    {"AZ", "Vuze"},         {"BI", "BiglyBT"}};
    const std::string code{static_cast<char>(id[1]), static_cast<char>(id[2])};
    std::string name = code;
    for (const auto& [c, n] : kKnown)
      if (c == code) name = std::string(n);
    std::string version;
    for (int i = 3; i < 7; ++i) {
      if (!printable(id[i])) return name;
      absl::StrAppend(&version, version.empty() ? "" : ".",
                      std::string(1, static_cast<char>(id[i])));
    }
    return absl::StrCat(name, " ", version);
  }
  if (id[0] == 'A' && id[1] == '2' && id[2] == '-') return "aria2";
  return "";
}

}  // namespace torrenty::engine
