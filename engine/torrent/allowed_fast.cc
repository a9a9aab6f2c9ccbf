#include "engine/torrent/allowed_fast.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "engine/base/sha1.h"

namespace torrenty::engine {

std::vector<uint32_t> AllowedFastSet(uint32_t ipv4, const InfoHash& info_hash, uint32_t num_pieces,
                                     uint32_t k) {
  std::vector<uint32_t> set;
  k = std::min(k, num_pieces);
  if (k == 0) return set;
  set.reserve(k);
  const uint32_t masked = ipv4 & 0xFFFFFF00u;
  std::array<uint8_t, 24> seed{};
  seed[0] = static_cast<uint8_t>(masked >> 24);
  seed[1] = static_cast<uint8_t>(masked >> 16);
  seed[2] = static_cast<uint8_t>(masked >> 8);
  seed[3] = 0;
  std::memcpy(seed.data() + 4, info_hash.data(), info_hash.size());
  Sha1Digest x = Sha1(seed);
  for (;;) {
    for (int i = 0; i < 5 && set.size() < k; ++i) {
      const uint8_t* y = x.data() + 4 * i;
      const uint32_t v =
          (uint32_t{y[0]} << 24) | (uint32_t{y[1]} << 16) | (uint32_t{y[2]} << 8) | uint32_t{y[3]};
      const uint32_t index = v % num_pieces;
      if (std::find(set.begin(), set.end(), index) == set.end()) set.push_back(index);
    }
    if (set.size() >= k) return set;
    x = Sha1(x);
  }
}

}  // namespace torrenty::engine
