#include "engine/base/types.h"

namespace torrenty::engine {

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
