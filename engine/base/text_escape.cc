// Terminal escaping and UTF-8 validation for text that comes from the network or a .torrent.
#include "engine/base/text_escape.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "engine/base/types.h"

namespace torrenty::engine {
namespace {

void AppendHexByte(uint8_t b, std::string* out) {
  out->append("\\x");
  AppendHex(&b, 1, out);
}

bool IsContinuation(uint8_t b) { return (b & 0xc0) == 0x80; }

}  // namespace

size_t Utf8SequenceLength(std::string_view text, size_t pos) {
  if (pos >= text.size()) return 0;
  const auto at = [&](size_t i) { return static_cast<uint8_t>(text[pos + i]); };
  const uint8_t b0 = at(0);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2;
    min = 0x80;
    cp = b0 & 0x1f;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3;
    min = 0x800;
    cp = b0 & 0x0f;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4;
    min = 0x10000;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (text.size() - pos < len) return 0;
  for (size_t i = 1; i < len; ++i) {
    if (!IsContinuation(at(i))) return 0;
    cp = (cp << 6) | (at(i) & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

bool IsValidUtf8(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = Utf8SequenceLength(text, pos);
    if (len == 0) return false;
    pos += len;
  }
  return true;
}

std::string EscapeForTerminal(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const uint8_t b = static_cast<uint8_t>(text[pos]);
    const size_t len = Utf8SequenceLength(text, pos);
    if (len == 1 && b >= 0x20 && b != 0x7f) {
      out.push_back(static_cast<char>(b));
    } else if (b == '\n') {
      out.append("\\n");
    } else if (b == '\r') {
      out.append("\\r");
    } else if (b == '\t') {
      out.append("\\t");
    } else if (len <= 1) {
      // A C0 control, DEL, or a byte that does not start valid UTF-8.
      AppendHexByte(b, &out);
    } else if (len == 2 && b == 0xc2 && static_cast<uint8_t>(text[pos + 1]) < 0xa0) {
      // U+0080..U+009F: C1 controls.
      AppendHexByte(b, &out);
      AppendHexByte(static_cast<uint8_t>(text[pos + 1]), &out);
    } else {
      out.append(text.substr(pos, len));
    }
    pos += len == 0 ? 1 : len;
  }
  return out;
}

void AppendPercentEncoded(const uint8_t* data, size_t len, std::string* out) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (size_t i = 0; i < len; ++i) {
    const uint8_t c = data[i];
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out->push_back(static_cast<char>(c));
    } else {
      out->push_back('%');
      out->push_back(kDigits[c >> 4]);
      out->push_back(kDigits[c & 15]);
    }
  }
}

}  // namespace torrenty::engine
